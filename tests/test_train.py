"""train.py end to end: a real short training run, its TensorBoard logs, the command line."""

import json
import subprocess
import sys
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from training import Evaluator, Trainer, make_config, parse_args

ROOT = Path(__file__).resolve().parent.parent
PER_UPDATE_TAGS = {
    "charts/episodic_return",
    "charts/episodic_return_min",
    "charts/episodic_return_max",
    "charts/episodic_return_std",
    "charts/episodic_length",
    "losses/policy_loss",
    "losses/entropy",
    "losses/grad_norm",
    "charts/learning_rate",
    "charts/SPS",
}


def only_run(logdir):
    runs = list(Path(logdir).iterdir())
    assert len(runs) == 1
    return runs[0]


def test_short_training_run_clearly_improves(tmp_path):
    args = ["--total-env-steps", "40000", "--seed", "7", "--logdir", str(tmp_path), "--no-gif"]
    assert train.main(args) == 0
    summary = json.loads((only_run(tmp_path) / "summary.json").read_text())
    # a random policy scores about 20; the defaults solve seed 7 well inside this budget
    assert summary["solved"] and summary["final_eval"]["greedy"]["mean"] >= 400
    assert summary["env_steps"] <= 40000 + 8 * 500


def test_run_folder_holds_tags_hparams_gif_and_summary(tmp_path):
    args = ["--total-env-steps", "1500", "--eval-every-steps", "500", "--histogram-every", "2", "--seed", "4"]
    assert train.main([*args, "--logdir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    assert run.name.startswith("CartPole-v1__4__")
    events = EventAccumulator(str(run), size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    assert PER_UPDATE_TAGS | {"eval/return_mean", "eval/return_std", "eval/final_return_mean"} <= set(tags["scalars"])
    assert len(events.Scalars("charts/episodic_return")) >= 2
    assert any(tag.startswith("params/") for tag in tags["histograms"])
    assert tags["images"] == ["videos/greedy_episode"]
    assert events.Images("videos/greedy_episode")[0].encoded_image_string.startswith(b"GIF8")
    assert {"config/text_summary"} <= set(tags["tensors"])
    plugins = events.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in plugins and "_hparams_/session_start_info" in plugins
    assert [p.name for p in run.iterdir() if p.is_dir()] == []  # no add_hparams sub-run
    assert (run / "episode.gif").read_bytes().startswith(b"GIF8")
    summary = json.loads((run / "summary.json").read_text())
    for key in ("env_id", "seed", "config", "env_steps", "updates", "train_seconds", "solved", "final_eval"):
        assert key in summary
    assert set(summary["final_eval"]["greedy"]) == {"mean", "std", "min", "max"}
    assert set(summary["final_eval"]["sampled"]) == {"mean", "std", "min", "max"}
    assert (run / "model.pt").is_file()


def test_watch_plays_a_saved_run_into_a_gif(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert train.main(["--max-updates", "1", "--logdir", str(tmp_path), "--no-gif"]) == 0
    run = only_run(tmp_path)
    capsys.readouterr()
    assert train.main(["--watch", str(run), "--watch-episodes", "2", "--max-episode-steps", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    scores = [line for line in lines if "/" in line and not line.startswith(" ")]
    assert len(scores) == 2 and all(line.endswith("/500") for line in scores)
    assert (run / "watch_1.gif").is_file() and (run / "watch_2.gif").is_file()


def preset_config(argv):
    flags, mode = parse_args(argv)
    return make_config(flags, mode.preset)


def test_preset_seed_is_the_notebooks_setting_and_flags_override_it():
    config = preset_config(["--preset", "seed"])
    assert (config.num_envs, config.episodes_per_update, config.max_episode_steps, config.max_updates) == (
        5,
        5,
        200,
        100,
    )
    assert not config.stop_when_solved and not config.normalize_observations
    agent = config
    assert (agent.gamma, agent.normalize, agent.learning_rate, agent.hidden_sizes, agent.activation) == (
        0.95,
        "episode",
        0.01,
        (16,),
        "elu",
    )
    config = preset_config(["--preset", "seed", "--gamma", "0.9", "--hidden-sizes", "8", "8"])
    assert config.gamma == 0.9 and config.hidden_sizes == (8, 8) and config.max_episode_steps == 200


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True)


def test_help_lists_every_setting_with_its_default(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for flag in ("--env", "--seed", "--logdir", "--learning-rate", "--normalize", "--preset", "--watch"):
        assert flag in result.stdout
    assert "(default: CartPole-v1)" in result.stdout


def scalars(run, exclude=("charts/SPS",)):
    events = EventAccumulator(str(run))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"] if tag not in exclude
    }


def test_same_seed_gives_the_same_curves(tmp_path):
    args = ["--total-env-steps", "6000", "--eval-every-steps", "2000", "--no-gif", "--seed", "3"]
    for name in ("a", "b"):
        assert train.main([*args, "--logdir", str(tmp_path / name)]) == 0
    first, second = scalars(only_run(tmp_path / "a")), scalars(only_run(tmp_path / "b"))
    assert "eval/return_mean" in first and len(first["charts/episodic_return"]) > 3
    assert first == second


def test_evaluating_never_changes_training():
    def parameters_after(updates, evaluate_every_update):
        config = make_config({"max_updates": updates, "eval_episodes": 10, "seed": 2})
        trainer, evaluator = Trainer(config), Evaluator(config)
        while trainer.within_budget():
            trainer.step()
            if evaluate_every_update:
                evaluator(trainer.agent)
                evaluator(trainer.agent, deterministic=False)
        return [p.detach().clone() for p in trainer.agent.policy.parameters()]

    plain, evaluated = parameters_after(5, False), parameters_after(5, True)
    assert all(torch.equal(a, b) for a, b in zip(plain, evaluated))


def test_evaluation_is_due_at_the_first_update_past_each_multiple():
    evaluator = Evaluator(make_config({"eval_every_steps": 5000, "eval_episodes": 2}))
    assert [evaluator.due(s) for s in (4999, 5000, 5001, 9999, 16000, 19999, 20000)] == [
        False,
        True,
        False,
        False,
        True,
        False,
        True,
    ]
