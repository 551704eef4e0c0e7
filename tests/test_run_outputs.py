"""What a finished run shows: its TensorBoard points read back from the event file, and its terminal
output read from a subprocess."""

import io
import json
import shlex
import subprocess
import time

import pytest
from builders import only_run, run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter
from tqdm import tqdm

import train
import training.loop
import training.trainer
from training import make_config, target_return


def events_of(run):
    events = EventAccumulator(str(run), size_guidance={"histograms": 0, "scalars": 0})
    events.Reload()
    return events


def hparams_of(run):
    """The HPARAMS entry of a run as TensorBoard reads it: its settings and the metrics' (step, value)."""
    events = events_of(run / "hparams")
    plugins = events.PluginTagToContent("hparams")
    assert set(plugins) == {"_hparams_/session_start_info"}  # no experiment summary: see log_hparams
    start = plugin_data_pb2.HParamsPluginData.FromString(plugins["_hparams_/session_start_info"]).session_start_info
    assert start.group_name == run.name  # the trial's name is the run's
    metrics = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    return start.hparams, metrics


def test_final_metrics_and_histograms_sit_at_the_run_s_steps(tmp_path):
    args = ["--max-updates", "3", "--histogram-every", "50", "--eval-episodes", "5", "--no-gif"]
    assert train.main([*args, "--logdir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    events = events_of(run)
    summary = json.loads((run / "summary.json").read_text())
    last_step, final = summary["env_steps"], summary["final_eval"]
    # what the numbers depend on, the simulator among them (the test extra installs MuJoCo)
    assert {"python", "torch", "gymnasium", "numpy", "mujoco"} <= set(summary["versions"])
    _, metrics = hparams_of(run)
    assert metrics.keys() == {"eval/final_return_mean", "eval/final_sampled_return_mean"}  # unsolved: no solved-at
    assert metrics["eval/final_return_mean"] == [(last_step, pytest.approx(final["greedy"]["mean"]))]  # not at 0
    assert metrics["eval/final_sampled_return_mean"] == [(last_step, pytest.approx(final["sampled"]["mean"]))]
    first_step = events.Scalars("charts/episodic_return")[0].step
    for tag in events.Tags()["histograms"]:  # the first and the last update, though neither is a 50th
        assert [e.step for e in events.Histograms(tag)] == [first_step, last_step], tag


def test_a_solved_run_evaluates_once_per_check_both_ways_and_reports_it_in_hparams(tmp_path):
    assert train.main(["--seed", "3", "--no-gif", "--eval-episodes", "20", "--logdir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    summary, events = json.loads((run / "summary.json").read_text()), events_of(run)
    greedy, sampled = events.Scalars("eval/return_mean"), events.Scalars("eval/sampled_return_mean")
    steps = [e.step for e in greedy]
    assert steps == sorted(set(steps)) == [e.step for e in sampled]  # one check per step, with both curves
    assert steps[-1] == summary["env_steps"] == summary["solved_at_env_steps"]  # the final evaluation is that check
    assert greedy[-1].value == pytest.approx(summary["final_eval"]["greedy"]["mean"])
    assert sampled[-1].value == pytest.approx(summary["final_eval"]["sampled"]["mean"])
    hparams, metrics = hparams_of(run)
    assert metrics["eval/solved_at_env_steps"] == [(steps[-1], steps[-1])]
    assert metrics["eval/final_return_mean"] == [(steps[-1], pytest.approx(greedy[-1].value))]
    config = make_config({"seed": 3})
    experiment = {name for name, value in config.shown(housekeeping=False).items()}
    assert set(hparams) == experiment | {"exp_name"}  # no logdir, print_every, gif, threads, ...
    assert not set(hparams) & {"logdir", "print_every", "histogram_every", "gif", "watch_episodes", "threads"}
    kinds = {name: value.WhichOneof("kind") for name, value in hparams.items()}
    assert kinds["stop_when_solved"] == kinds["normalize_observations"] == "bool_value"  # not 0.0000 / 1.0000
    assert hparams["stop_when_solved"].bool_value is True and hparams["baseline"].bool_value is False
    assert kinds["seed"] == kinds["learning_rate"] == "number_value" and hparams["seed"].number_value == 3
    assert hparams["env"].string_value == "CartPole-v1" and hparams["exp_name"].string_value == "reinforce"
    assert hparams["hidden_sizes"].string_value == "64" and hparams["max_episode_steps"].string_value == "none"


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

    monkeypatch.setattr(training.loop, "tqdm", ShownBar)
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


def test_targets_follow_the_time_limit():
    assert target_return(make_config({})) == target_return(make_config({"max_episode_steps": 500})) == 475
    assert target_return(make_config({"max_episode_steps": 200})) is None  # 475 cannot be reached in 200 steps
    assert target_return(make_config({"env": "Acrobot-v1", "max_episode_steps": 50})) is None  # nor "solved" at once
    assert target_return(make_config({"max_episode_steps": 200, "target_return": 195})) == 195
    assert target_return(make_config({}, "seed")) == 195  # Gymnasium's CartPole-v0: 195 at 200 steps


def test_a_run_without_a_target_says_so_at_the_start_and_never_reports_not_solved(tmp_path):
    args = ["--max-episode-steps", "50", "--max-updates", "2", "--no-gif", "--eval-episodes", "5"]
    result = run_cli(*args, "--logdir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("no target: CartPole-v1's reward_threshold 475 is for its 500-step episodes")
    assert any(line.startswith("no target; trained ") for line in lines) and "not solved" not in result.stdout
    summary = json.loads((only_run(tmp_path) / "summary.json").read_text())
    assert summary["target_return"] is None and summary["solved"] is None


def test_run_names_carry_an_experiment_label(tmp_path):
    short = ["--max-updates", "1", "--no-gif", "--eval-episodes", "2", "--logdir", str(tmp_path)]
    for args in (["--seed", "1"], ["--seed", "2"], ["--preset", "seed"], ["--exp-name", "mine"]):
        assert train.main([*args, *short]) == 0
    names = sorted(run.name.rsplit("__", 1)[0] for run in tmp_path.iterdir())  # CleanRL's env__exp__seed__time
    assert names == [
        "CartPole-v1__mine__1",
        "CartPole-v1__reinforce__1",
        "CartPole-v1__reinforce__2",
        "CartPole-v1__seed__1",
    ]


def test_every_event_logged_is_on_disk_before_the_next_training_step(tmp_path, monkeypatch):
    """TensorBoard's writer checksums its events in Python on a thread of its own: flushed before each training
    step, its work is not counted as training time (summary.json's train_seconds, charts/SPS)."""
    step, write, on_disk = training.trainer.Trainer.step, RecordWriter.write, []

    def slow_write(writer, data):  # a checksum that takes a while
        time.sleep(0.05)
        write(writer, data)

    def step_after_looking(trainer):
        if trainer.state.updates:  # the points of the last tag an update logs, so far
            events = events_of(only_run(tmp_path))
            on_disk.append(len(events.Scalars("charts/SPS")) if "charts/SPS" in events.Tags()["scalars"] else 0)
        return step(trainer)

    monkeypatch.setattr(RecordWriter, "write", slow_write)
    monkeypatch.setattr(training.trainer.Trainer, "step", step_after_looking)
    flags = ["--max-updates", "4", "--eval-every-steps", "100000", "--no-gif", "--logdir", str(tmp_path)]
    assert train.main(flags) == 0
    assert on_disk == [1, 2, 3]
