"""An environment of a user's own from the command line, ``--env module:EnvId``: the README's file, trained,
watched, resumed and run under torchrun, each in a subprocess as a user runs it; and the one-line errors for
a module that does not import or registers nothing."""

import os
import re
import subprocess
import sys

import pytest
from builders import ROOT, only_run, run_cli

ENV = "my_envs:Corridor-v0"


@pytest.fixture
def user_folder(tmp_path):
    """A folder holding the README's ``my_envs.py``, and the environment variables that make it importable."""
    readme = (ROOT / "README.md").read_text()
    source = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "gym.register(" in block)
    assert len([line for line in source.splitlines() if line.strip()]) <= 12
    (tmp_path / "my_envs.py").write_text(source)
    (tmp_path / "broken.py").write_text('raise RuntimeError("boom")\n')
    return tmp_path, {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_train_watch_and_resume_an_environment_of_one_s_own(user_folder):
    folder, env = user_folder
    result = run_cli("--env", ENV, "--eval-episodes", "10", "--logdir", "runs", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^solved at \d+ env steps", result.stdout, re.M), result.stdout
    assert result.stderr.splitlines() == [
        "train.py: warning: no GIF (ValueError: my_envs:Corridor-v0 has no rgb_array render mode); "
        "the run's results are saved (--no-gif skips recording)"
    ]
    run = only_run(folder / "runs")
    assert run.name.startswith("my_envs.Corridor-v0__reinforce__1__")  # no colon in a folder name
    watched = run_cli("--watch", str(run), "--watch-episodes", "2", cwd=folder, env=env)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.splitlines() == [
        f"playing {run / 'model.pt'}",  # which of the run's agents it plays
        "my_envs:Corridor-v0 has no rgb_array render mode: its episodes are played, not shown",
        "episode 1: return 1 in 5 steps (limit 50)",
        "episode 2: return 1 in 5 steps (limit 50)",
    ]
    elsewhere = run_cli("--watch", str(run), "--env", "my_envs:Nothing-v0", cwd=folder, env=env)
    assert elsewhere.returncode == 2 and "my_envs registers no environment" in elsewhere.stderr
    resumed = run_cli("--resume", str(run), "--max-updates", "110", cwd=folder, env=env)  # 5 updates more
    assert resumed.returncode == 0 and "solved at" in resumed.stdout, resumed.stderr


def test_torchrun_trains_an_environment_of_one_s_own(user_folder):
    folder, env = user_folder
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    args = [str(ROOT / "train.py"), "--env", ENV, "--max-updates", "2", "--no-gif", "--eval-episodes", "4"]
    result = subprocess.run([*command, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert only_run(folder / "runs").name.startswith("my_envs.Corridor-v0__reinforce__1__")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--env", "no_such_module_xyz:Corridor-v0"],
            "cannot import 'no_such_module_xyz' for the environment 'no_such_module_xyz:Corridor-v0' "
            "(ModuleNotFoundError: No module named 'no_such_module_xyz'): add its folder to PYTHONPATH",
        ),
        (["--env", "broken:Corridor-v0"], "cannot import 'broken' for the environment 'broken:Corridor-v0' "),
        (["--env", "my_envs:Nothing-v0"], "my_envs registers no environment 'Nothing-v0': call gymnasium.register"),
    ],
)
def test_a_module_that_does_not_import_or_register_is_one_line(user_folder, args, message):
    folder, env = user_folder
    result = run_cli(*args, "--logdir", "runs", cwd=folder, env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"train.py: error: {message}")
    assert not (folder / "runs").exists()
