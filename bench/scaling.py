"""Training throughput with 1 process and with K processes under torchrun, measured in the same run.

Each side runs `train.py` for a fixed number of updates (no early stop, evaluation only at the end)
and reads its summary.json: env steps of all workers over the main worker's training seconds. With
K workers every update holds K times the episodes, so the two sides compare throughput, not learning.

    python bench/scaling.py                        # 1 vs 2 processes, 200 updates each
    python bench/scaling.py --processes 4 -- --num-envs 64 --episodes-per-update 64
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import split_settings

ROOT = Path(__file__).resolve().parent.parent


def measure(processes: int, updates: int, settings: list[str]) -> dict:
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    with tempfile.TemporaryDirectory() as logdir:
        command = [
            *launcher, str(ROOT / "train.py"), "--logdir", logdir, "--max-updates", str(updates),
            "--total-env-steps", str(10**12), "--no-stop-when-solved", "--eval-every-steps", str(10**12),
            "--eval-episodes", "10", "--no-gif", *settings,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            raise SystemExit(f"train.py with {processes} process(es) failed: {result.stderr.strip()[-500:]}")
        summary = json.loads(next(Path(logdir).glob("*/summary.json")).read_text())
    return {
        "processes": processes,
        "env_steps": summary["env_steps"],
        "train_seconds": summary["train_seconds"],
        "sps": summary["env_steps"] / summary["train_seconds"],
    }


def main() -> None:
    argv, settings = split_settings(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2, help="processes of the torchrun side (default: 2)")
    parser.add_argument("--updates", type=int, default=200, help="updates per side (default: 200)")
    args = parser.parse_args(argv)
    rows = [measure(1, args.updates, settings), measure(args.processes, args.updates, settings)]
    print(f"{'processes':>9} | {'env steps':>10} | {'train s':>8} | {'SPS':>9}")
    for row in rows:
        print(f"{row['processes']:9d} | {row['env_steps']:10d} | {row['train_seconds']:8.2f} | {row['sps']:9,.0f}")
    print(f"speed-up with {args.processes} processes: {rows[1]['sps'] / rows[0]['sps']:.2f}x")


if __name__ == "__main__":
    main()
