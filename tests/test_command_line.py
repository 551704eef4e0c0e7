"""The command line a user meets: ``--help`` one line per setting at 100 columns, and messages that name the
program and the command to resume with as the program was started."""

import os
import sys
import types
from dataclasses import fields
from pathlib import Path

import pytest
from builders import run_cli

import train
from training import Config, Workers
from training.command_line import CONSOLE_COMMAND, command, flag_value, program_name


def flag_lines(text: str) -> dict[str, list[str]]:
    """For each setting, the lines of ``--help`` that begin with its flag."""
    lines = text.splitlines()
    flags = {f.name: f.name.replace("_", "-") for f in fields(Config)}
    return {
        name: [line for line in lines if line.lstrip().split(" ")[0] in (f"--{flag}", f"--[no-]{flag}")]
        for name, flag in flags.items()
    }


def test_help_gives_each_setting_one_line_with_its_default_at_100_columns(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit:
        train.main(["--help"])
    assert exit.value.code == 0
    text = capsys.readouterr().out
    assert max(map(len, text.splitlines())) <= 100
    assert len(text.splitlines()) < 100
    for f in fields(Config):
        (line,) = flag_lines(text)[f.name]
        assert line.endswith(f"(default: {flag_value(f.default)})"), line
    assert text.startswith("usage: train.py [--preset NAME] [--SETTING VALUE ...]\n")
    assert "docs/settings.md" in text and "exit status: 0 trained" in text


def test_help_piped_is_laid_out_for_100_columns(tmp_path):
    env = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    result = run_cli("--help", cwd=tmp_path, env=env)
    assert result.returncode == 0 and result.stderr == ""
    assert len(result.stdout.splitlines()) < 100
    assert all(len(lines) == 1 for lines in flag_lines(result.stdout).values())


def test_a_narrow_terminal_wraps_the_help_but_never_inside_a_default(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "60")
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    assert text.count("(default: ") == len(fields(Config)) and "(default:\n" not in text


def started(monkeypatch, argv0: str, module: str | None = None) -> None:
    """Make this process look started as ``argv0`` (``python -m module`` when a module is given)."""
    monkeypatch.setattr(sys, "argv", [argv0, "--resume", "runs/x"])
    spec = types.SimpleNamespace(name=module) if module else None
    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace(__spec__=spec))


def test_the_console_command_names_itself_and_resumes_as_it_was_started(monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    console = bin_dir / CONSOLE_COMMAND
    console.write_text("#!/bin/sh\n")
    console.chmod(0o755)
    started(monkeypatch, str(console))
    monkeypatch.setenv("PATH", str(tmp_path))  # not on the path: its path
    assert program_name() == "reinforce-train" and command() == str(console)
    monkeypatch.setenv("PATH", str(bin_dir))  # on the path: its name
    assert command() == "reinforce-train"
    assert Workers().resume_command(Path("runs/a b")) == "reinforce-train --resume 'runs/a b'"
    two = Workers(size=2).resume_command(Path("r"))
    assert two == "torchrun [the same 2 workers] --no-python reinforce-train --resume r"


@pytest.mark.parametrize(
    "argv0, module, expected, under_torchrun",
    [
        ("/home/me/project/train.py", "train", "python -m train", "torchrun [the same 2 workers] -m train"),
        ("../my project/train.py", None, "python '../my project/train.py'", "torchrun [the same 2 workers] '../my "),
        ("/usr/bin/pytest", None, "python train.py", "torchrun [the same 2 workers] train.py"),
    ],
)
def test_python_runs_resume_as_they_were_started(monkeypatch, argv0, module, expected, under_torchrun):
    started(monkeypatch, argv0, module)
    assert program_name() == "train.py" and command() == expected
    assert Workers(size=2).resume_command(Path("r")).startswith(under_torchrun)
