"""Which way of running a suite run trains fastest here: one process with Gymnasium's sync vector env (with
torch's threads on every core, and on one, the default), one process with the async vector env (each
environment in its own subprocess), or two torchrun workers with the same batch (each plays half of it, on
one thread).

Each row is the start of a `train.py --preset tuned` run: ``--steps`` env steps from a fresh agent, no
evaluation; its speed is env steps per second of training time (summary.json's train_seconds, which leaves
out start-up and evaluation). The launchers alternate, ``--repeats`` rounds; medians and their ratio to the
first launcher are printed. Every run of one environment plays the same seeds; the torchrun one plays other
episodes (each worker draws its own), the others the same ones.

    python -m bench.launchers --envs HalfCheetah-v5,Humanoid-v5 --steps 100000 --repeats 3 --out launchers.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from agents.files import write_json
from bench.common import train_command, worker_share
from training.settings import make_config

LAUNCHERS = {  # name: (train.py's flags, processes)
    "sync, all cores": (["--vectorization", "sync", "--threads", "none"], 1),
    "sync, 1 thread": (["--vectorization", "sync", "--threads", "1"], 1),
    "async": (["--vectorization", "async"], 1),
    "torchrun, 2 workers": (["--vectorization", "sync", "--threads", "1"], 2),
}


def run(env: str, launcher: str, steps: int, logdir: Path) -> dict:
    """One run's env steps and training seconds, from its summary.json."""
    flags, workers = LAUNCHERS[launcher]
    share = worker_share(asdict(make_config({"env": env}, "tuned")), workers)  # of the preset's batch
    flags = [*flags, "--num-envs", str(share["num_envs"]), "--episodes-per-update", str(share["episodes_per_update"])]
    command = [*train_command(workers), "--env", env, "--preset", "tuned", "--total-env-steps", str(steps), *flags]
    command += ["--eval-every-steps", str(10 * steps), "--no-gif", "--logdir", str(logdir)]
    subprocess.run(command, check=True, capture_output=True)
    (folder,) = logdir.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    return {"env_steps": summary["env_steps"], "train_seconds": summary["train_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default="HalfCheetah-v5,Humanoid-v5", help="comma-separated ids")
    parser.add_argument("--steps", type=int, default=100_000, help="env steps per run (default: 100,000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every launcher (default: 3)")
    parser.add_argument("--out", help="write the runs and medians as JSON, after every run")
    args = parser.parse_args()

    results: dict[str, dict[str, list[dict]]] = {}
    for env in args.envs.split(","):
        runs = results[env] = {launcher: [] for launcher in LAUNCHERS}
        for _ in range(args.repeats):
            for launcher in LAUNCHERS:
                with tempfile.TemporaryDirectory() as logdir:
                    runs[launcher].append(run(env, launcher, args.steps, Path(logdir)))
                if args.out:
                    write_json(Path(args.out), results)
        speeds = {
            name: float(np.median([r["env_steps"] / r["train_seconds"] for r in rs])) for name, rs in runs.items()
        }
        first = next(iter(speeds.values()))
        for launcher, speed in speeds.items():
            slowest = min(r["env_steps"] / r["train_seconds"] for r in runs[launcher])
            print(f"{env} | {launcher} | {speed:,.0f} env steps/s (slowest {slowest:,.0f}) | x{speed / first:.2f}")


if __name__ == "__main__":
    main()
