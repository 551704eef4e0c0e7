"""Reliability: bad input, unsafe checkpoints, interruption and bit-identical resume, non-finite updates."""

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import train
from agents import ReinforceAgent
from training import StopSignals

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--no-gif", "--eval-episodes", "10"]


def run_cli(*args, cwd, **kwargs):
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True, **kwargs
    )


def snapshot(folder: Path) -> dict:
    """Every file below ``folder`` with its bytes, to show that nothing was written."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A finished short CartPole run, and files made from it for the bad-checkpoint cases."""
    root = tmp_path_factory.mktemp("saved")
    assert train.main(["--max-updates", "2", "--logdir", str(root / "runs"), *FAST]) == 0
    run = next((root / "runs").iterdir())
    checkpoint = (run / "checkpoint.pt").read_bytes()
    (root / "truncated.pt").write_bytes(checkpoint[: len(checkpoint) // 3])
    (root / "garbage.pt").write_bytes(b"\x00not a checkpoint at all")
    (root / "notes.txt").write_text("hello")
    (root / "empty_dir").mkdir()
    (root / "blocker").write_text("a file where a folder should be")
    acrobot = root / "acrobot"
    assert train.main(["--env", "Acrobot-v1", "--max-updates", "1", "--logdir", str(acrobot), *FAST]) == 0
    (root / "acrobot_model.pt").write_bytes((next(acrobot.iterdir()) / "model.pt").read_bytes())
    return root, run, next(acrobot.iterdir())


BAD_INPUT = [
    # (arguments, words the one-line message must contain); {root} and {run} are filled in
    (["--env", "CartPol-v1"], "did you mean CartPole-v1"),
    (["--env", "NoSuchEnv-v9"], "unknown environment id"),
    (["--env", "Blackjack-v1"], "unsupported observation space Tuple"),
    (["--learning-rate", "0"], "learning_rate must be > 0"),
    (["--learning-rate", "-0.1"], "learning_rate must be > 0"),
    (["--gamma", "1.01"], "gamma must be in [0, 1]"),
    (["--gamma", "-0.5"], "gamma must be in [0, 1]"),
    (["--episodes-per-update", "0"], "episodes_per_update must be >= 1"),
    (["--num-envs", "32"], "num_envs (32) exceeds episodes_per_update"),
    (["--episodes-per-update", "-3", "--num-envs", "1"], "episodes_per_update must be >= 1"),
    (["--num-envs", "0"], "num_envs must be >= 1"),
    (["--hidden-sizes", "64", "0"], "hidden_sizes must be positive"),
    (["--hidden-sizes", "x"], "invalid int value"),
    (["--normalize", "global"], "invalid choice"),
    (["--activation", "swish"], "invalid choice"),
    (["--seed", "one"], "invalid int value"),
    (["--total-env-steps", "1e5x"], "invalid int value"),
    (["--watch", "{root}/missing.pt"], "no checkpoint at"),
    (["--watch", "{root}/notes.txt"], "not a readable checkpoint"),
    (["--watch", "{root}/truncated.pt"], "not a readable checkpoint"),
    (["--watch", "{root}/garbage.pt"], "not a readable checkpoint"),
    (["--watch", "{root}/empty_dir"], "no checkpoint at"),
    (["--watch", "{root}/acrobot_model.pt", "--env", "CartPole-v1"], "other spaces than CartPole-v1's"),
    (["--resume", "{root}/missing_run"], "not a run folder"),
    (["--resume", "{root}/empty_dir"], "not a run folder"),
    (["--resume", "{run}", "--env", "Acrobot-v1"], "other spaces than Acrobot-v1's"),
    (["--resume", "{run}", "--learning-rate", "0.5"], "cannot change the agent's settings (learning_rate)"),
    (["--logdir", "{root}/blocker/runs"], "cannot create a run folder under --logdir"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_gives_one_line_status_2_and_writes_nothing(saved_run, tmp_path, args, message):
    root, run, acrobot = saved_run
    args = [a.format(root=root, run=run, acrobot=acrobot) for a in args]
    before = snapshot(root)
    logdir = [] if "--logdir" in args else ["--logdir", str(tmp_path / "runs")]
    result = run_cli(*args, *logdir, *FAST, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stderr.startswith("train.py: error: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
    assert snapshot(root) == before


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
    assert result.returncode == 2 and "not a reinforce-run/2 checkpoint" in result.stderr


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


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_checkpoints_and_the_resumed_run_matches_an_uninterrupted_one(tmp_path, signum, status):
    args = ["--no-stop-when-solved", "--print-every", "1", "--checkpoint-every", "1000", *FAST]
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "--logdir", str(tmp_path / "runs"), "--max-updates", "100000", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    wait_for(process, "update    3")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert "resume with: python train.py --resume" in stderr and "Traceback" not in stderr
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


def test_a_second_ctrl_c_exits_at_once_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    """The second signal's handler exits the process without writing: the last checkpoint stays readable."""
    exits = []
    monkeypatch.setattr(os, "_exit", lambda status: exits.append(status))
    with StopSignals() as signals:
        signal.raise_signal(signal.SIGINT)
        assert signals.received == signal.SIGINT and exits == []
        signal.raise_signal(signal.SIGINT)
    assert exits == [130]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


class NanRewardEnv(gym.Env):
    """Five steps per episode, every reward NaN."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), float("nan"), self.t >= 5, False, {}


def test_non_finite_updates_are_skipped_and_the_run_stops_with_its_last_good_state(tmp_path, capsys):
    gym.register(id="NanReward-v0", entry_point=NanRewardEnv)
    args = ["--env", "NanReward-v0", "--num-envs", "2", "--episodes-per-update", "2", "--logdir", str(tmp_path)]
    status = train.main([*args, "--max-nonfinite-updates", "3", *FAST])
    assert status == 1
    err = capsys.readouterr().err
    assert "3 updates in a row had a non-finite loss" in err and "checkpoint.pt" in err
    run = next(tmp_path.iterdir())
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["run"]["skipped_updates"] == 3 and state["run"]["updates"] == 3
    fresh = ReinforceAgent(NanRewardEnv.observation_space, NanRewardEnv.action_space, seed=1)
    for key, value in fresh.policy.state_dict().items():
        assert torch.equal(state["agent"]["policy"][key], value), key  # the weights never moved
