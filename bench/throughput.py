"""Training throughput beside the simulator's own speed, measured in the same run.

For each number of environments N: env-steps per second of training with the defaults (collecting
complete episodes and updating; evaluation off), and of Gymnasium's vector environment stepped with
random actions and nothing else. The ratio says how much of the machine the training loop leaves to
the simulator. Training starts from a fresh agent, so its first updates play short episodes.

    python -m bench.throughput                     # N = 1, 16, 256, 1024
    python -m bench.throughput --envs 256 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import split_settings
from envs import make_vector_env
from training import Callback, RunState, Update, config_from_args, fit


class Stopwatch(Callback):
    """Stops a run once ``seconds`` of training have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_update(self, state: RunState, update: Update) -> bool:
        return state.train_seconds >= self.seconds


def training_sps(num_envs: int, seconds: float, settings: list[str]) -> float:
    """Env steps per second of training time, over updates until ``seconds`` of training have passed (no
    evaluation but one episode at the end)."""
    args = [*settings, "--num-envs", str(num_envs), "--episodes-per-update", str(num_envs)]
    never = str(10**12)
    config = config_from_args([*args, "--total-env-steps", never, "--eval-every-steps", never, "--eval-episodes", "1"])
    state = fit(config, callback=Stopwatch(seconds), write_run=False, verbose=False).state
    return state.env_steps / state.train_seconds


def raw_sps(num_envs: int, seconds: float) -> float:
    """Env steps per second of the bare vector environment with random actions (drawn beforehand)."""
    env = make_vector_env("CartPole-v1", num_envs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(1024, num_envs))
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for row in actions:
            env.step(row)
        steps += len(actions) * num_envs
    elapsed = time.perf_counter() - started
    env.close()
    return steps / elapsed


def main() -> None:
    argv, settings = split_settings(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default="1,16,256,1024", help="values of N (default: 1,16,256,1024)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per row and side (default: 5)")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args(argv)

    rows = []
    print(f"{'N':>6} | {'training SPS':>12} | {'raw env SPS':>12} | ratio")
    for num_envs in (int(n) for n in args.envs.split(",")):
        trained, raw = training_sps(num_envs, args.seconds, settings), raw_sps(num_envs, args.seconds)
        rows.append({"num_envs": num_envs, "training_sps": trained, "raw_sps": raw, "ratio": trained / raw})
        print(f"{num_envs:6d} | {trained:12,.0f} | {raw:12,.0f} | {trained / raw:5.1%}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": settings, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
