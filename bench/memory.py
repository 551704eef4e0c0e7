"""Does a long run grow? Runs `python train.py` for 2,000 updates (no early stop, TensorBoard logging,
checkpoints and all) and reads the process's resident memory (VmRSS, Linux) every 100 updates.

    python -m bench.memory                     # 2,000 updates of the defaults
    python -m bench.memory --updates 500 -- --env Acrobot-v1

The growth is measured from update 100 (allocators and caches warmed up) to the last update.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, split_settings, train_command


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc: this benchmark needs Linux")


def main() -> None:
    argv, settings = split_settings(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=2000, help="updates to run (default: 2000)")
    parser.add_argument("--every", type=int, default=100, help="updates between readings (default: 100)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as logdir:
        command = [
            *train_command(1), "--logdir", logdir, "--max-updates", str(args.updates),
            "--total-env-steps", str(10**12), "--no-stop-when-solved", "--print-every", str(args.every),
            "--no-gif", *settings,
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        readings = []
        for line in process.stdout:
            if line.startswith("update "):
                update = int(line.split()[1])
                readings.append((update, rss_mb(process.pid)))
                print(f"update {update:5d}  RSS {readings[-1][1]:7.1f} MB", flush=True)
        if process.wait() != 0:
            raise SystemExit(f"train.py exited with {process.returncode}")
    start, end = readings[0], readings[-1]
    print(
        f"RSS at update {start[0]}: {start[1]:.1f} MB; at update {end[0]}: {end[1]:.1f} MB; "
        f"growth {end[1] - start[1]:+.1f} MB (limit +20 MB): {'ok' if end[1] - start[1] < 20 else 'TOO MUCH'}"
    )


if __name__ == "__main__":
    main()
