"""One run of the suite (an environment and a seed): trained or resumed by ``train.py`` in ``--out``/runs, its
result collected from the run folder and written to ``--out``/results; here, one at a time, or on a node of a
Ray cluster (bench/suite_ray.py)."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from agents.files import write_json
from bench.common import train_command, worker_share
from bench.suite_process import launch, read_sessions, wall_seconds
from bench.suite_report import result_path
from training.run_files import run_name
from training.settings import make_config, parse_args

EXP_NAME, CURVE_POINTS = "suite", 300
TAGS = ("eval/return_mean", "eval/sampled_return_mean", "charts/episodic_return")


def bad_input(message: str) -> None:
    print(f"suite.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def expected_config(env: str, seed: int, extra: list[str], runs: Path, workers: int) -> dict:
    """The settings a run of the suite gets (JSON-shaped, as config.json holds them, each worker's share of
    the batch under ``workers`` processes); bad flags exit 2."""
    flags, modes = parse_args(extra)
    given = set(flags) & {"env", "seed", "logdir", "exp_name"} | {m for m, v in vars(modes).items() if v}
    if given:
        named = ", ".join("--" + name.replace("_", "-") for name in sorted(given))
        bad_input(f"the suite sets {named} itself: give no such flag after --")
    flags.update(env=env, seed=seed, logdir=str(runs), exp_name=EXP_NAME, gif=False)
    try:
        config = asdict(make_config(flags, "tuned"))
    except ValueError as error:
        bad_input(str(error))
    try:
        config.update(worker_share(config, workers))
    except ValueError as error:
        bad_input(str(error))
    return json.loads(json.dumps(config))


def stem(out: Path, env: str, seed: int) -> Path:
    """The path of (env, seed)'s run folders before their time stamp, and of its log and session times."""
    return out / "runs" / run_name(env, EXP_NAME, seed)


def run_folders(out: Path, env: str, seed: int) -> list[Path]:
    """The run folders of (env, seed), oldest first (train.py names them <env>__<exp_name>__<seed>__<time>)."""
    base = stem(out, env, seed)
    folders = [p for p in base.parent.glob(f"{base.name}__*") if p.is_dir()]
    return sorted(folders, key=lambda p: int(p.name.rsplit("__", 1)[1]) if p.name[-1].isdigit() else -1)


def curves(run_dir: Path) -> dict[str, list]:
    """The greedy and the sampled evaluations and the training-batch returns, [env steps, value] each, by
    TensorBoard tag (one check per env step: train.py's final evaluation at a check's step is that check)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    return {tag: [[e.step, e.value] for e in events.Scalars(tag)] if tag in scalars else [] for tag in TAGS}


def train_run(env: str, seed: int, extra: list[str], out: Path, workers: int) -> int:
    """Train (env, seed) in ``out``/runs: resume its last run folder from its checkpoint, or start it, or
    nothing when it has trained already; train.py's exit status."""
    base = stem(out, env, seed)
    folders = run_folders(out, env, seed)
    last = folders[-1] if folders else None
    train_py, log, sessions = train_command(workers), Path(f"{base}.log"), Path(f"{base}.sessions.json")
    if last and (last / "summary.json").is_file():
        return 0  # trained; only its result is missing
    if last and (last / "checkpoint.pt").is_file():
        say(f"{env} seed {seed}: resuming {last} (log: {base}.log)")
        return launch([*train_py, "--resume", str(last)], log, sessions)
    say(f"{env} seed {seed}: training (log: {base}.log)")
    flags = ["--env", env, "--seed", str(seed), "--preset", "tuned", "--logdir", str(out / "runs")]
    command = [*train_py, *flags, "--exp-name", EXP_NAME, "--no-gif", *extra]
    if workers > 1:  # each worker's share of the batch (expected_config's)
        config = expected_config(env, seed, extra, out / "runs", workers)
        command += [f"--{name.replace('_', '-')}={config[name]}" for name in ("num_envs", "episodes_per_update")]
    return launch(command, log, sessions)


def collect(env: str, seed: int, extra: list[str], out: Path, cpus: int) -> dict:
    """The result of (env, seed)'s trained run: its settings, summary, curves and wall time, and where it ran
    (this machine's name, the CPUs it had: ``cpus``, and the versions it ran with)."""
    run_dir = run_folders(out, env, seed)[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    found = curves(run_dir)
    training = found["charts/episodic_return"]
    sessions = Path(f"{stem(out, env, seed)}.sessions.json")
    tail = [value for _, value in training[len(training) - max(1, len(training) // 10) :]]
    keep = np.unique(np.linspace(0, len(training) - 1, min(len(training), CURVE_POINTS)).round().astype(int))
    return {
        "env": env,
        "seed": seed,
        "run_dir": str(run_dir.relative_to(out)),  # paths relative to --out: the results can move
        "extra_flags": extra,
        "config": {**summary["config"], "logdir": "runs"},
        "env_steps": summary["env_steps"],
        "train_seconds": summary["train_seconds"],
        "workers": summary.get("workers", 1),
        "wall_seconds": wall_seconds(read_sessions(sessions)),
        "node": platform.node(),
        "cpus": cpus,
        "versions": summary.get("versions"),  # the libraries' and the simulators' (a MuJoCo release moves the curves)
        "solved_at_env_steps": summary["solved_at_env_steps"],
        "final_eval": summary["final_eval"],
        "best_eval": summary.get("best_eval"),  # the best check, and its agent re-evaluated on fresh episodes
        "eval_curve": found["eval/return_mean"],
        "sampled_eval_curve": found["eval/sampled_return_mean"],
        "train_curve": [training[i] for i in keep] if training else [],
        "train_return_end": float(np.mean(tail)) if tail else None,
    }


def record(out: Path, result: dict) -> None:
    """Write a finished run's result into ``out``/results (here, wherever it trained)."""
    write_json(result_path(out, result["env"], result["seed"]), result)
    greedy = result["final_eval"]["greedy"]["mean"]
    steps = f"{result['env_steps']:,} env steps"
    say(f"{result['env']} seed {result['seed']}: finished, {steps}, final greedy mean {greedy:.1f}")


def run_one(env: str, seed: int, extra: list[str], out: Path, workers: int) -> int:
    """Train (or resume, or only collect) one run here, one at a time, and write its result; train.py's exit
    status."""
    if result_path(out, env, seed).is_file():
        say(f"{env} seed {seed}: done")
        return 0
    status = train_run(env, seed, extra, out, workers)
    if status == 0:
        record(out, collect(env, seed, extra, out, os.cpu_count() or 1))  # one run at a time: the whole machine
    return status
