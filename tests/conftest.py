"""Fixtures shared by test files."""

import pytest
import torch
from builders import FAST

import train


@pytest.fixture(scope="session")
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
    (root / "old_run").mkdir()  # a run folder in checkpoint format 2, which --resume refuses
    torch.save({"format": "reinforce-run/2", "agent": {}, "run": {}}, root / "old_run" / "checkpoint.pt")
    acrobot = root / "acrobot"
    assert train.main(["--env", "Acrobot-v1", "--max-updates", "1", "--logdir", str(acrobot), *FAST]) == 0
    (root / "acrobot_model.pt").write_bytes((next(acrobot.iterdir()) / "model.pt").read_bytes())
    broken_configs = {
        "empty": "{}",
        "list": "[1]",
        "limit": '{"env": "CartPole-v1", "max_episode_steps": "x"}',
        "bins": '{"env": "Pendulum-v1", "discretize_actions": 1}',
        "not_json": "not json",
    }
    for name, text in broken_configs.items():  # run folders whose config.json --watch cannot use
        (root / f"config_{name}").mkdir()
        (root / f"config_{name}" / "model.pt").write_bytes((run / "model.pt").read_bytes())
        (root / f"config_{name}" / "config.json").write_text(text)
    model = torch.load(run / "model.pt", weights_only=True)
    model["policy"]["net.0.weight"][0, 0] = float("nan")
    torch.save(model, root / "nan_model.pt")
    return root, run, next(acrobot.iterdir())
