"""Training throughput of one process and of K processes under torchrun, on the same global batch.

Both sides learn from equally large updates: the single process runs K times the per-worker environments
and episodes, each of the K workers its share. So the two sides run the same algorithm on the same amount
of data per update (only the episodes' seeds differ), and the ratio of their env steps per second is what
spreading one run over K processes gains. Each side runs `train.py` for a fixed number of updates, with no
early stop and no evaluation before the end; SPS = env steps of all workers / the main worker's training
seconds (collecting and updating, waiting for the other workers included). The two sides alternate,
`--repeats` times, and the table reports medians.

    python -m bench.scaling                                    # 1 vs 2 processes, 8 envs x 8 episodes per worker
    python -m bench.scaling --num-envs 64 --episodes-per-update 64
    python -m bench.scaling --processes 4 -- --hidden-sizes 128   # train.py settings after --
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, split_settings, train_command
from training import Config


def measure(processes: int, num_envs: int, episodes: int, updates: int, settings: list[str]) -> dict:
    """One `train.py` run with ``processes`` workers of ``num_envs`` environments and ``episodes``
    episodes per update each."""
    with tempfile.TemporaryDirectory() as logdir:
        command = [
            *train_command(processes), "--logdir", logdir, "--max-updates", str(updates),
            "--num-envs", str(num_envs), "--episodes-per-update", str(episodes),
            "--total-env-steps", str(10**12), "--no-stop-when-solved", "--eval-every-steps", str(10**12),
            "--eval-episodes", "10", "--no-gif", *settings,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            raise SystemExit(f"train.py with {processes} process(es) failed: {result.stderr.strip()[-500:]}")
        summary = json.loads(next(Path(logdir).glob("*/summary.json")).read_text())
    return {"env_steps": summary["env_steps"], "sps": summary["env_steps"] / summary["train_seconds"]}


def main() -> None:
    argv, settings = split_settings(sys.argv[1:])
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2, help="workers of the torchrun side (default: 2)")
    parser.add_argument("--num-envs", type=int, default=defaults.num_envs, help="environments per worker")
    parser.add_argument("--episodes-per-update", type=int, default=defaults.episodes_per_update, help="per worker")
    parser.add_argument("--updates", type=int, default=100, help="updates per run (default: 100)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating (default: 3)")
    args = parser.parse_args(argv)
    k, envs, episodes = args.processes, args.num_envs, args.episodes_per_update
    sides = {1: (k * envs, k * episodes), k: (envs, episodes)}
    runs: dict[int, list[dict]] = {processes: [] for processes in sides}
    for _ in range(args.repeats):
        for processes, (side_envs, side_episodes) in sides.items():
            runs[processes].append(measure(processes, side_envs, side_episodes, args.updates, settings))
    print(f"each update: {k * episodes} episodes on {k * envs} environments in all; {args.updates} updates per run")
    print(
        f"{'processes':>9} | {'envs x episodes each':>20} | {'median env steps':>16} | {'median SPS':>10} | SPS per run"
    )
    for processes, (side_envs, side_episodes) in sides.items():
        sps = [run["sps"] for run in runs[processes]]
        steps = statistics.median(run["env_steps"] for run in runs[processes])
        shape, each = f"{side_envs} x {side_episodes}", ", ".join(f"{x:,.0f}" for x in sps)
        print(f"{processes:9d} | {shape:>20} | {steps:16,.0f} | {statistics.median(sps):10,.0f} | {each}")
    gain = statistics.median(r["sps"] for r in runs[k]) / statistics.median(r["sps"] for r in runs[1])
    print(f"speed-up with {k} processes (ratio of medians): {gain:.2f}x")


if __name__ == "__main__":
    main()
