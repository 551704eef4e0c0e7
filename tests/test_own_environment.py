"""An environment of a user's own from the command line, ``--env module:EnvId``: the README's file, trained,
watched, resumed and run under torchrun, each in a subprocess as a user runs it; and the one-line errors for
a module that does not import or registers nothing."""

import os
import re
import subprocess
import sys

import gymnasium as gym
import pytest
import torch
from builders import ROOT, TRAIN, one_line, only_run, run_cli

from training import Config, fit

ENV = "my_envs:Corridor-v0"


@pytest.fixture
def user_folder(tmp_path):
    """A folder holding the README's ``my_envs.py``, and the environment variables that make it importable."""
    readme = (ROOT / "README.md").read_text()
    source = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "gym.register(" in block)
    assert len([line for line in source.splitlines() if line.strip()]) <= 12
    (tmp_path / "my_envs.py").write_text(source)
    (tmp_path / "broken.py").write_text('raise RuntimeError("boom")\n')
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(0)\n")  # what a script's last line may do
    (tmp_path / "needs.py").write_text("import no_such_dependency_xyz\n")
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
    refused = run_cli("--watch", str(run), cwd=folder, env=env)  # a run folder names a module: the user must
    assert refused.returncode == 2 and f"(--env {ENV})" in refused.stderr  # name it to run it
    watched = run_cli("--watch", str(run), "--env", ENV, "--watch-episodes", "2", cwd=folder, env=env)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.splitlines() == [
        f"playing {run / 'model.pt'}",  # which of the run's agents it plays
        "my_envs:Corridor-v0 has no rgb_array render mode: its episodes are played, not shown",
        "episode 1: return 1 in 5 steps (limit 50)",
        "episode 2: return 1 in 5 steps (limit 50)",
    ]
    elsewhere = run_cli("--watch", str(run), "--env", "my_envs:Nothing-v0", cwd=folder, env=env)
    assert elsewhere.returncode == 2 and "my_envs registers no environment" in elsewhere.stderr
    resumed = run_cli("--resume", str(run), "--env", ENV, "--max-updates", "110", cwd=folder, env=env)
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
        (
            ["--env", "broken:Corridor-v0"],
            "cannot import 'broken' for the environment 'broken:Corridor-v0' (RuntimeError: boom): fix the module",
        ),
        (
            ["--env", "quits:Corridor-v0"],
            "cannot import 'quits' for the environment 'quits:Corridor-v0' (SystemExit: 0): fix the module",
        ),
        (
            ["--env", "needs:Corridor-v0"],
            "cannot import 'needs' for the environment 'needs:Corridor-v0' (ModuleNotFoundError: No module named "
            "'no_such_dependency_xyz'): fix the module",
        ),
        (["--env", "my_envs:Nothing-v0"], "my_envs registers no environment 'Nothing-v0': call gymnasium.register"),
    ],
)
def test_a_module_that_does_not_import_or_register_is_one_line(user_folder, args, message):
    folder, env = user_folder
    result = run_cli(*args, "--logdir", "runs", cwd=folder, env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"train.py: error: {message}")
    assert not (folder / "runs").exists()


def test_a_run_folder_from_elsewhere_runs_none_of_its_code(saved_run, tmp_path):
    """A shared run folder whose config.json and checkpoint name a module it brings along: watching or resuming
    it imports nothing, and says in one line how to trust it; naming the module on the command line runs it."""
    shared = tmp_path / "shared_run"
    shared.mkdir()
    _, run, _ = saved_run
    for name in ("model.pt", "config.json"):
        (shared / name).write_bytes((run / name).read_bytes())
    (shared / "__init__.py").write_text("")
    (shared / "payload.py").write_text('from pathlib import Path\nPath(__file__).with_name("ran").write_text("")\n')
    planted = "shared_run.payload:CartPole-v1"
    (shared / "config.json").write_text((shared / "config.json").read_text().replace('"CartPole-v1"', f'"{planted}"'))
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    checkpoint["config"]["env"] = planted
    torch.save(checkpoint, shared / "checkpoint.pt")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for mode in ("--watch", "--resume"):
        result = run_cli(mode, str(shared), cwd=tmp_path, env=env)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert "whose module 'shared_run.payload' would be imported" in result.stderr
        assert f"(--env {planted})" in result.stderr
    with pytest.raises(ValueError, match="to trust it") as refused:
        fit(resume=shared)
    one_line(refused.value)
    assert not (shared / "ran").exists()
    trusted = run_cli("--watch", str(shared), "--env", planted, "--watch-episodes", "1", cwd=tmp_path, env=env)
    assert trusted.returncode == 0 and (shared / "ran").exists(), trusted.stderr


QUITTER = """
import gymnasium as gym
from my_envs import Corridor


class QuitsLater(Corridor):  # its step exits the process after 400 steps, as a window's quit handler may
    steps = 0

    def step(self, action):
        QuitsLater.steps += 1
        if QuitsLater.steps > 400:
            raise SystemExit(0)
        return super().step(action)


class FailsAtReset(Corridor):
    def reset(self, seed=None, options=None):
        raise RuntimeError("no track loaded")


gym.register("QuitsLater-v0", entry_point=QuitsLater, max_episode_steps=50)
gym.register("FailsAtReset-v0", entry_point=FailsAtReset, max_episode_steps=50)
"""


def test_an_environment_that_raises_or_exits_mid_run_is_one_line_and_the_checkpoint_kept(user_folder):
    folder, env = user_folder
    (folder / "quitter.py").write_text(QUITTER)
    args = ["--checkpoint-every", "1", "--logdir", "runs", "--no-gif"]
    result = run_cli("--env", "quitter:QuitsLater-v0", *args, cwd=folder, env=env)
    assert result.returncode == 4 and len(result.stderr.splitlines()) == 1, result.stderr
    line = result.stderr
    assert line.startswith("train.py: error: quitter:QuitsLater-v0: the environment's step raised SystemExit: 0 at ")
    assert "quitter.py:12, in step" in line and f"its last checkpoint is intact: python {TRAIN} --resume" in line
    run = only_run(folder / "runs")
    assert (run / "checkpoint.pt").is_file()
    failed = run_cli("--env", "quitter:FailsAtReset-v0", *args, cwd=folder, env=env)
    assert failed.returncode == 4 and len(failed.stderr.splitlines()) == 1, failed.stderr
    assert "reset raised RuntimeError: no track loaded at " in failed.stderr
    assert failed.stderr.rstrip().endswith("(no checkpoint)")
    watched = run_cli("--watch", str(run), "--env", "quitter:FailsAtReset-v0", cwd=folder, env=env)
    assert watched.returncode == 4 and len(watched.stderr.splitlines()) == 1, watched.stderr
    assert "the environment's reset raised RuntimeError: no track loaded at " in watched.stderr


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ShapeShift", "step raised ValueError: Output array is the wrong shape"),  # an observation of shape (2,)
        ("StringObs", "reset raised"),  # Gymnasium's checker says why first: "expecting a numpy array"
        ("ArrayReward", "step raised ValueError: setting an array element with a sequence"),
        ("BareReset", "reset raised ValueError: not enough values to unpack (expected 2, got 1)"),
        ("FourValues", "step raised ValueError: not enough values to unpack (expected 5, got 4)"),
        ("OutOfRange", "observations do not fit its space: observations outside Discrete(3)"),
    ],
)
def test_an_environment_that_breaks_gymnasium_s_rules_is_named_in_one_line(tmp_path, name, rule):
    """Each breaks a rule of Gymnasium's Env API mid-run, which would otherwise end in a raw traceback naming
    neither. Gymnasium's own checker (which gymnasium.make applies) may warn first; the run's last line names the
    environment and the rule."""
    (tmp_path / "broken_envs.py").write_text((ROOT / "tests" / "data" / "broken_envs.py").read_text())
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = run_cli("--env", f"broken_envs:{name}-v0", "--no-gif", "--max-updates", "3", cwd=tmp_path, env=env)
    assert result.returncode == 4 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"train.py: error: broken_envs:{name}-v0: the environment's ") and rule in last


class NoSpaces(gym.Env):
    def reset(self, seed=None, options=None):
        return 0, {}


@pytest.mark.parametrize(
    "make, message",
    [(lambda: None, "made NoneType, not a gymnasium.Env"), (NoSpaces, "NoSpaces has no observation_space")],
)
def test_a_callable_that_makes_no_usable_environment_is_one_value_error(tmp_path, make, message):
    with pytest.raises(ValueError, match=message):
        fit(Config(total_env_steps=100, logdir=str(tmp_path)), env=make, verbose=False)
    assert not any(tmp_path.iterdir())  # nothing written
