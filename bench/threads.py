"""How the number of torch threads changes a run's training time, on a quiet machine and on a busy one.

Each round runs `train.py` once per thread setting (alternating), and reads its training seconds and env
steps from summary.json (set-up and evaluation excluded; another thread count rounds floats differently, so
a run may train for other env steps, which the report shows). With `--busy N`, N processes spin on the CPU for the whole
benchmark, as a second run or a test suite beside it would. The report gives, per setting, the median
training seconds of the rounds, the slowest round, and the ratio of medians to the first setting.

    python -m bench.threads                                   # torch's own threads (every core) against one
    python -m bench.threads --busy 1 --rounds 3               # with one core kept busy
    python -m bench.threads --threads none,1,2 -- --env Acrobot-v1 --seed 2   # train.py settings after --
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, split_settings, train_command

RUN = ["--seed", "3", "--no-gif", "--eval-episodes", "20"]  # a whole default run, solved at its first checks


def spin() -> None:
    while True:
        pass


def train_seconds(threads: str, settings: list[str]) -> tuple[float, int]:
    """One `train.py` run's training seconds and env steps; ``threads`` "default" gives no --threads (one
    thread), "none" torch's own (every core)."""
    flags = [] if threads == "default" else ["--threads", threads]
    with tempfile.TemporaryDirectory() as logdir:
        command = [*train_command(1), *RUN, *settings, *flags, "--logdir", logdir]
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        summary = json.loads(next(Path(logdir).glob("*/summary.json")).read_text())
        return summary["train_seconds"], summary["env_steps"]


def main() -> None:
    argv, settings = split_settings(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="none,1", help="--threads values to compare (default: none,1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every setting (default: 3)")
    parser.add_argument("--busy", type=int, default=0, help="processes kept spinning meanwhile (default: 0)")
    args = parser.parse_args(argv)
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    try:
        runs: dict[str, list[tuple[float, int]]] = {threads: [] for threads in args.threads.split(",")}
        for _ in range(args.rounds):
            for threads in runs:
                runs[threads].append(train_seconds(threads, settings))
    finally:
        for process in spinners:
            process.terminate()
    first = statistics.median(seconds for seconds, _ in next(iter(runs.values())))
    print(f"busy processes: {args.busy}; train.py {' '.join([*RUN, *settings])}")
    for threads, results in runs.items():  # the thread count changes float rounding, so the run may differ
        seconds, steps = [s for s, _ in results], sorted({steps for _, steps in results})
        median = statistics.median(seconds)
        print(
            f"threads {threads:>7} | median {median:.3f} s (slowest {max(seconds):.3f}) | x{median / first:.2f} "
            f"| env steps {', '.join(map(str, steps))}"
        )


if __name__ == "__main__":
    main()
