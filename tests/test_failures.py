"""What a run does when something fails or stops it after training has begun: a signal while it finishes
or while watching, a file it cannot write, a GIF it cannot record, a second process on its folder, the
temporary files a killed writer left. Each keeps the results already made and says so in one line."""

import importlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings

import gymnasium as gym
import pytest
from builders import FAST, ROOT, FiveStepEnv, only_run, run_cli, signal_handlers

import train
import training.logs
import training.loop
import training.run_files
from agents.files import write_json
from training.run_files import lock_run

SHORT = ["--max-updates", "2", "--eval-episodes", "5"]  # a run that trains and finishes in a second or two


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def test_a_gif_that_cannot_be_recorded_is_one_warning_and_the_results_are_saved(tmp_path, capsys):
    gym.register(id="NoRender-v0", entry_point=FiveStepEnv, max_episode_steps=5)  # it cannot render
    args = ["--env", "NoRender-v0", "--num-envs", "2", "--episodes-per-update", "2", *SHORT]
    assert train.main([*args, "--logdir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and "warning: no GIF" in err and "--no-gif" in err
    run = only_run(tmp_path)
    assert (run / "model.pt").is_file() and json.loads((run / "summary.json").read_text())["updates"] == 2
    assert not (run / "episode.gif").exists()


def test_the_gif_warning_quotes_the_whole_first_line_and_glfw_warnings_are_not_repeated(tmp_path, capsys, monkeypatch):
    reason = "an OpenGL platform library has not been loaded into this process, " * 3 + "so no frame can be drawn"

    def headless(*args, **kwargs):  # what MuJoCo's GLFW rendering does without a display
        warnings.warn_explicit(
            "(65550) b'X11: The DISPLAY environment variable is missing'", UserWarning, "", 1, "glfw"
        )
        warnings.warn("a warning of the environment's own", UserWarning, stacklevel=1)
        raise RuntimeError(f"{reason}\nsecond line")

    # inside the recording, where MuJoCo's rendering warns and fails
    monkeypatch.setattr(importlib.import_module("envs.play"), "play_episode", headless)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert train.main([*SHORT, "--logdir", str(tmp_path)]) == 0
    assert [str(warning.message) for warning in shown] == ["a warning of the environment's own"]
    err = capsys.readouterr().err
    assert len(lines(err)) == 1
    assert err.strip().endswith(
        f": warning: no GIF (RuntimeError: {reason}); the run's results are saved (--no-gif skips recording)"
    )


@pytest.mark.skipif(sys.platform != "linux", reason="GLFW needs an X11 or Wayland display on Linux only")
def test_a_mujoco_run_without_a_display_warns_once_and_is_watched_without_being_drawn(tmp_path):
    try:
        gym.make("InvertedPendulum-v5").close()
    except gym.error.DependencyNotInstalled as error:
        pytest.skip(f"MuJoCo cannot be imported ({error})")
    headless = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL")}
    args = ["--env", "InvertedPendulum-v5", *SHORT, "--logdir", str(tmp_path)]
    result = run_cli(*args, cwd=tmp_path, env=headless)  # as in CI: no display, MuJoCo's default GLFW
    assert result.returncode == 0, result.stderr
    assert len(lines(result.stderr)) == 1 and "warning: no GIF (FatalError: " in result.stderr, result.stderr
    watched = run_cli("--watch", str(only_run(tmp_path)), "--watch-episodes", "1", cwd=tmp_path, env=headless)
    assert watched.returncode == 0 and watched.stderr == "", watched.stderr
    assert "InvertedPendulum-v5 cannot be drawn here (FatalError: " in watched.stdout, watched.stdout
    assert re.search(r"^episode 1: return \S+ in \d+ steps", watched.stdout, re.M), watched.stdout


def test_a_signal_while_finishing_stops_at_once_with_one_line_and_keeps_what_was_written(tmp_path, capsys, monkeypatch):
    def killed_while_recording(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the signal should have interrupted the recording")

    monkeypatch.setattr(training.loop, "record_gif", killed_while_recording)
    before = signal_handlers()
    assert train.main([*SHORT, "--logdir", str(tmp_path)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and "SIGTERM after training" in err
    run = only_run(tmp_path)
    assert (run / "checkpoint.pt").is_file() and (run / "model.pt").is_file() and (run / "summary.json").is_file()
    assert signal_handlers() == before  # the handlers are put back


def test_ctrl_c_while_watching_is_one_line(saved_run, capsys, monkeypatch):
    _, run, _ = saved_run

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("the signal should have interrupted watching")

    monkeypatch.setattr(train, "play", interrupted)
    assert train.main(["--watch", str(run)]) == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert lines(err) == ["train.py: SIGINT: stopped"]


def test_a_results_file_that_cannot_be_written_is_one_line_and_the_model_stays(tmp_path, capsys, monkeypatch):
    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training.loop, "write_json", disk_full)
    assert train.main([*SHORT, "--no-gif", "--logdir", str(tmp_path)]) == train.EXIT_WRITE_FAILED
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and "No space left on device" in err
    run = only_run(tmp_path)
    assert (run / "model.pt").is_file() and (run / "checkpoint.pt").is_file()
    assert not list(run.glob(".*.tmp"))


def test_a_run_folder_that_cannot_be_written_is_removed(tmp_path, capsys, monkeypatch):
    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training.run_files, "write_json", disk_full)
    assert train.main([*SHORT, "--logdir", str(tmp_path / "runs")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list((tmp_path / "runs").iterdir()) == []


def test_json_results_hold_no_bare_nan(tmp_path):
    write_json(tmp_path / "summary.json", {"mean": math.nan, "values": [math.inf, 1.5], "steps": 3})
    text = (tmp_path / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"mean": None, "values": [None, 1.5], "steps": 3}


def test_one_run_folder_is_used_by_one_process_at_a_time(saved_run, tmp_path):
    _, run, _ = saved_run
    copy = shutil.copytree(run, tmp_path / "run")
    held = lock_run(copy)  # as a run in progress holds it
    before = sorted(p.name for p in copy.iterdir())
    result = run_cli("--resume", str(copy), "--max-updates", "3", cwd=tmp_path)
    assert result.returncode == 2 and "is in use by another run" in result.stderr
    assert len(lines(result.stderr)) == 1 and sorted(p.name for p in copy.iterdir()) == before
    held.close()
    result = run_cli("--resume", str(copy), "--max-updates", "3", "--no-gif", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_resume_removes_the_temporary_files_a_killed_writer_left(saved_run, tmp_path):
    _, run, _ = saved_run
    copy = shutil.copytree(run, tmp_path / "run")
    (copy / ".checkpoint.pt.k9x2.tmp").write_bytes(b"half a checkpoint")
    (copy / ".best_model.pt.q7c1.tmp").write_bytes(b"half a model, written at a check")
    result = run_cli("--resume", str(copy), "--max-updates", "3", "--no-gif", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not list(copy.glob(".*.tmp"))


def test_printed_commands_quote_paths_with_spaces(tmp_path, capsys):
    logdir = tmp_path / "my runs"
    assert train.main([*SHORT, "--no-gif", "--logdir", str(logdir)]) == 0
    out = capsys.readouterr().out
    assert f"--logdir '{logdir}'" in out


@pytest.mark.parametrize("flag", ["--watch", "--heuristic"])
def test_one_process_modes_put_the_signal_handlers_back(saved_run, flag):
    _, run, _ = saved_run
    before = signal_handlers()
    assert train.main([flag, str(run)] if flag == "--watch" else [flag, "--eval-episodes", "2"]) == 0
    assert signal_handlers() == before


def test_a_tensorboard_log_that_cannot_be_created_leaves_no_run_folder(tmp_path, capsys, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training.logs, "SummaryWriter", disk_full)
    assert train.main([*SHORT, "--logdir", str(tmp_path / "runs")]) == 2
    err = lines(capsys.readouterr().err)
    assert len(err) == 1 and "cannot write in" in err[0] and "No space left on device" in err[0]
    assert list((tmp_path / "runs").iterdir()) == []


def test_results_are_readable_as_a_plain_write_would_make_them(tmp_path):
    write_json(tmp_path / "summary.json", {"steps": 3})
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0o600


def test_a_diverging_run_trains_on_without_its_histograms(tmp_path, capsys):
    """Adam at 1e30 makes the weights finite but huge, more than TensorBoard can bin: those histograms are skipped
    (TensorBoard would raise "The histogram is empty", and the run would end as if its input were bad)."""
    args = ["--learning-rate", "1e30", "--max-updates", "51", "--eval-episodes", "5", "--no-gif"]
    assert train.main([*args, "--logdir", str(tmp_path)]) == 0
    assert (only_run(tmp_path) / "summary.json").is_file()


def test_a_moved_run_resumed_names_its_new_folder(tmp_path, capsys):
    assert train.main([*SHORT, "--no-gif", "--logdir", str(tmp_path / "theirs")]) == 0
    moved = tmp_path / "mine" / only_run(tmp_path / "theirs").name
    shutil.copytree(only_run(tmp_path / "theirs"), moved)
    capsys.readouterr()
    assert train.main(["--resume", str(moved), "--max-updates", "3", "--eval-episodes", "5"]) == 0
    out = capsys.readouterr().out
    assert f"--logdir {tmp_path / 'mine'}" in out and "theirs" not in out


@pytest.mark.parametrize("stdout", ["a closed pipe", "a full device"])
def test_a_stdout_that_takes_nothing_neither_stops_the_run_nor_is_blamed_for_it(tmp_path, stdout):
    """``python train.py | head -1``, or ``> /dev/full``: what is printed is lost, the run is not."""
    command = [sys.executable, str(ROOT / "train.py"), "--logdir", str(tmp_path / "runs"), "--print-every", "1"]
    command += ["--total-env-steps", "3000", "--eval-every-steps", "1000", *FAST]
    if stdout == "a closed pipe":
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        process.stdout.close()  # the reader is gone before the first line
        stderr = process.stderr.read()
        process.wait(timeout=300)
    else:
        with open("/dev/full", "w") as full:
            process = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=300)
        stderr = process.stderr
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "cannot write" not in stderr
    run = only_run(tmp_path / "runs")
    assert (run / "model.pt").is_file() and (run / "summary.json").is_file()
