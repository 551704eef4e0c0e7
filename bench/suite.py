"""REINFORCE across the standard suite, beside the published numbers (bench/anchors.py: Tianshou's
REINFORCE, Spinning Up's VPG, the targets). Each environment x seed is one
`train.py --env E --seed S --preset tuned` run (training/presets.py holds each environment's protocol:
budget, evaluation every so many steps, 10 deterministic episodes per check for MuJoCo as the anchors,
100 for the classic tasks; no early stop).

    python -m bench.suite --seeds 1-3                      # the whole suite, in --preset tuned's order
    python -m bench.suite --envs Hopper-v5,Walker2d-v5 --seeds 1-10
    python -m bench.suite --table-only --plot suite.png    # no training: the table (and curves) of DIR/results
    python -m bench.suite --envs CartPole-v1 --out smoke -- --total-env-steps 4000   # after --, train.py flags
    python -m bench.suite --envs Humanoid-v5 --workers 2   # each run as `torchrun --nproc_per_node=2 train.py`
    python -m bench.suite --seeds 1-10 --ray               # runs side by side as Ray tasks (the cluster extra)
    python -m bench.suite --seeds 1-10 --ray auto          # on the Ray cluster this machine has joined

Runs go to DIR/runs (train.py's --logdir, DIR = --out, default `suite`; each run's output in
DIR/runs/<env>__suite__<seed>.log), one JSON per finished run to DIR/results/<env>__<seed>.json. Resumable:
a run with a JSON is not redone; a stopped one (Ctrl-C, SIGTERM, a closed session) continues with
`train.py --resume`; so the same command completes a long suite across sessions. The flags after `--` go to
every new run: the results in one DIR must come from one protocol (a run whose settings differ is refused).
`--workers K` runs each new run on K torchrun processes with the same batch (each plays 1/K of the preset's
environments and episodes per update, on one torch thread; bench/launchers.py measures whether that is
faster for an environment). A run is resumed with the workers it began with. `--ray` (bench/suite_ray.py) runs
the runs side by side as Ray tasks, each holding the CPUs its processes use; without it, one at a time. A suite
started one way continues the other.

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
import time
from dataclasses import asdict, fields
from pathlib import Path

from bench.common import BadFile, output_fault, parse_seeds, read_json, split_settings
from bench.suite_process import STOPPED, last_words
from bench.suite_report import interquartile_means, plot, read_result, result_path, table
from bench.suite_runs import bad_input, expected_config, run_folders, run_one, say, stem
from training.logs import Console
from training.presets import TUNED
from training.run_files import lock_folder
from training.settings import Config, Parser

# every environment with a --preset tuned entry, in that file's order: MuJoCo first, the cheapest first among them
SUITE = tuple(TUNED)
# the settings that define a run's experiment (not housekeeping such as --logdir or --threads)
EXPERIMENT = [f.name for f in fields(Config) if f.metadata.get("experiment", True)]


def differences(saved: dict, expected: dict) -> list[str]:
    """The experiment's settings that differ; one newer than the saved run counts at its default (as
    ``--resume`` reads an older config), since the run was made with that behaviour."""
    defaults = json.loads(json.dumps(asdict(Config())))
    return [name for name in EXPERIMENT if saved.get(name, defaults[name]) != expected[name]]


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


def run_here(runs: list[tuple[str, int]], extra: list[str], out: Path, workers: int) -> tuple[int, list[str]]:
    """Train ``runs`` one after another on this machine; the suite's exit status so far (a signal's when one
    stopped a run) and the runs that failed."""
    failed = []
    for env, seed in runs:
        status = run_one(env, seed, extra, out, workers)
        if status in STOPPED:
            say(f"suite.py: stopped during {env} seed {seed}; the same command continues the suite")
            return status, failed
        if status != 0:
            log = Path(f"{stem(out, env, seed)}.log")
            say(f"{env} seed {seed}: train.py exited {status}: {last_words(log)} (log: {log})")
            failed.append(f"{env} seed {seed}")
    return 0, failed


def main(argv: list[str] | None = None) -> int:
    argv, extra = split_settings(sys.argv[1:] if argv is None else argv)
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default=",".join(SUITE), help="comma-separated ids (default: the whole suite)")
    parser.add_argument("--seeds", default="1-3", help="e.g. 1-3 or 1,3,5 (default: 1-3)")
    parser.add_argument("--out", default="suite", help="folder of the runs and results (default: suite)")
    parser.add_argument("--table-only", action="store_true", help="no training: the table of what DIR/results holds")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the learning curves (needs matplotlib)")
    parser.add_argument("--workers", type=int, default=1, help="torchrun processes per run (default: 1)")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run the runs as Ray tasks, side by side: on Ray started here, or on the cluster at ADDRESS "
        '(auto, ray://HOST:10001); pip install -e ".[cluster]"',
    )
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as error:
        bad_input(str(error))
    envs = [env.strip() for env in args.envs.split(",") if env.strip()]
    if not envs or any(env not in TUNED for env in envs):
        unknown = ", ".join(env for env in envs if env not in TUNED)
        named = f"no --preset tuned entry for {unknown}" if unknown else "no environment named"
        bad_input(f"--envs: {named}; environments with one: {', '.join(TUNED)}")
    if args.workers < 1:
        bad_input(f"--workers {args.workers}: give 1 or more")
    out = Path(args.out)
    if args.plot and (fault := output_fault(args.plot, "--plot")):  # before the runs, not hours later
        bad_input(fault)
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
        runs, started = [(env, seed) for env in envs for seed in seeds], time.perf_counter()
        if args.ray:
            from bench.suite_ray import run_on_ray  # Ray is an optional extra

            status, failed = run_on_ray(args.ray, runs, extra, out, args.workers)
        else:
            status, failed = run_here(runs, extra, out, args.workers)
        if status:
            return status
        say(f"suite.py: {len(runs)} runs in {time.perf_counter() - started:.1f} s of wall time")
    found = table(envs, seeds, out)
    interquartile_means(found, out)
    if args.plot:
        plot(found, args.plot)
    if failed:
        say(f"suite.py: failed runs ({len(failed)}): {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.stdout = Console(sys.stdout)  # the table to a closed pipe (| head) is lost, not the suite
    try:
        sys.exit(main())
    except BadFile as error:  # a result or run file that is not what the suite wrote
        bad_input(str(error))
    except KeyboardInterrupt:  # between runs: every result is written whole or not at all
        say("suite.py: SIGINT: stopped; the same command continues the suite")
        sys.exit(130)
