"""train.py refuses bad input with one line on stderr and exit status 2, before it writes anything: settings,
environments (unknown, unsupported, without a time limit), checkpoints, run folders."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import pytest
from builders import FAST, ROOT, EndlessEnv, only_run, run_cli, snapshot

import train

BAD_INPUT = [
    # (arguments, words the one-line message must contain); {root} and {run} are filled in
    (["--env", "CartPol-v1"], "did you mean CartPole-v1"),
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
    (["--resume", "{run}", "--env", "Acrobot-v1"], "other spaces than Acrobot-v1's"),
    (["--resume", "{run}", "--learning-rate", "0.5"], "cannot change the agent's settings (learning_rate)"),
    (["--logdir", "{root}/blocker/runs"], "cannot create a run folder under --logdir"),
    (["--env", "CliffWalking-v1"], "CliffWalking-v1 has no time limit, so an episode may never end"),
]


def assert_refused(status, stderr, message):
    """Exit status 2 and one line on stderr, holding ``message``."""
    assert status == 2, stderr
    assert stderr.count("\n") == 1 and message in stderr, stderr
    assert stderr.startswith("train.py: error: ") and "Traceback" not in stderr


@pytest.mark.parametrize("args, message", [pytest.param(a, m, id=" ".join(a)) for a, m in BAD_INPUT])
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
