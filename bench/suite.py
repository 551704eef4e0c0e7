"""REINFORCE across the standard suite, beside the published numbers (bench/anchors.py: Tianshou's
REINFORCE, Spinning Up's VPG, the targets). Each environment x seed is one
`train.py --env E --seed S --preset tuned` run (training/presets.py holds each environment's protocol:
budget, evaluation every so many steps, 10 deterministic episodes per check for MuJoCo as the anchors,
100 for the classic tasks; no early stop).

    python -m bench.suite --seeds 1-3                      # the whole suite, cheapest environments first
    python -m bench.suite --envs Hopper-v5,Walker2d-v5 --seeds 1-10
    python -m bench.suite --table-only --plot suite.png    # no training: the table (and curves) of DIR/results
    python -m bench.suite --envs CartPole-v1 --out smoke -- --total-env-steps 4000   # after --, train.py flags
    python -m bench.suite --envs Humanoid-v5 --workers 2   # each run as `torchrun --nproc_per_node=2 train.py`

Runs go to DIR/runs (train.py's --logdir, DIR = --out, default `suite`; each run's output in
DIR/runs/<env>__suite__<seed>.log), one JSON per finished run to DIR/results/<env>__<seed>.json. Resumable:
a run with a JSON is not redone; a stopped one (Ctrl-C, SIGTERM, a closed session) continues with
`train.py --resume`; so the same command completes a long suite across sessions. The flags after `--` go to
every new run: the results in one DIR must come from one protocol (a run whose settings differ is refused).
`--workers K` runs each new run on K torchrun processes with the same batch (each plays 1/K of the preset's
environments and episodes per update, on one torch thread); on this 2-core machine 2 workers trained
HalfCheetah 1.49x and Humanoid 1.29x as fast as one process (bench/launchers.py; README, "Suite"). A run
is resumed with the workers it began with.

The table, one row per environment: ours in Tianshou's metric (the maximum over training of the seed-mean
greedy evaluation, the k-th checks of all seeds averaged together) and in a stricter one (the final greedy
evaluation, mean +- std over seeds of each seed's mean), our training-batch return over the last 10% of
training (charts/episodic_return, what Spinning Up plots), the anchors and the target. With rliable
(pip install -e ".[suite]"): the interquartile mean over seeds of the final returns with 95% stratified
bootstrap confidence intervals (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice"), per
environment and aggregated over the environments with a Tianshou anchor on normalised scores
(ours - random) / (Tianshou 3M - random), random = a uniform-random policy's mean return over 10 episodes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from agents.files import write_json
from bench.common import BadFile, parse_seeds, read_json, split_settings, train_command, worker_share
from bench.suite_process import STOPPED, last_words, launch, read_sessions, wall_seconds
from bench.suite_report import interquartile_means, plot, read_result, result_path, table
from training.presets import TUNED
from training.run_files import lock_folder, run_name
from training.settings import Config, make_config, parse_args

SUITE = tuple(TUNED)  # every environment with a --preset tuned entry, in that file's order: cheapest first
EXP_NAME, CURVE_POINTS = "suite", 300
TAGS = ("eval/return_mean", "eval/sampled_return_mean", "charts/episodic_return")
# the settings that define a run's experiment (not housekeeping such as --logdir or --threads)
EXPERIMENT = [f.name for f in fields(Config) if f.metadata.get("experiment", True)]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


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


def differences(saved: dict, expected: dict) -> list[str]:
    """The experiment's settings that differ; one newer than the saved run counts at its default (as
    ``--resume`` reads an older config), since the run was made with that behaviour."""
    defaults = json.loads(json.dumps(asdict(Config())))
    return [name for name in EXPERIMENT if saved.get(name, defaults[name]) != expected[name]]


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


def check_protocol(env: str, seed: int, extra: list[str], out: Path, workers: int) -> None:
    """Refuse (exit 2) a run whose result or run folder in ``out`` has other settings than this command's."""
    expected, result = expected_config(env, seed, extra, out / "runs", workers), result_path(out, env, seed)
    folders = run_folders(out, env, seed)
    if result.exists():
        path, saved = result, read_result(result)["config"]
    elif folders and (folders[-1] / "config.json").is_file():
        path = folders[-1] / "config.json"
        fix = f"remove the run folder {folders[-1]}, and the same command trains that run again"
        saved = read_json(path, "a run's settings", fix, lambda d: None if isinstance(d, dict) else "not an object")
    else:
        return
    if changed := differences(saved, expected):
        hint = " (or the --workers it was run with)" if {"num_envs", "episodes_per_update"} & set(changed) else ""
        bad_input(f"{path} has other settings ({', '.join(changed)}) than this command: give another --out{hint}")


def run_one(env: str, seed: int, extra: list[str], out: Path, workers: int) -> int:
    """Train (or resume, or only collect) one run and write its result; train.py's exit status."""
    if result_path(out, env, seed).is_file():
        say(f"{env} seed {seed}: done")
        return 0
    base = stem(out, env, seed)
    folders = run_folders(out, env, seed)
    last = folders[-1] if folders else None
    train_py = train_command(workers)
    if last and (last / "summary.json").is_file():
        status = 0  # trained; only its result is missing
    elif last and (last / "checkpoint.pt").is_file():
        say(f"{env} seed {seed}: resuming {last} (log: {base}.log)")
        status = launch([*train_py, "--resume", str(last)], Path(f"{base}.log"), Path(f"{base}.sessions.json"))
    else:
        say(f"{env} seed {seed}: training (log: {base}.log)")
        flags = ["--env", env, "--seed", str(seed), "--preset", "tuned", "--logdir", str(out / "runs")]
        command = [*train_py, *flags, "--exp-name", EXP_NAME, "--no-gif", *extra]
        if workers > 1:  # each worker's share of the batch (expected_config's)
            config = expected_config(env, seed, extra, out / "runs", workers)
            command += [f"--{name.replace('_', '-')}={config[name]}" for name in ("num_envs", "episodes_per_update")]
        status = launch(command, Path(f"{base}.log"), Path(f"{base}.sessions.json"))
    if status != 0:
        return status
    run_dir = run_folders(out, env, seed)[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    found = curves(run_dir)
    training = found["charts/episodic_return"]
    sessions = Path(f"{base}.sessions.json")
    tail = [value for _, value in training[len(training) - max(1, len(training) // 10) :]]
    keep = np.unique(np.linspace(0, len(training) - 1, min(len(training), CURVE_POINTS)).round().astype(int))
    report = {
        "env": env,
        "seed": seed,
        "run_dir": str(run_dir.relative_to(out)),  # paths relative to --out: the results can move
        "extra_flags": extra,
        "config": {**summary["config"], "logdir": "runs"},
        "env_steps": summary["env_steps"],
        "train_seconds": summary["train_seconds"],
        "workers": summary.get("workers", 1),
        "wall_seconds": wall_seconds(read_sessions(sessions)),
        "solved_at_env_steps": summary["solved_at_env_steps"],
        "final_eval": summary["final_eval"],
        "best_eval": summary.get("best_eval"),  # the best check, and its agent re-evaluated on fresh episodes
        "eval_curve": found["eval/return_mean"],
        "sampled_eval_curve": found["eval/sampled_return_mean"],
        "train_curve": [training[i] for i in keep] if training else [],
        "train_return_end": float(np.mean(tail)) if tail else None,
    }
    write_json(result_path(out, env, seed), report)
    greedy = summary["final_eval"]["greedy"]["mean"]
    say(f"{env} seed {seed}: finished, {summary['env_steps']:,} env steps, final greedy mean {greedy:.1f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv, extra = split_settings(sys.argv[1:] if argv is None else argv)
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default=",".join(SUITE), help="comma-separated ids (default: the whole suite)")
    parser.add_argument("--seeds", default="1-3", help="e.g. 1-3 or 1,3,5 (default: 1-3)")
    parser.add_argument("--out", default="suite", help="folder of the runs and results (default: suite)")
    parser.add_argument("--table-only", action="store_true", help="no training: the table of what DIR/results holds")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the learning curves (needs matplotlib)")
    parser.add_argument("--workers", type=int, default=1, help="torchrun processes per run (default: 1)")
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as error:
        bad_input(str(error))
    envs = [env.strip() for env in args.envs.split(",") if env.strip()]
    if not envs or any(env not in TUNED for env in envs):
        unknown = ", ".join(env for env in envs if env not in TUNED) or "none"
        bad_input(f"--envs: no --preset tuned entry for {unknown}; environments with one: {', '.join(TUNED)}")
    if args.workers < 1:
        bad_input(f"--workers {args.workers}: give 1 or more")
    out = Path(args.out)
    failed = []
    if not args.table_only:
        for env in envs:  # every run's settings checked before the first one starts
            for seed in seeds:
                check_protocol(env, seed, extra, out, args.workers)
        try:
            (out / "runs").mkdir(parents=True, exist_ok=True)
            (out / "results").mkdir(exist_ok=True)
        except OSError as error:
            bad_input(f"cannot write in --out {out}: {error.strerror or error}")
        try:  # one suite per --out: two would train every run twice
            lock = lock_folder(out, "suite.py (one suite per --out)")  # noqa: F841 (held until the process ends)
        except ValueError as error:
            bad_input(str(error))
        for env in envs:
            for seed in seeds:
                status = run_one(env, seed, extra, out, args.workers)
                if status in STOPPED:
                    say(f"suite.py: stopped during {env} seed {seed}; the same command continues the suite")
                    return status
                if status != 0:
                    log = Path(f"{stem(out, env, seed)}.log")
                    say(f"{env} seed {seed}: train.py exited {status}: {last_words(log)} (log: {log})")
                    failed.append(f"{env} seed {seed}")
    found = table(envs, seeds, out)
    interquartile_means(found, out)
    if args.plot:
        plot(found, args.plot)
    if failed:
        say(f"suite.py: failed runs ({len(failed)}): {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BadFile as error:  # a result or run file that is not what the suite wrote
        bad_input(str(error))
    except KeyboardInterrupt:  # between runs: every result is written whole or not at all
        say("suite.py: SIGINT: stopped; the same command continues the suite")
        sys.exit(130)
