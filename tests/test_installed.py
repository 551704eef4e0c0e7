"""The project installed (not editable) as a user installs it: the console command ``reinforce-train`` and
``python -m train`` work from any folder, name themselves, and a stopped run's resume command works as printed."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import pytest
from builders import ROOT

SOURCES = ("pyproject.toml", "README.md", "train.py", "agents", "envs", "training")  # what pip builds from
SHORT = ["--no-gif", "--eval-episodes", "5", "--logdir", "runs"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project built and installed into a folder of its own; the environment that imports it from there (the
    dependencies from this interpreter's), and a folder outside the project to run in."""
    root = tmp_path_factory.mktemp("installed")
    source = root / "source"  # a copy: an in-tree build would write build/ and *.egg-info into the project
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    target = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    build = subprocess.run([*pip, "--target", str(target), str(source)], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("COLUMNS", None)
    folder = root / "elsewhere"
    folder.mkdir()
    return target, env, folder


def run(args, installed, **kwargs):
    _, env, folder = installed
    return subprocess.run(args, env=env, cwd=folder, capture_output=True, text=True, timeout=120, **kwargs)


def test_python_dash_m_train_runs_the_installed_copy(installed):
    target, _, _ = installed
    where = run([sys.executable, "-c", "import train, training; print(train.__file__, training.__file__)"], installed)
    assert where.stdout.split() == [str(target / "train.py"), str(target / "training" / "__init__.py")]
    result = run([sys.executable, "-m", "train", "--help"], installed)
    assert result.returncode == 0 and result.stderr == ""
    assert "  python -m train --resume runs/<run>" in result.stdout


def test_the_console_command_helps_trains_and_refuses_bad_input_in_its_own_name(installed):
    console = str(installed[0] / "bin" / "reinforce-train")
    result = run([console, "--help"], installed)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: reinforce-train [--preset NAME]") and len(result.stdout.splitlines()) < 100
    assert f"  {console} --resume runs/<run>" in result.stdout and "train.py" not in result.stdout
    result = run([console, "--total-env-steps", "2000", *SHORT], installed)
    assert result.returncode == 0, result.stderr
    assert re.search(r"after \d+ env steps", result.stdout) and result.stderr == ""
    assert "train.py" not in result.stdout
    (run_dir,) = (installed[2] / "runs").iterdir()
    assert (run_dir / "summary.json").is_file()
    result = run([console, "--seed", "-1"], installed)
    assert result.returncode == 2 and result.stderr.startswith("reinforce-train: error: seed must be")


def test_a_stopped_console_run_prints_a_resume_command_that_works(installed):
    console = str(installed[0] / "bin" / "reinforce-train")
    args = [console, "--no-stop-when-solved", "--print-every", "1", "--no-gif", "--eval-episodes", "5"]
    _, env, folder = installed
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen([*args, "--logdir", "stopped"], env=env, cwd=folder, **pipes) as process:
        for line in process.stdout:
            if line.startswith("update    2"):
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT, stderr
    stopped = re.fullmatch(
        r"reinforce-train: SIGINT: stopped after update (\d+), saved .*; resume with: (.*)\n", stderr
    )
    assert stopped, stderr
    resume = shlex.split(stopped.group(2))
    assert resume[:2] == [console, "--resume"]
    updates = int(stopped.group(1)) + 1
    result = subprocess.run(
        [*resume, "--max-updates", str(updates)], env=env, cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = (folder / "stopped").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["updates"] == updates
