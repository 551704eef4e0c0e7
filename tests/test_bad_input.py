"""train.py refuses bad input with one line on stderr and exit status 2, before it writes anything: settings,
environments, checkpoints, run folders."""

import pytest
from builders import FAST, run_cli, snapshot

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
