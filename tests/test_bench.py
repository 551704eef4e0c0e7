"""Smoke runs of the benchmark scripts, so that they keep working (their figures come from full runs)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(script, *args):
    module = "bench." + script.removesuffix(".py")
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def cpu_seconds(pid):
    """The CPU time a process has used (Linux's /proc): a measure of its progress that a busy machine does not skew."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_solve_smoke(tmp_path):
    out = tmp_path / "solve.json"
    stdout = run("solve.py", "--seeds", "1-2", "--budget", "12000", "--no-process", "--out", str(out))
    assert "greedy: solved" in stdout and "sampled: solved" in stdout
    report = json.loads(out.read_text())
    assert [r["seed"] for r in report["runs"]] == [1, 2]
    for run_ in report["runs"]:
        steps = [point["env_steps"] for point in run_["curve"]]
        assert steps and all(b - a >= 1 for a, b in zip(steps, steps[1:]))
        assert all(s >= 5000 * (i + 1) for i, s in enumerate(steps))  # a check per 5,000 steps, not before


def test_solve_stops_on_sigterm_and_records_no_unfinished_seed(tmp_path):
    """A SIGTERM stops the whole benchmark, not only the seed being trained."""
    out = tmp_path / "solve.json"
    args = ["--seeds", "1-3", "--no-process", "--out", str(out), "--", "--target-return", "100000"]
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.solve", *args], stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    deadline = time.monotonic() + 120
    while cpu_seconds(process.pid) < 8:  # inside seed 1 (imports take about 3 s of CPU), however busy the machine
        assert time.monotonic() < deadline and process.poll() is None, "seed 1 never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)  # its target can never be met: it would train its whole 500,000 steps
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("solve.py: SIGTERM: stopped during seed 1;")
    assert not out.exists()  # no seed finished, none recorded


def test_throughput_smoke():
    stdout = run("throughput.py", "--envs", "4", "--seconds", "0.3")
    row = stdout.strip().splitlines()[-1].split("|")
    assert int(row[0]) == 4 and float(row[1].replace(",", "")) > 0 and float(row[2].replace(",", "")) > 0


def test_scaling_smoke():
    stdout = run("scaling.py", "--updates", "2", "--repeats", "1", "--num-envs", "2", "--episodes-per-update", "3")
    rows = {line.split("|")[0].strip(): line.split("|")[1].strip() for line in stdout.splitlines() if "|" in line}
    assert rows["1"] == "4 x 6" and rows["2"] == "2 x 3"  # the same global batch on both sides
    assert "speed-up with 2 processes" in stdout


def test_launchers_smoke(tmp_path):
    out = tmp_path / "launchers.json"
    stdout = run("launchers.py", "--envs", "CartPole-v1", "--steps", "2000", "--repeats", "1", "--out", str(out))
    rows = [line.split(" | ") for line in stdout.strip().splitlines()]
    assert [row[1] for row in rows] == ["sync, all cores", "sync, 1 thread", "async", "torchrun, 2 workers"]
    runs = json.loads(out.read_text())["CartPole-v1"]
    assert all(r["env_steps"] >= 2000 and r["train_seconds"] > 0 for rs in runs.values() for r in rs)
    sync, threads, vectorized = (runs[name][0]["env_steps"] for name in ("sync, all cores", "sync, 1 thread", "async"))
    assert sync == threads == vectorized  # the same episodes in one process, whatever runs them


def test_acting_smoke():
    stdout = run("acting.py", "--batches", "1,4", "--calls", "20", "--repeats", "1")
    rows = [line.split("|") for line in stdout.strip().splitlines()]
    assert len(rows) == 6 and all(float(row[2].split()[0]) > 0 for row in rows)


def test_threads_smoke():
    stdout = run("threads.py", "--rounds", "1", "--threads", "default,1", "--busy", "1", "--", "--max-updates", "1")
    rows = [line for line in stdout.splitlines() if line.startswith("threads ")]
    assert len(rows) == 2 and "busy processes: 1" in stdout and rows[0].split("|")[2].strip() == "x1.00"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "0"], "give 1 or more"),
        (["--check-every", "0"], "give 1 or more"),
        (["--budget", "3000"], "--check-every 5000 exceeds --budget 3000"),
        (["--seeds", "99999999999999999999999"], "seed must be an integer"),
        (["--out", "{tmp}/no_folder/x.json"], "no folder"),
        (["--out", "/dev/zero"], "is not a file"),
        (["--plot", "{tmp}/no_folder/x.png"], "no folder"),
        (["--seeds", "1", "--", "--env", "Nope-v0"], "unknown environment id 'Nope-v0'"),
    ],
)
def test_solve_bad_input_is_one_line_before_any_seed_trains(tmp_path, args, message):
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    result = subprocess.run([sys.executable, "-m", "bench.solve", *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr and "seed 1 done" not in result.stderr


def test_a_table_to_a_closed_pipe_is_lost_not_the_results(tmp_path):
    """``python -m bench.solve ... | head -1``: the results file is written, with no traceback."""
    out = tmp_path / "solve.json"
    command = [sys.executable, "-m", "bench.solve", "--seeds", "1", "--budget", "6000", "--no-process"]
    process = subprocess.Popen(
        [*command, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    os.close(process.stdout.fileno())  # the reader is gone
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 0, stderr
    assert "Traceback" not in stderr and json.loads(out.read_text())["runs"][0]["seed"] == 1
