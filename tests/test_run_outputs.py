"""What a finished run shows: its TensorBoard points read back from the event file, and its terminal
output read from a subprocess."""

import io
import json
import shlex
import subprocess

from builders import only_run, run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tqdm import tqdm

import train


def events_of(run):
    events = EventAccumulator(str(run), size_guidance={"histograms": 0, "scalars": 0})
    events.Reload()
    return events


def test_final_metric_and_histograms_sit_at_the_run_s_steps(tmp_path):
    args = ["--max-updates", "3", "--histogram-every", "50", "--eval-episodes", "5", "--no-gif"]
    assert train.main([*args, "--logdir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    events = events_of(run)
    last_step = json.loads((run / "summary.json").read_text())["env_steps"]
    assert [e.step for e in events.Scalars("eval/final_return_mean")] == [last_step]  # not a lone dot at 0
    first_step = events.Scalars("charts/episodic_return")[0].step
    for tag in events.Tags()["histograms"]:  # the first and the last update, though neither is a 50th
        assert [e.step for e in events.Histograms(tag)] == [first_step, last_step], tag


def test_an_early_solve_prints_one_summary_and_closes_the_bar(tmp_path):
    result = run_cli("--seed", "3", "--no-gif", "--eval-episodes", "20", "--logdir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    solved = [line for line in result.stdout.splitlines() if "solved" in line]
    assert len(solved) == 1 and solved[0].startswith("solved at ") and "updates" in solved[0], result.stdout


def test_the_progress_bar_ends_where_training_ended(tmp_path, monkeypatch):
    bars = []

    class ShownBar(tqdm):  # as on a terminal (a pipe disables the bar)
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": False, "file": io.StringIO()})
            bars.append(self)

    monkeypatch.setattr(train, "tqdm", ShownBar)
    assert train.main(["--seed", "3", "--no-gif", "--eval-episodes", "20", "--logdir", str(tmp_path)]) == 0
    steps = json.loads((only_run(tmp_path) / "summary.json").read_text())["env_steps"]
    assert bars[0].n == bars[0].total == steps < 500_000  # solved early: not frozen part-way with an ETA
    assert bars[0].fp.getvalue().replace("\r", "\n").strip().splitlines()[-1].startswith("100%")


def test_the_printed_tensorboard_command_runs_without_the_virtual_environment_on_the_path(tmp_path):
    plain_path = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # a new shell: .venv/bin not on the path
    args = ["--max-updates", "1", "--no-gif", "--eval-episodes", "2", "--logdir", "my runs"]
    result = run_cli(*args, cwd=tmp_path, env=plain_path)
    assert result.returncode == 0, result.stderr
    command = next(line for line in result.stdout.splitlines() if line.startswith("TensorBoard: "))
    command = command.removeprefix("TensorBoard: ").split("   (this run")[0]
    assert command.endswith("--logdir 'my runs'")
    help_command = shlex.split(command.replace("--logdir", "--help --logdir"))
    check = subprocess.run(help_command, env=plain_path, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "usage: tensorboard" in check.stdout, check.stderr
