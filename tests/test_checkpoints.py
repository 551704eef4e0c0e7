"""Saving and loading: agents and runs, round trips, unreadable, unsafe and unfitting files, resuming exactly."""

import copy
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from builders import (
    FAST,
    ROOT,
    TRAIN,
    as_in_a_terminal,
    gaussian_agent,
    make_agent,
    one_line,
    only_run,
    run_cli,
    signal_handlers,
    squashed,
)

import train
from agents import AgentConfig, CheckpointError, EpisodeBatch, ReinforceAgent
from envs import make_env
from training.run_files import RUN_FORMAT
from training.signals import StopSignals


def test_save_load_round_trip(tmp_path):
    agent = make_agent(3, AgentConfig(hidden_sizes=(8, 8), learning_rate=0.003, gamma=0.9))
    rng = np.random.default_rng(0)
    agent.update(EpisodeBatch.from_episodes([(rng.normal(size=(6, 4)), rng.integers(0, 3, 6), rng.normal(size=6))]))
    agent.save(tmp_path / "model.pt")
    loaded = ReinforceAgent.load(tmp_path / "model.pt")
    assert loaded.config == agent.config
    assert loaded.observation_space == agent.observation_space and loaded.action_space == agent.action_space
    for a, b in zip(agent.policy.parameters(), loaded.policy.parameters()):
        assert torch.equal(a, b)
    assert loaded.optimizer.state_dict()["state"][0]["step"] == agent.optimizer.state_dict()["state"][0]["step"]
    obs = rng.normal(size=(200, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))  # same sampling stream too
    np.testing.assert_array_equal(loaded.act(obs, deterministic=True), agent.act(obs, deterministic=True))
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write leaves no temporary file behind


def test_missing_corrupt_and_truncated_checkpoints_give_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError) as missing:
        ReinforceAgent.load(tmp_path / "nope.pt")
    assert "no checkpoint" in one_line(missing.value)

    make_agent().save(tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint")
    for name in ("truncated.pt", "garbage.pt"):
        with pytest.raises(CheckpointError) as error:
            ReinforceAgent.load(tmp_path / name)
        assert "not a readable checkpoint" in one_line(error.value)

    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError) as other:
        ReinforceAgent.load(tmp_path / "other.pt")
    assert "not a reinforce-agent" in one_line(other.value)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_malicious_pickle_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as file:
        torch.save({"format": "reinforce-agent/1", "payload": _Exploit(str(marker))}, file, pickle_module=pickle)
    with pytest.raises(CheckpointError) as error:
        ReinforceAgent.load(tmp_path / "evil.pt")
    one_line(error.value)
    assert not marker.exists()


def test_save_load_round_trip_with_baseline(tmp_path):
    agent = gaussian_agent(baseline=True)
    rng = np.random.default_rng(4)
    agent.update(EpisodeBatch.from_episodes([(rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), rng.normal(size=5))]))
    agent.save(tmp_path / "agent.pt")
    loaded = ReinforceAgent.load(tmp_path / "agent.pt")
    for a, b in zip(
        [*agent.policy.parameters(), *agent.value.parameters()],
        [*loaded.policy.parameters(), *loaded.value.parameters()],
    ):
        assert torch.equal(a, b)
    obs = rng.normal(size=(10, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))


def test_a_resumed_checkpoint_that_does_not_fit_is_refused(saved_run, tmp_path):
    root, run, _ = saved_run
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "config.json").write_bytes((run / "config.json").read_bytes())
    for name, content in (("truncated", (root / "truncated.pt").read_bytes()), ("garbage", b"garbage")):
        (copy / "checkpoint.pt").write_bytes(content)
        result = run_cli("--resume", str(copy), cwd=tmp_path)
        assert result.returncode == 2 and "not a readable checkpoint" in result.stderr, name
        assert result.stderr.count("\n") == 1
    # a model.pt is an agent, not a run: it cannot be resumed
    (copy / "checkpoint.pt").write_bytes((run / "model.pt").read_bytes())
    result = run_cli("--resume", str(copy), cwd=tmp_path)
    assert result.returncode == 2 and f"not a {RUN_FORMAT} checkpoint" in result.stderr


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("mode", ["--watch", "--resume"])
def test_a_malicious_checkpoint_never_runs_its_code(saved_run, tmp_path, mode):
    _, run, _ = saved_run
    evil_run = tmp_path / "evil_run"
    evil_run.mkdir()
    (evil_run / "config.json").write_bytes((run / "config.json").read_bytes())
    marker = tmp_path / "pwned"
    payload = {"format": "reinforce-run/1", "agent": _Payload(marker)}
    for name in ("checkpoint.pt", "model.pt"):
        with open(evil_run / name, "wb") as file:
            torch.save(payload, file, pickle_module=pickle)
    pickle.loads(pickle.dumps(_Payload(tmp_path / "control")))  # the payload does run when unpickled unsafely
    assert (tmp_path / "control").exists()
    result = run_cli(mode, str(evil_run), cwd=tmp_path)
    assert result.returncode == 2 and "not a readable checkpoint" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not marker.exists()


def parameters(model: Path) -> dict:
    return ReinforceAgent.load(model).policy.state_dict()


def assert_bitwise_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_is_bitwise_identical_in_process(tmp_path):
    args = ["--no-stop-when-solved", "--checkpoint-every", "3", *FAST]
    assert train.main(["--max-updates", "12", "--logdir", str(tmp_path / "whole"), *args]) == 0
    assert train.main(["--max-updates", "5", "--logdir", str(tmp_path / "split"), *args]) == 0
    split = next((tmp_path / "split").iterdir())
    assert train.main(["--resume", str(split), "--max-updates", "12", *FAST]) == 0
    whole = next((tmp_path / "whole").iterdir())
    assert_bitwise_equal(parameters(whole / "model.pt"), parameters(split / "model.pt"))
    whole_state = torch.load(whole / "checkpoint.pt", weights_only=True)
    split_state = torch.load(split / "checkpoint.pt", weights_only=True)
    assert whole_state["run"]["env_steps"] == split_state["run"]["env_steps"]
    assert whole_state["run"]["updates"] == split_state["run"]["updates"] == 12
    assert whole_state["agent"]["rng"] == split_state["agent"]["rng"]


def wait_for(process, text, timeout=60):
    """Read the process's stdout until a line contains ``text``."""
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if text in line:
            return
        assert time.monotonic() < deadline, f"no {text!r} in time"
    raise AssertionError(f"the process ended before printing {text!r}")


@pytest.mark.parametrize(
    "signum, status, vectorization",
    [
        (signal.SIGINT, 130, "auto"),
        (signal.SIGTERM, 143, "auto"),
        (signal.SIGHUP, 129, "auto"),
        (signal.SIGINT, 130, "async"),
        (signal.SIGTERM, 143, "async"),
        (signal.SIGHUP, 129, "async"),
    ],
)
def test_a_signal_checkpoints_and_the_resumed_run_matches_an_uninterrupted_one(tmp_path, signum, status, vectorization):
    """The signal goes to the whole process group, as Ctrl-C in a terminal, a batch scheduler's SIGTERM or a
    closed terminal's SIGHUP does: async workers included."""
    args = ["--no-stop-when-solved", "--print-every", "1", "--checkpoint-every", "1000", *FAST]
    args += ["--vectorization", vectorization]
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "--logdir", str(tmp_path / "runs"), "--max-updates", "100000", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,
        preexec_fn=as_in_a_terminal,
    )
    wait_for(process, "update    3")
    os.killpg(process.pid, signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert f"resume with: python {TRAIN} --resume" in stderr and "Traceback" not in stderr
    run = next((tmp_path / "runs").iterdir())
    stopped_at = torch.load(run / "checkpoint.pt", weights_only=True)["run"]["updates"]
    assert stopped_at >= 3
    assert not (run / "model.pt").exists()  # stopped, not finished

    total = stopped_at + 4
    resumed = run_cli("--resume", str(run), "--max-updates", str(total), *FAST, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert train.main(["--max-updates", str(total), "--logdir", str(tmp_path / "reference"), *args]) == 0
    reference = next((tmp_path / "reference").iterdir())
    assert_bitwise_equal(parameters(reference / "model.pt"), parameters(run / "model.pt"))


def test_a_second_ctrl_c_exits_at_once_with_the_signal_s_status_and_restores_the_handlers(tmp_path, monkeypatch):
    """The second signal's handler exits the process at once (``os._exit``: no handler, no write; the checkpoints
    already written are whole, being atomic) with 128 + SIGINT."""
    exits, before = [], signal_handlers()
    monkeypatch.setattr(os, "_exit", lambda status: exits.append(status))
    with StopSignals() as signals:
        signal.raise_signal(signal.SIGINT)
        assert signals.received == signal.SIGINT and exits == []
        signal.raise_signal(signal.SIGINT)
    assert exits == [130]
    assert signal_handlers() == before  # handlers restored


def test_watch_plays_the_agent_of_a_format_1_run_whose_checkpoint_holds_no_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    old_run = tmp_path / "old_run"
    old_run.mkdir()
    env = make_env("CartPole-v1")
    agent = ReinforceAgent(env.observation_space, env.action_space, seed=0)
    torch.save({"format": "reinforce-run/1", "agent": agent.state_dict(), "run": {}}, old_run / "checkpoint.pt")
    args = ["--watch", str(old_run), "--watch-episodes", "1", "--max-episode-steps", "20"]
    assert train.main(args) == 0 and (old_run / "watch_1.gif").is_file()


def test_load_says_what_it_takes_when_given_a_folder(tmp_path):
    make_agent().save(tmp_path / "model.pt")
    with pytest.raises(CheckpointError) as error:
        ReinforceAgent.load(tmp_path)
    message = one_line(error.value)
    assert "is a folder: give the path of a file saved by ReinforceAgent.save" in message
    assert "or of a run folder" not in message  # load never took folders


def trained_state():
    """The state of an agent that has made one update (so that Adam holds moments), as a copy."""
    agent = make_agent()
    rng = np.random.default_rng(0)
    agent.update(EpisodeBatch.from_episodes([(rng.normal(size=(6, 4)), rng.integers(0, 2, 6), rng.normal(size=6))]))
    return copy.deepcopy(agent.state_dict())


@pytest.mark.parametrize(
    "where, tensor",
    [
        ("policy.net.0.weight", lambda state: state["policy"]["net.0.weight"]),
        ("policy.normalizer.mean", lambda state: state["policy"]["normalizer.mean"]),
        ("optimizer.state.0.exp_avg_sq", lambda state: state["optimizer"]["state"][0]["exp_avg_sq"]),
    ],
)
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_checkpoint_with_non_finite_values_is_refused(tmp_path, where, tensor, value):
    state = trained_state()
    tensor(state).view(-1)[0] = value
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match=f"non-finite values in {where}") as error:
        ReinforceAgent.load(tmp_path / "model.pt")
    one_line(error.value)


def test_resume_refuses_a_run_checkpoint_with_non_finite_weights(saved_run, tmp_path, capsys):
    _, run, _ = saved_run
    copied = tmp_path / "run"
    copied.mkdir()
    shutil.copy(run / "config.json", copied)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["agent"]["policy"]["net.0.bias"][0] = math.nan
    torch.save(state, copied / "checkpoint.pt")
    assert train.main(["--resume", str(copied), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "non-finite values in policy.net.0.bias" in err


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s["policy"].update({"net.0.weight": torch.zeros(3, 4)}),
            r"policy tensor net.0.weight has shape \(3, 4\), its config makes \(16, 4\)",
        ),
        (lambda s: s["policy"].pop("net.2.bias"), "the checkpoint's policy does not hold the tensors its config makes"),
        (
            lambda s: s["config"].update(hidden_sizes=[32]),
            r"net.0.weight has shape \(16, 4\), its config makes \(32, 4\)",
        ),
        (
            lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(5)),
            r"optimizer exp_avg of parameter 0 has shape \(5,\)",
        ),
    ],
    ids=["wrong shape", "missing tensor", "config unlike the tensors", "Adam moment of another shape"],
)
def test_a_checkpoint_whose_tensors_do_not_fit_its_config_is_refused_in_one_line(tmp_path, change, message):
    state = trained_state()
    change(state)
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match=message) as error:
        ReinforceAgent.load(tmp_path / "model.pt")
    one_line(error.value)


def test_a_config_asking_for_huge_layers_is_refused_before_anything_is_allocated(tmp_path):
    """A hidden size of 10**12 would ask for 16 TB: the config is checked against the saved tensors' shapes
    first, so the networks never need more memory than the file's own tensors."""
    state = trained_state()
    state["config"]["hidden_sizes"] = [10**12]
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(
        CheckpointError, match=r"net.0.weight has shape \(16, 4\), its config makes \(1000000000000, 4\)"
    ):
        ReinforceAgent.load(tmp_path / "model.pt")


def test_a_checkpoint_without_a_setting_loads_it_at_its_default_and_one_with_it_keeps_its_value():
    state = gaussian_agent().state_dict()
    for missing in ("action_bound", "log_std_init"):  # settings that files of the format's first version lack
        del state["config"][missing]
    old = ReinforceAgent.from_state_dict(state)
    assert (old.config.action_bound, old.config.log_std_init) == ("clip", 0.0)
    torch.testing.assert_close(old.policy.state_dict(), gaussian_agent().policy.state_dict())
    squashing = ReinforceAgent.from_state_dict(gaussian_agent(action_bound="tanh", log_std_init=-0.5).state_dict())
    assert (squashing.config.action_bound, squashing.config.log_std_init) == ("tanh", -0.5)
    taken, drawn = squashing.sample(np.zeros(3, np.float32))
    np.testing.assert_allclose(taken, squashed(drawn, squashing.action_space), rtol=1e-6)


def test_a_run_with_discretized_actions_keeps_them_for_watch(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    args = ["--env", "Pendulum-v1", "--discretize-actions", "3", "--max-episode-steps", "20", "--max-updates", "2"]
    assert train.main([*args, "--logdir", str(tmp_path), "--no-gif", "--eval-episodes", "2"]) == 0
    run = only_run(tmp_path)
    assert json.loads((run / "config.json").read_text())["discretize_actions"] == 3
    assert ReinforceAgent.load(run / "model.pt").action_space == gym.spaces.Discrete(3)
    assert train.main(["--watch", str(run), "--watch-episodes", "1"]) == 0 and (run / "watch_1.gif").is_file()
