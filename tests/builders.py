"""Small agents, commands and checks that several test files use."""

import shlex
import signal
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents import AgentConfig, ReinforceAgent

ROOT = Path(__file__).resolve().parent.parent
TRAIN = shlex.quote(str(ROOT / "train.py"))  # train.py as run_cli starts it, and as its messages name it
FAST = ["--no-gif", "--eval-episodes", "10"]  # train.py flags that keep a run short
CARTPOLE_OBS = spaces.Box(-np.inf, np.inf, (4,), np.float32)
NOTEBOOK = AgentConfig(hidden_sizes=(16,), activation="elu")
BOX_OBS = spaces.Box(-np.inf, np.inf, (3,), np.float32)


def make_agent(n_actions=2, config=NOTEBOOK, seed=0):
    """An agent for CartPole's observations and ``n_actions`` discrete actions."""
    return ReinforceAgent(CARTPOLE_OBS, spaces.Discrete(n_actions), config, seed=seed)


def gaussian_agent(action_space=None, **config):
    """An agent with Box actions (by default 2 in [-2, 2]) on 3-dimensional observations."""
    action_space = action_space or spaces.Box(-2.0, 2.0, (2,), np.float32)
    return ReinforceAgent(BOX_OBS, action_space, AgentConfig(hidden_sizes=(16,), **config), seed=0)


def squashed(u, space):
    """The definition of action_bound tanh, in float64: low + (high - low) * (tanh(u) + 1) / 2."""
    return space.low + (space.high.astype(np.float64) - space.low) * (np.tanh(u.astype(np.float64)) + 1) / 2


def as_in_a_terminal() -> None:
    """A child's SIGINT and SIGHUP at their defaults, as a terminal's session starts them: the tests may run as a
    shell's background job (SIGINT ignored) or under nohup (SIGHUP ignored), which a child would inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def signal_handlers():
    """SIGINT's and SIGTERM's handlers now: what a mode must put back. Not Python's defaults, which a process
    may not start with (a shell's background job starts with SIGINT ignored)."""
    return {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}


def one_line(error):
    """The error's message, checked to be one short line."""
    assert "\n" not in str(error) and len(str(error)) < 300
    return str(error)


def run_cli(*args, cwd, **kwargs):
    """``python train.py ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True, **kwargs
    )


def only_run(logdir):
    """The one run folder under ``logdir``."""
    runs = list(Path(logdir).iterdir())
    assert len(runs) == 1
    return runs[0]


def snapshot(folder: Path) -> dict:
    """Every file below ``folder`` with its bytes, and every folder, to show that nothing was written."""
    return {p: p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


class FiveStepEnv(gym.Env):
    """A user's environment in miniature: five steps per episode, random observations, reward = action,
    no rendering at all."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.Discrete(2)

    def reward(self, action) -> float:
        return float(action)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), self.reward(action), self.t >= 5, False, {}


class EndlessEnv(gym.Env):
    """Episodes that never end (registered without a time limit, they would run forever)."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 1.0, False, False, {}
