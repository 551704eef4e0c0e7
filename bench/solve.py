"""How fast do the defaults solve an environment (CartPole-v1 unless `-- --env X`)? The protocol of the peers'
figures in the README:

- solved = the first check at which 100 evaluation episodes on fresh seeds average at least the target (the
  environment's reward_threshold, 475 for CartPole-v1, or `-- --target-return R`); a check at the first
  update boundary at or after every `--check-every` training env steps (5,000); budget 500,000 env steps;
- greedy criterion: the evaluation acts greedily; sampled criterion (stricter): it samples from the policy;
- training wall-clock excludes evaluation and set-up.

A run goes on after the greedy solve until the sampled one (or the budget). Evaluation has its own
environments and random generator, so a run trains identically however often it is evaluated. The report
gives, per criterion, the seeds solved, the median and the slowest seed (an unsolved seed counts as
infinitely slow). With `--out`, each seed's result is written as soon as it is known, and a run of the same
command with the same `--out` skips the seeds already there (a long benchmark can be resumed).

    python -m bench.solve                          # seeds 1-20, both criteria, then a default `python train.py`
    python -m bench.solve --seeds 1-5 --out solve.json --plot curves.png
    python -m bench.solve --seeds 1-3 -- --learning-rate 0.01   # after --, train.py settings to try
    python -m bench.solve --check-every 10000 --no-process --out acrobot.json -- --env Acrobot-v1
"""

from __future__ import annotations

import argparse
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.files import write_json
from bench.common import ROOT, BadFile, output_fault, parse_seeds, read_json, split_settings, train_command
from training import Callback, Config, Evaluation, RunState, config_from_args, fit, solves, target_return
from training.logs import Console
from training.settings import Parser

CRITERIA = ("greedy", "sampled")


class Protocol(Callback):
    """At every check: the curve's point, and the first check that solves each criterion; the run stops once
    every criterion is solved."""

    def __init__(self, criteria: tuple[str, ...], target: float | None) -> None:
        self.criteria, self.target = criteria, target
        self.solved: dict[str, dict | None] = dict.fromkeys(criteria)
        self.curve: list[dict] = []

    def on_check(self, state: RunState, evaluation: Evaluation) -> bool:
        point = {"env_steps": state.env_steps}
        for criterion in self.criteria:
            returns = evaluation.greedy if criterion == "greedy" else evaluation.sampled
            point[criterion] = float(returns.mean())
            if self.solved[criterion] is None and solves(returns, self.target):
                self.solved[criterion] = {
                    "updates": state.updates,
                    "episodes": state.episodes,
                    "env_steps": state.env_steps,
                    "train_seconds": state.train_seconds,
                    "sps": state.env_steps / state.train_seconds,
                }
        self.curve.append(point)
        return all(self.solved.values())


def solve_settings(seed: int, budget: int, check_every: int, settings: list[str]) -> Config:
    """One seed's settings under the protocol (a ``ValueError`` for bad ones)."""
    args = [*settings, "--seed", str(seed), "--total-env-steps", str(budget), "--eval-every-steps", str(check_every)]
    return config_from_args([*args, "--no-stop-when-solved"])  # the protocol stops once every criterion is met


def solve(seed: int, criteria: tuple[str, ...], budget: int, check_every: int, settings: list[str]) -> dict:
    """Train one seed under the protocol; return, per criterion, where it was solved, and the curve."""
    config = solve_settings(seed, budget, check_every, settings)
    protocol = Protocol(criteria, target_return(config))
    stopped = fit(config, callback=protocol, write_run=False, verbose=False).stopped
    if stopped in ("SIGINT", "SIGTERM"):  # the seed is unfinished: not recorded, and the benchmark ends here
        print(f"solve.py: {stopped}: stopped during seed {seed}; the same command with --out goes on", file=sys.stderr)
        sys.exit(128 + signal.Signals[stopped])
    return {
        "seed": seed,
        "env": config.env,
        "target": protocol.target,
        "solved": protocol.solved,
        "curve": protocol.curve,
    }


def solve_fault(results: Any) -> str | None:
    """What keeps ``results`` from being read as this script writes them, or None."""
    if not (isinstance(results, dict) and isinstance(results.get("protocol"), dict)):
        return "no protocol"
    runs = results.get("runs")
    if not (
        isinstance(runs, list) and all(isinstance(r, dict) and {"seed", "solved", "curve"} <= set(r) for r in runs)
    ):
        return "its runs are not a list of seeds' results"
    return None


def median(values: list[float]) -> float | None:
    """Median counting an unsolved seed as infinitely slow; None (JSON null) where that is infinite."""
    value = float(np.median(values)) if values else float("inf")
    return value if np.isfinite(value) else None


def shown(value: float | None, digits: int = 0) -> str:
    return "never" if value is None else f"{value:.{digits}f}"


def summarise(runs: list[dict], criterion: str) -> dict:
    results = [run["solved"][criterion] for run in runs]
    slow = [r or {"env_steps": float("inf"), "train_seconds": float("inf")} for r in results]
    slowest = max(range(len(runs)), key=lambda i: slow[i]["env_steps"])
    return {
        "solved": sum(r is not None for r in results),
        "seeds": len(results),
        "median_env_steps": median([r["env_steps"] for r in slow]),
        "median_train_seconds": median([r["train_seconds"] for r in slow]),
        "slowest_seed": runs[slowest]["seed"],
        "slowest_env_steps": slow[slowest]["env_steps"] if results[slowest] else None,
    }


def print_table(runs: list[dict], criteria: tuple[str, ...]) -> None:
    columns = "solved updates episodes env_steps train_s SPS"
    print("seed | " + " | ".join(f"{c}: {columns}" for c in criteria))
    for run in runs:
        cells = []
        for criterion in criteria:
            r = run["solved"][criterion]
            if r is None:
                cells.append("no".ljust(46))
                continue
            cells.append(
                f"yes {r['updates']:5d} {r['episodes']:6d} {r['env_steps']:8d} "
                f"{r['train_seconds']:7.3f} {r['sps']:8.0f}"
            )
        print(f"{run['seed']:4d} | " + " | ".join(cells))
    for criterion in criteria:
        s = summarise(runs, criterion)
        print(
            f"{criterion}: solved {s['solved']}/{s['seeds']}, median env steps {shown(s['median_env_steps'])}, "
            f"median train seconds {shown(s['median_train_seconds'], 3)}, slowest: seed {s['slowest_seed']}, "
            f"{shown(s['slowest_env_steps'])} env steps"
        )


def time_train_py() -> dict:
    """Whole-process wall time and peak memory of a default `python train.py`, imports included."""
    with tempfile.TemporaryDirectory() as logdir:
        started = time.perf_counter()
        result = subprocess.run([*train_command(1), "--logdir", logdir], capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"python train.py failed: {result.stderr.strip().splitlines()[-1]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_seconds": wall, "peak_rss_mb": peak_mb, "last_lines": result.stdout.strip().splitlines()[:2]}


def plot(runs: list[dict], criteria: tuple[str, ...], check_every: int, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit('--plot needs matplotlib: pip install -e ".[plot]"') from None
    figure, axes = plt.subplots(1, len(criteria), figsize=(6 * len(criteria), 4), squeeze=False)
    for axis, criterion in zip(axes[0], criteria):
        for run in runs:
            steps = [p["env_steps"] for p in run["curve"]]
            axis.plot(steps, [p[criterion] for p in run["curve"]], alpha=0.35, lw=1)
        grid = sorted({p["env_steps"] // check_every * check_every for run in runs for p in run["curve"]})
        # the mean over the seeds still running at each check (a solved seed stops being evaluated)
        means = [
            np.mean(
                [p[criterion] for r in runs for p in r["curve"] if p["env_steps"] // check_every * check_every == g]
            )
            for g in grid
        ]
        axis.plot(grid, means, color="black", lw=2, label="mean of the seeds still running")
        env, target = runs[0]["env"], runs[0]["target"]
        if target is not None:
            axis.axhline(target, color="red", ls="--", lw=1, label=f"solved ({target:g})")
        axis.set_xscale("log")
        axis.set(title=f"{env}, {criterion} evaluation", xlabel="env steps", ylabel="100-episode mean return")
        axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    argv, settings = split_settings(sys.argv[1:])
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1-20", help="e.g. 1-20 or 1,3,5 (default: 1-20)")
    parser.add_argument("--criterion", choices=("greedy", "sampled", "both"), default="both")
    parser.add_argument("--budget", type=int, default=500_000, help="env steps per seed (default: 500000)")
    parser.add_argument("--check-every", type=int, default=5_000, help="env steps between checks (default: 5000)")
    parser.add_argument("--out", help="write the results as JSON")
    parser.add_argument("--plot", help="write a PNG of the evaluation curves (needs matplotlib)")
    parser.add_argument("--no-process", action="store_true", help="skip timing a whole `python train.py`")
    args = parser.parse_args(argv)
    criteria = CRITERIA if args.criterion == "both" else (args.criterion,)
    if args.budget < 1 or args.check_every < 1:
        parser.error(f"--budget {args.budget} and --check-every {args.check_every}: give 1 or more")
    if args.check_every > args.budget:
        parser.error(f"--check-every {args.check_every} exceeds --budget {args.budget}: no check would be made")
    for flag, path in (("--out", args.out), ("--plot", args.plot)):
        if path and (fault := output_fault(path, flag)):  # before the seeds train, not after
            parser.error(fault)
    try:
        seeds = parse_seeds(args.seeds)
        solve_settings(seeds[0], args.budget, args.check_every, settings)
    except ValueError as error:
        parser.error(str(error))

    protocol = {
        "settings": settings,
        "criteria": list(criteria),
        "budget": args.budget,
        "check_every": args.check_every,
    }
    done = {}
    if args.out and Path(args.out).exists():  # resume a benchmark that was stopped
        try:
            earlier = read_json(Path(args.out), "results of bench.solve", "give another --out", solve_fault)
            if earlier["protocol"] != protocol:
                raise BadFile(f"{args.out} holds results of another protocol: give another --out")
        except BadFile as error:  # bad input: one line, exit status 2
            print(f"solve.py: error: {error}", file=sys.stderr)
            sys.exit(2)
        done = {run["seed"]: run for run in earlier["runs"]}
    runs = []
    for seed in seeds:
        try:
            runs.append(done.get(seed) or solve(seed, criteria, args.budget, args.check_every, settings))
        except ValueError as error:  # found when the environment is built: nothing of the seed is recorded
            parser.error(str(error))
        print(f"seed {seed} done", file=sys.stderr, flush=True)
        report = {"protocol": protocol, "criteria": {c: summarise(runs, c) for c in criteria}, "runs": runs}
        if args.out:
            write_json(Path(args.out), report)
    print_table(runs, criteria)
    if not args.no_process:
        report["train_py"] = time_train_py()
        print(
            f"python train.py (whole process, imports included): {report['train_py']['wall_seconds']:.2f} s wall, "
            f"peak RSS {report['train_py']['peak_rss_mb']:.0f} MB"
        )
    if args.out:
        write_json(Path(args.out), report)
    if args.plot:
        plot(runs, criteria, args.check_every, args.plot)


if __name__ == "__main__":
    sys.stdout = Console(sys.stdout)  # the table to a closed pipe (| head) is lost, not the results
    main()
