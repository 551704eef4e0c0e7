"""bench.suite's runs as Ray tasks (``--ray``): the same results and table as without Ray, two nodes of a
cluster, a run whose worker is killed, Ctrl-C on the driver and the suite continued without Ray."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from builders import ROOT, as_in_a_terminal
from ray.cluster_utils import Cluster
from test_suite import suite, table

ENVS = ["--envs", "CartPole-v1,Acrobot-v1", "--seeds", "1,2"]
SHORT = ["--", "--total-env-steps", "3000", "--eval-every-steps", "1000", "--eval-episodes", "2"]
# long enough to be caught mid-run: about 5 s of training, a checkpoint every 5 updates
LONG = ["--", "--total-env-steps", "50000", "--no-stop-when-solved", "--eval-every-steps", "25000"]
LONG += ["--eval-episodes", "5", "--checkpoint-every", "5"]
WHERE_AND_WHEN = {"run_dir", "train_seconds", "wall_seconds", "node", "cpus", "ray_node_id"}


def results(out: Path) -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in (out / "results").glob("*__*.json")}


def what_was_learnt(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in WHERE_AND_WHEN}


def train_processes(env: str, seed: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of the train.py processes of the suite's (env, seed) run (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        named = [b"--env", env.encode(), b"--seed", str(seed).encode()] == command[2:6]
        resumed = any(f"{env}__suite__{seed}__".encode() in part for part in command)
        if any(part.endswith(b"train.py") for part in command) and (named or resumed):
            found.append((int(entry.name), parent))
    return found


def wait_until(condition, timeout=120, what="the runs"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not in time"
        time.sleep(0.2)


def test_a_tiny_suite_on_ray_gives_the_results_and_the_table_it_gives_without(tmp_path):
    here = suite(*ENVS, "--out", str(tmp_path / "here"), *SHORT)
    on_ray = suite(*ENVS, "--out", str(tmp_path / "ray"), "--ray", *SHORT)
    assert here.returncode == 0, here.stderr
    assert on_ray.returncode == 0, on_ray.stderr
    by_here, by_ray = results(tmp_path / "here"), results(tmp_path / "ray")
    assert sorted(by_ray) == sorted(by_here) and len(by_ray) == 4
    for name, result in by_ray.items():
        assert what_was_learnt(result) == what_was_learnt(by_here[name]), name  # the same curves, evaluations
        assert result["cpus"] == 1 and result["ray_node_id"]  # one process of one torch thread: one CPU
    (header, rows_here), (header_on_ray, rows_on_ray) = table(here.stdout), table(on_ray.stdout)
    assert header_on_ray == header
    for rows in (rows_here, rows_on_ray):
        for row in rows.values():
            del row["wall s"]  # Ray runs two at a time, and starts first
    assert rows_on_ray == rows_here
    other = suite(*ENVS, "--out", str(tmp_path / "ray"), "--ray", *SHORT, "--learning-rate", "0.02")
    assert other.returncode == 2 and "has other settings (learning_rate)" in other.stderr  # one protocol per --out


def test_the_runs_spread_over_two_nodes_and_their_results_come_home(tmp_path):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        done = suite(*ENVS, "--out", str(tmp_path / "suite"), "--ray", cluster.address, *SHORT)
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stderr
    found = results(tmp_path / "suite")
    assert len(found) == 4
    assert len({result["ray_node_id"] for result in found.values()}) == 2  # two runs at a time, one CPU each


def test_a_run_whose_worker_is_killed_resumes_from_its_checkpoint_and_every_run_finishes_once(tmp_path):
    out = tmp_path / "suite"
    command = [sys.executable, "-m", "bench.suite", *ENVS, "--out", str(out), "--ray", *LONG]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoints = lambda: list((out / "runs").glob("CartPole-v1__suite__1__*/checkpoint.pt"))  # noqa: E731
    wait_until(lambda: checkpoints() and train_processes("CartPole-v1", 1), what="seed 1's first checkpoint")
    [(_, worker)] = train_processes("CartPole-v1", 1)[:1]
    os.kill(worker, signal.SIGKILL)  # the Ray worker running the task, not train.py
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert len(results(out)) == 4
    assert sorted(line.split(":")[0] for line in stderr.splitlines() if ": finished, " in line) == [
        f"{env} seed {seed}" for env in ("Acrobot-v1", "CartPole-v1") for seed in (1, 2)
    ]
    sessions = json.loads((out / "runs" / "CartPole-v1__suite__1.sessions.json").read_text())
    assert "--resume" in sessions[-1]["command"]  # resumed in its folder, not started again
    assert len(list((out / "runs").glob("CartPole-v1__suite__1__*"))) == 1
    assert "resuming" in stderr


def test_ctrl_c_stops_the_runs_with_their_checkpoints_and_the_suite_goes_on_without_ray(tmp_path):
    out, three = tmp_path / "suite", ["--envs", "CartPole-v1", "--seeds", "1-3"]
    longer = [*LONG, "--total-env-steps", "200000"]  # about 10 s each: Ctrl-C comes mid-run
    command = [sys.executable, "-m", "bench.suite", *three, "--out", str(out), "--ray", *longer]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=as_in_a_terminal,  # Ctrl-C reaches a process a terminal started
    )
    wait_until(lambda: len(list((out / "runs").glob("*/checkpoint.pt"))) >= 2, what="two checkpoints")
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "continues the suite" in stderr and "Traceback" not in stderr
    assert not any(train_processes("CartPole-v1", seed) for seed in (1, 2, 3))  # every run stopped
    finished = set(results(out))
    stopped = [folder for folder in (out / "runs").glob("*__*") if folder.is_dir()]
    assert len(stopped) == 2 and all((folder / "checkpoint.pt").is_file() for folder in stopped)

    rest = suite(*three, "--out", str(out), *longer)
    assert rest.returncode == 0, rest.stderr
    assert len(results(out)) == 3
    for name in finished:
        env, seed = name.removesuffix(".json").split("__")
        assert f"{env} seed {seed}: done" in rest.stderr  # not trained again
    assert "resuming" in rest.stderr
