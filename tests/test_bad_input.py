"""train.py refuses bad input with one line on stderr and exit status 2, before it writes anything: settings,
environments (unknown, unsupported, missing a package, without a time limit), checkpoints, run folders."""

import errno
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from builders import FAST, ROOT, EndlessEnv, only_run, run_cli, snapshot

import train

BAD_INPUT = [
    # (arguments, words the one-line message must contain); {root} and {run} are filled in
    (["--env", "CartPol-v1"], "did you mean CartPole-v1"),
    (["--heuristic", "--resume", "{run}"], "argument --resume: not allowed with argument --heuristic"),
    (["--watch", "{run}", "--resume", "{run}"], "argument --resume: not allowed with argument --watch"),
    (["--resume", "{run}", "--preset", "textbook"], "--resume continues a run with its own settings"),
    (["--env", "NoSuchEnv-v9"], "unknown environment id"),
    (["--env", "Blackjack-v1"], "unsupported observation space Tuple"),
    (["--learning-rate", "0"], "learning_rate must be > 0"),
    (["--learning-rate", "-0.1"], "learning_rate must be > 0"),
    (["--learning-rate", "inf"], "learning_rate must be > 0 and finite, got inf"),
    (["--entropy-coef", "inf"], "entropy_coef must be >= 0 and finite, got inf"),
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
    (["--exp-name", "a/b"], "exp_name must be letters, digits"),
    (["--total-env-steps", "1e5x"], "invalid int value"),
    (["--watch", "{root}/missing.pt"], "no checkpoint at"),
    (["--watch", "{root}/notes.txt"], "not a readable checkpoint"),
    (["--watch", "{root}/truncated.pt"], "not a readable checkpoint"),
    (["--watch", "{root}/garbage.pt"], "not a readable checkpoint"),
    (["--watch", "{root}/empty_dir"], "no checkpoint at"),
    (["--watch", "{root}/acrobot_model.pt", "--env", "CartPole-v1"], "other spaces than CartPole-v1's"),
    (["--watch", "{root}/nan_model.pt"], "non-finite values in policy.net.0.weight"),
    (["--resume", "{root}/missing_run"], "not a run folder"),
    (["--resume", "{root}/empty_dir"], "not a run folder"),
    (["--resume", "{root}/old_run"], "made by an older version: start a new run"),
    (["--resume", "{run}", "--env", "Acrobot-v1"], "cannot change the run's settings (env)"),
    (["--resume", "{run}", "--seed", "9", "--num-envs", "4"], "cannot change the run's settings (seed, num_envs)"),
    (["--resume", "{run}", "--learning-rate", "0.5"], "cannot change the agent's settings (learning_rate)"),
    (["--logdir", "{root}/blocker/runs"], "cannot create a run folder under --logdir"),
    (["--seed", "99999999999999999999999"], "seed must be an integer from 0 to 2**64 - 1 (18446744073709551615), got"),
    (["--seed", "-1"], "seed must be an integer from 0 to 2**64 - 1"),
    (["--target-return", "nan"], "target_return must be finite or none"),
    (
        ["--hidden-sizes", "100000", "100000"],
        "10,000,700,001 parameters and their activations need about 320 GB to train",
    ),
    (["--threads", "100000"], "threads (100000) exceeds the"),
    (["--env", "CliffWalking-v1"], "CliffWalking-v1 has no time limit, so an episode may never end"),
    (["--logdir", "{root}/bad\udcffname"], "bad\\udcffname' is not valid UTF-8: give another --logdir"),
    (["--watch", "{root}/config_empty"], "config_empty/config.json names no environment"),
    (["--watch", "{root}/config_list"], "config_list/config.json names no environment"),
    (["--watch", "{root}/config_limit"], "config_limit/config.json: max_episode_steps must be a whole number >= 1"),
    (["--watch", "{root}/config_not_json"], "config_not_json/config.json is not readable JSON"),
    (["--watch", "{root}/config_bins"], "config_bins/config.json: discretize_actions must be a whole number >= 2"),
    (["--discretize-actions", "1", "--env", "Pendulum-v1"], "discretize_actions must be >= 2 or none, got 1"),
    (["--discretize-actions", "3"], "CartPole-v1's actions are Discrete(2), not a Box: leave --discretize-actions"),
    (["--discretize-actions", "3", "--env", "Humanoid-v5"], "makes 3^17 joint actions, more than 4096"),
    (["--discretize-actions", "3", "--env", "Pendulum-v1", "--vectorization", "vector_entry_point"], "use --vect"),
]


# the "did you mean" suggestion for cartpole-v1; it builds where jax is installed
MISSING_MODULE = pytest.param(
    ["--env", "phys2d/CartPole-v1"],
    'phys2d/CartPole-v1 needs the module jax, which is not installed: run pip install "gymnasium[jax]"',
    id="--env phys2d/CartPole-v1",
    marks=pytest.mark.skipif(importlib.util.find_spec("jax") is not None, reason="jax is installed here"),
)


def assert_refused(status, stderr, message):
    """Exit status 2 and one line on stderr, holding ``message``."""
    assert status == 2, stderr
    assert stderr.count("\n") == 1 and message in stderr, stderr
    assert stderr.startswith("train.py: error: ") and "Traceback" not in stderr


@pytest.mark.parametrize("args, message", [pytest.param(a, m, id=" ".join(a)) for a, m in BAD_INPUT] + [MISSING_MODULE])
def test_bad_input_gives_one_line_status_2_and_writes_nothing(saved_run, tmp_path, args, message):
    root, run, acrobot = saved_run
    args = [a.format(root=root, run=run, acrobot=acrobot) for a in args]
    before = snapshot(root)
    logdir = [] if "--logdir" in args else ["--logdir", str(tmp_path / "runs")]
    result = run_cli(*args, *logdir, *FAST, cwd=tmp_path)
    assert_refused(result.returncode, result.stderr, message)
    assert not (tmp_path / "runs").exists()
    assert snapshot(root) == before


def run_with_endless_env(*args, cwd):
    """``train.py ARGS`` in a subprocess that first registers ``EndlessEnv`` as Endless-v0, without a time
    limit; a run that never ends fails the test at the timeout instead of hanging it."""
    program = (
        "import runpy, sys, builders, gymnasium; "
        "gymnasium.register('Endless-v0', entry_point=builders.EndlessEnv, max_episode_steps=None); "
        "sys.argv[0] = str(builders.ROOT / 'train.py'); runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    path = os.pathsep.join([str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=60,
    )


def test_an_environment_whose_episodes_never_end_is_refused_without_a_time_limit(tmp_path):
    result = run_with_endless_env("--env", "Endless-v0", "--logdir", str(tmp_path / "runs"), *FAST, cwd=tmp_path)
    message = "Endless-v0 has no time limit, so an episode may never end: give --max-episode-steps N"
    assert_refused(result.returncode, result.stderr, message)
    assert not (tmp_path / "runs").exists()


def test_an_environment_whose_episodes_never_end_trains_with_max_episode_steps(tmp_path):
    gym.register("Endless-v0", entry_point=EndlessEnv, max_episode_steps=None)
    args = ["--env", "Endless-v0", "--max-episode-steps", "10", "--max-updates", "2", "--logdir", str(tmp_path)]
    assert train.main([*args, *FAST]) == 0
    summary = json.loads((only_run(tmp_path) / "summary.json").read_text())
    assert summary["env_steps"] == 2 * 8 * 10  # two updates of 8 episodes, each cut at 10 steps


def test_resuming_a_run_whose_folder_cannot_be_written_says_so(saved_run, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(saved_run[1], run)
    before = snapshot(run)
    args = ["--resume", str(run), "--max-updates", "3", *FAST]
    if os.geteuid() != 0:
        run.chmod(0o555)
        try:
            result = run_cli(*args, cwd=tmp_path)
        finally:
            run.chmod(0o755)
        status, stderr = result.returncode, result.stderr
    else:  # root writes whatever the mode bits say: make creating a file in the folder fail instead
        real_open = os.open

        def refuse_in_run(path, *rest, **options):
            if run in (Path(os.fsdecode(path)), Path(os.fsdecode(path)).parent):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(path, *rest, **options)

        monkeypatch.setattr(os, "open", refuse_in_run)
        status, stderr = train.main(args), capsys.readouterr().err
    assert_refused(status, stderr, f"cannot write in {run} (Permission denied)")
    assert snapshot(run) == before


class NoObservationEnv(gym.Env):
    """Observations of no number at all: Box(shape=(0,))."""

    observation_space = gym.spaces.Box(0.0, 1.0, (0,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(0, np.float32), {}

    def step(self, action):
        return np.zeros(0, np.float32), 1.0, True, False, {}


def test_an_observation_space_of_no_number_is_refused_at_construction(tmp_path, capsys):
    gym.register("NoObservation-v0", entry_point=NoObservationEnv, max_episode_steps=10)
    status = train.main(["--env", "NoObservation-v0", "--logdir", str(tmp_path / "runs"), *FAST])
    assert_refused(status, capsys.readouterr().err, "(0,), float32): it holds no number for the policy")
    assert not (tmp_path / "runs").exists()
