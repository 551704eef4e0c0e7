"""train.py end to end: real short runs, their folders and TensorBoard logs, the command line, non-finite
updates, evaluation that never changes training (bad input: test_bad_input.py)."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from builders import FAST, FiveStepEnv, only_run, run_cli, squashed
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from agents import (
    ReinforceAgent,
)
from envs import evaluate
from training import PRESETS, Evaluator, Trainer, make_config, parse_args
from training.seeding import EVALUATION, derive_seed
from training.settings import AGENT_SETTINGS

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
    "charts/entropy_coef",
    "charts/SPS",
}


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
    assert run.name.startswith("CartPole-v1__reinforce__4__")
    events = EventAccumulator(str(run), size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    evaluation_tags = {"eval/return_mean", "eval/return_std", "eval/sampled_return_mean", "eval/sampled_return_std"}
    assert PER_UPDATE_TAGS | evaluation_tags <= set(tags["scalars"])
    assert len(events.Scalars("charts/episodic_return")) >= 2
    assert any(tag.startswith("params/") for tag in tags["histograms"])
    assert tags["images"] == ["videos/greedy_episode"]
    assert events.Images("videos/greedy_episode")[0].encoded_image_string.startswith(b"GIF8")
    assert {"config/text_summary"} <= set(tags["tensors"])
    assert [p.name for p in run.iterdir() if p.is_dir()] == ["hparams"]  # HPARAMS: test_run_outputs.py
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
    assert train.main(["--watch", str(run), "--watch-episodes", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("episode ")] == ["episode 1", "episode 2"]
    assert all(line.endswith("steps (limit 500)") for line in lines if line.startswith("episode "))
    assert lines[0] == f"playing {run / 'model.pt'}"  # the final agent, not best_model.pt
    assert lines[2] == f"  no display: wrote {run / 'watch_1.gif'}"  # into the run's folder
    assert (run / "watch_1.gif").is_file() and (run / "watch_2.gif").is_file()
    assert train.main(["--watch", str(run), "--watch-episodes", "1", "--max-episode-steps", "7"]) == 0
    assert "steps (limit 7)" in capsys.readouterr().out  # a flag given is honoured, not silently dropped
    assert train.main(["--watch", str(run), "--watch-episodes", "1", "--env", "Acrobot-v1"]) == 2
    assert "other spaces than Acrobot-v1's" in capsys.readouterr().err  # honoured, so checked against the agent


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
    assert agent.bootstrap == "none"  # the notebook's Monte-Carlo returns, whatever the default
    assert set(AGENT_SETTINGS) <= set(PRESETS["seed"])  # every agent setting named: defaults may change
    assert (agent.gamma, agent.normalize, agent.learning_rate, agent.hidden_sizes, agent.activation) == (
        0.95,
        "episode",
        0.01,
        (16,),
        "elu",
    )
    config = preset_config(["--preset", "seed", "--gamma", "0.9", "--hidden-sizes", "8", "8"])
    assert config.gamma == 0.9 and config.hidden_sizes == (8, 8) and config.max_episode_steps == 200


def test_preset_textbook_switches_every_robustness_default_off():
    textbook, defaults = preset_config(["--preset", "textbook"]), preset_config([])
    assert set(AGENT_SETTINGS) <= set(PRESETS["textbook"])  # every agent setting named: defaults may change
    changed = {name for name in AGENT_SETTINGS if getattr(textbook, name) != getattr(defaults, name)}
    assert changed == {"init", "learning_rate", "bootstrap", "passes", "entropy_coef"}
    assert (textbook.init, textbook.bootstrap, textbook.passes, textbook.entropy_coef) == ("default", "none", 1, 0)
    assert textbook.env == defaults.env and textbook.total_env_steps == defaults.total_env_steps


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


def test_acrobot_leaves_the_minus_500_floor_where_the_textbook_algorithm_stays():
    """Acrobot seed 8, a dead start of the textbook algorithm: every episode truncated at -500 from the first
    batch on. With the defaults the same seed learns within 20,000 env steps."""

    def returns_per_update(preset):
        trainer = Trainer(make_config({"env": "Acrobot-v1", "seed": 8, "total_env_steps": 20_000}, preset))
        means = []
        while trainer.within_budget():
            means.append(trainer.step().episode_returns.mean())
        return means

    assert returns_per_update("textbook") == [-500.0] * 5
    assert returns_per_update(None)[-1] > -300


def test_anneal_lr_decays_both_rates_linearly_by_env_steps():
    config = make_config({"anneal_lr": True, "baseline": True, "total_env_steps": 3000, "learning_rate": 0.02})
    trainer, used = Trainer(config), []
    while trainer.within_budget():  # the rates the next update takes, set after the one before
        rates = (trainer.agent.optimizer.param_groups[0]["lr"], trainer.agent.value_optimizer.param_groups[0]["lr"])
        used.append((trainer.state.env_steps, *rates))
        assert trainer.step().learning_rate == rates[0]  # what the update logs
    trainer.close()
    assert used[0][1:] == (0.02, 0.01) and len(used) > 2  # the first update at the full rates
    for before, rate, value_rate in used:
        share = 1 - before / 3000  # of the budget still to train
        assert rate == pytest.approx(0.02 * share) and value_rate == pytest.approx(0.01 * share)
    assert make_config({}).anneal_lr is False  # off unless asked for


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


def test_sampled_evaluations_never_move_the_greedy_ones():
    config = make_config({"eval_episodes": 4, "seed": 5})
    agent = Trainer(config).agent
    greedy_only, both = Evaluator(config), Evaluator(config)
    for _ in range(3):
        alone = greedy_only(agent)
        beside = both(agent)
        both(agent, deterministic=False)
        assert alone.tolist() == beside.tolist()
    greedy_only.close()
    both.close()


def test_an_async_run_evaluates_in_its_own_process_on_the_episodes_async_would_give():
    """An evaluation has one environment per episode: as worker processes, 100 of them by default."""
    config = make_config({"eval_episodes": 6, "seed": 3, "vectorization": "async"})
    agent = Trainer(make_config({"seed": 3})).agent
    evaluator = Evaluator(config)
    assert isinstance(evaluator.env, SyncVectorEnv)
    in_workers = config.env_config().make_vector(config.eval_episodes)
    assert isinstance(in_workers, AsyncVectorEnv)
    seed = derive_seed(config.seed, EVALUATION, 0)  # the first greedy check's
    limit = config.env_config().time_limit()
    expected = evaluate(agent, in_workers, 6, True, np.random.default_rng(seed), seed, limit)
    in_workers.close()
    assert evaluator(agent).tolist() == expected.tolist()
    evaluator.close()


def test_a_check_at_the_same_step_is_not_made_twice():
    config = make_config({"eval_episodes": 3})
    trainer, evaluator = Trainer(config), Evaluator(config)
    first, new = evaluator.check(trainer.agent, 1000)
    again, new_again = evaluator.check(trainer.agent, 1000)
    later, new_later = evaluator.check(trainer.agent, 1200)
    assert (new, new_again, new_later) == (True, False, True) and again is first and later is not first
    assert evaluator.evaluations == {True: 2, False: 2}
    restored = Evaluator(config)
    restored.load_state_dict(evaluator.state_dict())  # what a resumed run knows of its last check
    assert restored.check(trainer.agent, 1200)[1] is False and restored.last.greedy.tolist() == later.greedy.tolist()
    evaluator.close()


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


class NanRewardEnv(FiveStepEnv):
    """Every reward NaN."""

    def reward(self, action) -> float:
        return float("nan")


def test_non_finite_updates_are_skipped_and_the_run_stops_with_its_last_good_state(tmp_path, capsys):
    gym.register(id="NanReward-v0", entry_point=NanRewardEnv, max_episode_steps=5)
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


def test_a_learning_rate_too_large_for_float32_steps_skips_updates_instead_of_crashing(tmp_path, capsys):
    """Adam's first step at 1e38 is 1e39, beyond float32: torch refuses it, and the update is undone."""
    args = ["--learning-rate", "1e38", "--max-nonfinite-updates", "2", "--logdir", str(tmp_path), *FAST]
    assert train.main(args) == 1
    err = capsys.readouterr().err
    assert "2 updates in a row had a non-finite loss, gradient or step" in err and "Traceback" not in err


def test_a_short_inverted_pendulum_run_improves(tmp_path):
    try:
        gym.make("InvertedPendulum-v5").close()
    except gym.error.DependencyNotInstalled as error:
        pytest.skip(f"MuJoCo cannot be imported ({error}); install it with: pip install 'gymnasium[mujoco]'")
    args = ["--env", "InvertedPendulum-v5", "--max-updates", "25", "--eval-episodes", "10"]  # the README command
    assert train.main([*args, "--no-gif", "--logdir", str(tmp_path)]) == 0
    summary = json.loads((next(tmp_path.iterdir()) / "summary.json").read_text())
    # a random policy balances for about 5-30 steps; seed 1 reaches the 1,000-step cap within 25 updates
    assert summary["final_eval"]["greedy"]["mean"] >= 500


def test_the_heuristic_and_watch_follow_the_preset(tmp_path):
    result = run_cli("--preset", "seed", "--heuristic", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    maximum = float(result.stdout.strip().splitlines()[-1].rsplit("Max: ", 1)[1])
    assert maximum <= 200  # the notebook's 200-step cap, not CartPole-v1's 500


def test_tanh_bounded_actions_train_and_are_saved_with_the_run(tmp_path):
    args = ["--env", "Pendulum-v1", "--action-bound", "tanh", "--total-env-steps", "2000", "--eval-episodes", "2"]
    assert train.main([*args, "--no-gif", "--logdir", str(tmp_path)]) == 0
    agent = ReinforceAgent.load(only_run(tmp_path) / "model.pt")
    taken, drawn = agent.sample(agent.observation_space.sample())
    assert agent.config.action_bound == "tanh" and agent.action_space.contains(taken)
    np.testing.assert_allclose(taken, squashed(drawn, agent.action_space), rtol=1e-6)
