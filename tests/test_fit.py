"""``fit``, the Python entry point of a whole run: the same run as ``train.py``, an environment class of one's own,
callbacks that stop a run, runs that write nothing, resuming, and the best agent kept."""

import copy
import json
import re
import signal
import time
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from builders import only_run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
import training.loop
from envs import EnvironmentFailed
from training import Callback, Config, fit, saved_config

SHORT = dict(total_env_steps=6000, eval_every_steps=2000, eval_episodes=10, gif=False, seed=3)


class Corridor(gym.Env):
    """Step right (action 1) from cell 0 to cell 5, for a reward of 1; unregistered, and without a time limit."""

    observation_space, action_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32), gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.cell = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.cell = max(0, self.cell + (1 if action == 1 else -1))
        return np.array([self.cell / 5], np.float32), float(self.cell == 5), self.cell == 5, False, {}


def scalars(run_dir):
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = [tag for tag in events.Tags()["scalars"] if tag != "charts/SPS"]  # SPS is a timing
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags}


def without_timings(summary):
    return {key: value for key, value in summary.items() if key not in ("train_seconds", "config")}


def test_fit_makes_the_run_train_py_makes(tmp_path):
    result = fit(Config(**SHORT, logdir=str(tmp_path / "python")))
    flags = ["--total-env-steps", "6000", "--eval-every-steps", "2000", "--eval-episodes", "10", "--no-gif"]
    assert train.main([*flags, "--seed", "3", "--logdir", str(tmp_path / "cli")]) == 0
    cli = only_run(tmp_path / "cli")
    assert result.run_dir == only_run(tmp_path / "python") and result.stopped is None
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))  # what it returns is what it wrote
    assert without_timings(summary) == without_timings(json.loads((cli / "summary.json").read_text()))
    assert scalars(result.run_dir) == scalars(cli)
    assert summary["best_eval"]["env_steps"] is not None and (result.run_dir / "best_model.pt").is_file()


def test_fit_trains_an_environment_class_of_ones_own(tmp_path):
    config = Config(max_episode_steps=50, target_return=1.0, gif=False, eval_episodes=10, logdir=str(tmp_path))
    result = fit(config, env=Corridor)
    assert result.summary["solved"] and result.summary["final_eval"]["greedy"]["mean"] == 1.0
    assert result.summary["env_id"] == "Corridor" and result.run_dir.name.startswith("Corridor__reinforce__1__")
    assert result.agent.act(np.array([0.0], np.float32), deterministic=True) == 1


def test_an_environment_class_without_a_time_limit_is_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="Corridor has no time limit.*--max-episode-steps") as error:
        fit(Config(logdir=str(tmp_path)), env=Corridor)
    assert "\n" not in str(error.value) and not list(tmp_path.iterdir())


class StopAfter(Callback):
    def __init__(self, updates):
        self.updates, self.seen, self.checks = updates, [], 0

    def on_update(self, state, update):
        self.seen.append((state.updates, update.episode_returns.mean()))
        return state.updates == self.updates

    def on_check(self, state, evaluation):
        self.checks += 1
        assert len(evaluation.greedy) == 10 and len(evaluation.sampled) == 10


def test_a_callback_sees_every_update_and_check_and_can_stop_the_run(tmp_path):
    callback = StopAfter(updates=7)
    result = fit(Config(**SHORT | {"total_env_steps": 10**6}, logdir=str(tmp_path)), callback=callback)
    assert result.state.updates == 7 and [updates for updates, _ in callback.seen] == list(range(1, 8))
    assert callback.checks >= 1 and result.stopped is None  # it ends as a run out of budget: model, summary
    assert (result.run_dir / "model.pt").is_file() and result.summary["updates"] == 7


def test_a_run_that_writes_nothing(tmp_path):
    result = fit(Config(**SHORT, logdir=str(tmp_path / "runs")), write_run=False, verbose=False)
    assert result.run_dir is None and not (tmp_path / "runs").exists()
    assert result.summary["env_steps"] >= 6000
    best = result.best_agent()
    assert best is not None and result.state.best_at is not None  # kept in memory (its weights: below)
    assert best.state_dict()["policy"].keys() == result.agent.state_dict()["policy"].keys()


def test_fit_resumes_a_run_exactly(tmp_path):
    config = Config(
        max_updates=2, anneal_lr=True, anneal_entropy=True, baseline=True, eval_episodes=4, gif=False, seed=2
    )
    first = fit(replace(config, logdir=str(tmp_path / "a")), verbose=False)
    resumed = fit(replace(config, max_updates=4, logdir=str(tmp_path / "a")), resume=first.run_dir, verbose=False)
    straight = fit(replace(config, max_updates=4, logdir=str(tmp_path / "b")), verbose=False)
    assert resumed.run_dir == first.run_dir and resumed.state.updates == 4
    for name, tensor in straight.agent.policy.state_dict().items():
        assert torch.equal(tensor, resumed.agent.policy.state_dict()[name]), name
    rates = [agent.optimizer.param_groups[0]["lr"] for agent in (resumed.agent, straight.agent)]
    assert rates[0] == rates[1] < config.learning_rate  # the schedules resumed where they were
    weights = [scalars(result.run_dir)["charts/entropy_coef"] for result in (resumed, straight)]
    assert weights[0] == weights[1] and weights[0][-1][1] < config.entropy_coef


def test_a_resumed_runs_events_are_read_after_those_of_the_run_it_resumes(tmp_path):
    """TensorBoard reads a run's event files in the order of their names: the second each was opened, then a
    count of the files its process had opened. A file of the run's opened in the same second as the resumed
    one, with a count that sorts after it (.99 against .100, or .7), would be read after the resumed events."""
    config = Config(max_updates=1, eval_episodes=2, gif=False, seed=4, logdir=str(tmp_path))
    first = fit(config, verbose=False)
    (opened,) = Path(first.run_dir).glob("events.out.tfevents.*")
    fields = opened.name.split(".")
    fields[3], fields[-1] = f"{int(time.time()) + 1:010d}", "99"  # as if opened in the next second, the 99th file
    opened.rename(opened.with_name(".".join(fields)))
    resumed = fit(replace(config, max_updates=2), resume=first.run_dir, verbose=False)
    assert sorted(Path(first.run_dir).glob("events.out.tfevents.*"))[0].name == ".".join(fields)
    steps = [step for step, _ in scalars(resumed.run_dir)["charts/episodic_return"]]
    assert len(steps) == 2 and steps == sorted(steps)


def test_a_resume_changes_only_the_budget_evaluation_and_housekeeping(tmp_path):
    config = Config(max_updates=1, eval_episodes=2, gif=False, seed=5, num_envs=4, logdir=str(tmp_path))
    first = fit(config, verbose=False)
    saved = saved_config(first.run_dir)
    assert saved == config and saved_config(str(first.run_dir)) == config  # a folder as fit's resume= takes it
    with pytest.raises(ValueError, match="cannot change the agent's settings \\(learning_rate\\)"):
        fit(replace(saved, max_updates=2, learning_rate=0.5), resume=first.run_dir)
    with pytest.raises(ValueError, match="cannot change the run's settings \\(seed, num_envs\\)"):
        fit(Config(max_updates=2, logdir=str(tmp_path)), resume=first.run_dir)  # a fresh Config is not the run's
    with pytest.raises(ValueError, match="writes into its own folder"):
        fit(resume=first.run_dir, write_run=False)
    resumed = fit(replace(saved, max_updates=2, eval_episodes=3), resume=first.run_dir, verbose=False)
    assert resumed.state.updates == 2 and resumed.summary["final_eval"]["episodes"] == 3


@pytest.mark.parametrize("write_run", [True, False])
def test_every_better_check_keeps_its_agent(tmp_path, monkeypatch, write_run):
    class Checks(Callback):
        means = []

        def on_check(self, state, evaluation):
            self.means.append((float(evaluation.greedy.mean()), state.best_return))

    kept = {}  # the policy's weights at each check that beat the best so far, as training had them then
    record = training.loop.Run._record

    def recording(run, evaluation):
        better = run.trainer.state.best_return is None or evaluation.greedy.mean() > run.trainer.state.best_return
        if better:
            kept["policy"] = copy.deepcopy(run.trainer.agent.policy.state_dict())
        return record(run, evaluation)

    monkeypatch.setattr(training.loop.Run, "_record", recording)
    config = Config(**SHORT | {"total_env_steps": 20_000, "stop_when_solved": False}, logdir=str(tmp_path))
    result = fit(config, callback=Checks(), verbose=False, write_run=write_run)
    means = [mean for mean, _ in Checks.means]
    assert [best for _, best in Checks.means] == list(np.maximum.accumulate(means))
    assert result.summary["best_eval"]["greedy_mean"] == max(means)
    again = result.summary["best_eval"]["reevaluated"]  # the best agent on fresh episodes
    assert set(again) == {"mean", "std", "min", "max"}
    assert result.state.best_at < result.state.env_steps  # the best check is not the last: training moved on
    best, final = result.best_agent().policy.state_dict(), result.agent.policy.state_dict()
    assert all(torch.equal(best[name], kept["policy"][name]) for name in best)  # the best check's own weights
    assert not all(torch.equal(best[name], final[name]) for name in best)


def test_a_run_trains_on_one_thread_by_default_and_leaves_the_process_as_it_found_it():
    before, seen = torch.get_num_threads(), []

    class Threads(Callback):
        def on_update(self, state, update):
            seen.append(torch.get_num_threads())
            return True

    fit(Config(eval_episodes=2, gif=False), callback=Threads(), write_run=False, verbose=False)
    assert seen == [1] and torch.get_num_threads() == before


def test_a_run_of_an_environment_class_is_watched_by_naming_the_environment(tmp_path, capsys):
    config = Config(max_episode_steps=50, target_return=1.0, gif=False, eval_episodes=10, logdir=str(tmp_path))
    run_dir = fit(config, env=Corridor, verbose=False).run_dir
    assert train.main(["--watch", str(run_dir)]) == 2  # its config.json names the class, which no registry holds
    err = capsys.readouterr().err
    assert "unknown environment id 'Corridor'" in err and "(or give --env)" in err and err.count("\n") == 1
    gym.register("FitCorridor-v0", entry_point=Corridor, max_episode_steps=50)
    assert train.main(["--watch", str(run_dir), "--env", "FitCorridor-v0", "--watch-episodes", "1"]) == 0
    assert "episode 1: return 1 in 5 steps (limit 50)" in capsys.readouterr().out


def test_an_annealed_run_ends_at_a_rate_of_zero_not_below(tmp_path):
    result = fit(Config(anneal_lr=True, total_env_steps=700, stop_when_solved=False, eval_episodes=2, gif=False,
                        logdir=str(tmp_path)), verbose=False)  # fmt: skip
    assert result.state.env_steps > 700
    saved = torch.load(result.run_dir / "model.pt", weights_only=True)["optimizer"]["param_groups"][0]
    assert result.agent.optimizer.param_groups[0]["lr"] == 0.0 == saved["lr"]


def test_an_annealed_entropy_bonus_falls_with_the_share_of_the_budget_still_to_train_and_is_logged(tmp_path):
    config = Config(anneal_entropy=True, total_env_steps=700, stop_when_solved=False, eval_episodes=2, gif=False)
    seen = []

    class Weights(Callback):
        def on_update(self, state, update):
            seen.append((state.env_steps, update.entropy_coef))

    result = fit(replace(config, logdir=str(tmp_path)), callback=Weights(), verbose=False)
    steps_before = [0] + [steps for steps, _ in seen[:-1]]
    expected = [config.entropy_coef * max(0.0, 1 - steps / 700) for steps in steps_before]
    assert [weight for _, weight in seen] == expected and expected[0] == 0.02 and len(seen) >= 3
    assert all(later < earlier for earlier, later in zip(expected, expected[1:]))
    assert [value for _, value in scalars(result.run_dir)["charts/entropy_coef"]] == pytest.approx(expected)


def test_an_environment_that_fails_mid_run_raises_one_line_and_releases_the_run(tmp_path):
    class Quits(Corridor):
        steps = 0

        def step(self, action):
            Quits.steps += 1
            if Quits.steps == 1000:  # in the third update or so
                raise SystemExit(0)
            return super().step(action)

    settings = {**SHORT, "max_episode_steps": 50, "target_return": 2.0, "checkpoint_every": 1}
    config = Config(**settings, logdir=str(tmp_path))
    with pytest.raises(EnvironmentFailed, match="the environment's step raised SystemExit: 0 at .*in step") as failed:
        fit(config, env=Quits)
    message = str(failed.value)
    assert "\n" not in message and "its last checkpoint is intact" in message
    result = fit(replace(config, total_env_steps=8000), env=Quits, resume=only_run(tmp_path))  # the lock released
    assert result.stopped is None and result.state.env_steps >= 8000


def test_a_solved_run_resumed_ends_again_with_the_agent_it_had(tmp_path):
    result = fit(Config(**{**SHORT, "total_env_steps": 100_000}, logdir=str(tmp_path)))
    assert result.state.solved_at == result.state.env_steps < 100_000
    again = fit(resume=result.run_dir)
    assert (
        again.state.env_steps == result.state.env_steps
        and again.summary["solved_at_env_steps"] == result.state.solved_at
    )
    for name, tensor in result.agent.state_dict()["policy"].items():
        assert torch.equal(again.agent.state_dict()["policy"][name], tensor)
    onward_config = replace(
        saved_config(result.run_dir), stop_when_solved=False, total_env_steps=result.state.env_steps + 2000
    )
    onward = fit(onward_config, resume=result.run_dir)
    assert onward.state.env_steps > result.state.env_steps  # asked for, it trains on


def test_a_stop_signal_skips_a_due_check_and_stops_within_the_update(tmp_path):
    """A check can take minutes (100 long episodes): a batch scheduler's grace period would not wait for it."""

    class SignalAtTheSecondUpdate(Callback):
        checked: list[int] = []

        def on_update(self, state, update):
            if state.updates == 2:
                signal.raise_signal(signal.SIGTERM)

        def on_check(self, state, evaluation):
            self.checked.append(state.updates)

    callback = SignalAtTheSecondUpdate()
    config = Config(**SHORT | {"total_env_steps": 10**6, "eval_every_steps": 1}, logdir=str(tmp_path))
    result = fit(config, callback=callback, verbose=False)
    assert result.stopped == "SIGTERM" and result.state.updates == 2
    assert callback.checked == [1]  # due at every update; none after the signal


def test_the_check_a_stop_signal_skipped_is_made_by_the_resumed_run_where_an_uninterrupted_run_made_it(tmp_path):
    class Checks(Callback):
        def __init__(self, signal_at=None, signal_at_check=False):
            self.signal_at, self.signal_at_check, self.seen = signal_at, signal_at_check, []

        def on_update(self, state, update):
            if state.updates == self.signal_at:
                signal.raise_signal(signal.SIGTERM)

        def on_check(self, state, evaluation):
            self.seen.append((state.updates, state.env_steps, evaluation.greedy.tolist(), evaluation.sampled.tolist()))
            if self.signal_at_check:
                signal.raise_signal(signal.SIGTERM)

    config = Config(**SHORT | {"total_env_steps": 10**6, "eval_every_steps": 1, "max_updates": 4})
    interrupted, signalled, resumed, straight = Checks(signal_at=2), Checks(signal_at_check=True), Checks(), Checks()
    first = fit(replace(config, logdir=str(tmp_path / "a")), callback=interrupted, verbose=False)
    assert first.stopped == "SIGTERM" and [updates for updates, *_ in interrupted.seen] == [1]
    # a signal during that check stops the resumed run as one during training does: checkpointed, no update
    again = fit(replace(config, logdir=str(tmp_path / "a")), resume=first.run_dir, callback=signalled, verbose=False)
    assert again.stopped == "SIGTERM" and again.state.updates == 2 and [u for u, *_ in signalled.seen] == [2]
    fit(replace(config, logdir=str(tmp_path / "a")), resume=first.run_dir, callback=resumed, verbose=False)
    fit(replace(config, logdir=str(tmp_path / "b")), callback=straight, verbose=False)
    assert [updates for updates, *_ in straight.seen] == [1, 2, 3, 4]
    assert interrupted.seen + signalled.seen + resumed.seen == straight.seen


def test_a_resume_whose_best_model_is_unreadable_is_refused_before_anything_is_written(tmp_path):
    first = fit(Config(**SHORT | {"max_updates": 2, "eval_every_steps": 1}, logdir=str(tmp_path)), verbose=False)
    best = first.run_dir / "best_model.pt"
    best.write_bytes(best.read_bytes()[:3000])
    before = {name: (first.run_dir / name).read_bytes() for name in ("model.pt", "checkpoint.pt", "summary.json")}
    with pytest.raises(ValueError, match="best_model.pt is not a readable checkpoint.*remove it"):
        fit(Config(**SHORT | {"max_updates": 4}, logdir=str(tmp_path)), resume=first.run_dir, verbose=False)
    assert before == {name: (first.run_dir / name).read_bytes() for name in before}


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"total_env_steps": "3000"}, "total_env_steps must be int, got '3000'"),
        ({"hidden_sizes": 64}, "hidden_sizes must be a sequence of int, got 64"),
        ({"gamma": None}, "gamma must be float, got None"),
        ({"num_envs": True}, "num_envs must be int, got True"),
        ({"normalize": "layer"}, "unknown normalize 'layer': choose one of batch, episode, none"),
    ],
)
def test_a_setting_of_the_wrong_type_is_a_value_error_naming_it(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Config(**settings)
    with pytest.raises(ValueError, match=re.escape(message)):
        replace(Config(), **settings)


def test_numpy_numbers_lists_and_paths_are_settings_too(tmp_path):
    config = Config(seed=np.int64(3), learning_rate=np.float32(0.01), hidden_sizes=[8, 8], logdir=tmp_path)
    assert config.hidden_sizes == (8, 8) and config.logdir == str(tmp_path)
