"""Train a REINFORCE agent on a Gymnasium environment, with TensorBoard logs.

python train.py                          # CartPole-v1 until solved
python train.py --env Acrobot-v1 --seed 3
python train.py --preset seed            # the seed notebook's settings
python train.py --heuristic              # the notebook's hard-coded CartPole policy
python train.py --watch runs/<run>       # play a trained agent
python train.py --resume runs/<run>      # continue a stopped run in its folder
python train.py --env InvertedPendulum-v5 --learning-rate 0.01   # continuous actions
python train.py --help                   # every setting, with its default
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import signal
import sys
import time
import types
import typing
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from tqdm import tqdm

from agents import AgentConfig, CheckpointError, ReinforceAgent
from agents.agent import load_safely, save_atomically
from agents.distributed import ALONE, Workers, all_sum
from envs import (
    Rollout,
    collect_episodes,
    derive_seed,
    describe_returns,
    evaluate,
    make_vector_env,
    play,
    record_gif,
    run_heuristic,
    split_episodes,
)
from envs.factory import VECTORIZATIONS


def _setting(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class Config:
    """Every setting of a run. ``python train.py --help`` lists them; any can be set on the command line."""

    env: str = _setting("CartPole-v1", "Gymnasium environment id")
    seed: int = _setting(1, "seeds the weights, the sampling and the environments")
    num_envs: int = _setting(8, "environments stepped together (one batched forward per step)")
    episodes_per_update: int = _setting(8, "complete episodes per gradient step (a multiple of num_envs is best)")
    max_episode_steps: int | None = _setting(None, "time limit per episode (none: the environment's own)")
    vectorization: str = _setting("auto", "vector env mode", choices=VECTORIZATIONS)
    total_env_steps: int = _setting(500_000, "training budget in environment steps")
    max_updates: int | None = _setting(None, "stop after this many updates (none: no limit)")
    eval_every_steps: int = _setting(5_000, "evaluate at the first update after every this many env steps")
    eval_episodes: int = _setting(100, "episodes per evaluation, on seeds training never uses")
    target_return: float | None = _setting(None, "mean greedy return that counts as solved (none: the env's)")
    stop_when_solved: bool = _setting(True, "stop training at the first evaluation that reaches the target")
    logdir: str = _setting("runs", "root folder of the runs")
    print_every: int = _setting(10, "print the statistics line every this many updates")
    histogram_every: int = _setting(50, "log parameter histograms every this many updates")
    gif: bool = _setting(True, "record a GIF of one greedy episode at the end")
    watch_episodes: int = _setting(3, "episodes played by --watch")
    threads: int | None = _setting(None, "torch CPU threads for the updates (none: torch's default, all cores)")
    checkpoint_every: int = _setting(20, "write the run's checkpoint.pt every this many updates (and at the end)")
    max_nonfinite_updates: int = _setting(10, "stop after this many updates in a row with a non-finite loss")
    agent: AgentConfig = field(default_factory=AgentConfig)

    def __post_init__(self) -> None:
        positive = (
            "num_envs",
            "episodes_per_update",
            "total_env_steps",
            "eval_every_steps",
            "eval_episodes",
            "print_every",
            "histogram_every",
            "watch_episodes",
            "checkpoint_every",
            "max_nonfinite_updates",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_episode_steps", "max_updates", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or none, got {getattr(self, name)}")
        if self.num_envs > self.episodes_per_update:
            raise ValueError(
                f"num_envs ({self.num_envs}) exceeds episodes_per_update ({self.episodes_per_update}): "
                "lower --num-envs or raise --episodes-per-update"
            )


# The seed notebook: 5 episodes of at most 200 steps per update, 100 updates, gamma 0.95, per-episode
# normalisation, Adam 0.01, one layer of 16 ELU units, no early stop.
PRESETS: dict[str, dict[str, Any]] = {
    "seed": dict(
        num_envs=5,
        episodes_per_update=5,
        max_episode_steps=200,
        max_updates=100,
        stop_when_solved=False,
        hidden_sizes=(16,),
        activation="elu",
        learning_rate=0.01,
        gamma=0.95,
        normalize="episode",
        normalize_observations=False,
    ),
}


# ----------------------------------------------------------------------------- command line
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        # under torchrun every worker parses the same flags: the main one (rank 0) says what is wrong
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n" if os.environ.get("RANK", "0") == "0" else None)


def _settings() -> list[tuple[str, dataclasses.Field, Any, type]]:
    """(name, field, default, type) of every setting, the agent's included, in help order."""
    rows = []
    for cls in (Config, AgentConfig):
        hints = typing.get_type_hints(cls)
        rows += [(f.name, f, f.default, hints[f.name]) for f in dataclasses.fields(cls) if f.name != "agent"]
    return rows


def _converter(kind: Any):
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        inner = _converter(next(a for a in args if a is not type(None)))
        return lambda text: None if text.lower() == "none" else inner(text)
    if typing.get_origin(kind) is typing.Literal:
        return str
    return kind


def parse_args(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    """The run's Config (defaults, then ``--preset`` or the resumed run's, then each flag given) and the
    mode flags."""
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_argument_group("modes")
    modes.add_argument("--preset", choices=sorted(PRESETS), help="start from a named set of settings")
    modes.add_argument("--heuristic", action="store_true", help="evaluate the notebook's hard-coded CartPole policy")
    modes.add_argument("--watch", metavar="RUN_DIR_OR_MODEL", help="play a saved agent (window, or a GIF)")
    modes.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped run in its folder (flags may change the budget, not the agent)",
    )
    settings = parser.add_argument_group("settings")
    for name, f, default, kind in _settings():
        flag = "--" + name.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        options: dict[str, Any] = dict(
            dest=name, default=argparse.SUPPRESS, help=f"{f.metadata.get('help', '')} (default: {shown})"
        )
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            options.update(type=int, nargs="+", metavar="N")
        else:
            literal = typing.get_origin(kind) is typing.Literal
            choices = typing.get_args(kind) if literal else f.metadata.get("choices")
            options.update(type=_converter(kind), choices=choices, metavar=None if choices else name.upper())
        settings.add_argument(flag, **options)
    args = parser.parse_args(argv)
    given = {n: getattr(args, n) for n, *_ in _settings() if hasattr(args, n)}
    base = _saved_settings(Path(args.resume)) if args.resume else PRESETS.get(args.preset or "", {})
    return make_config({**base, **given}), args


def make_config(settings: dict[str, Any]) -> Config:
    """A Config from flat settings (the agent's among them); unnamed ones keep their defaults."""
    agent_names = {f.name for f in dataclasses.fields(AgentConfig)}
    agent = AgentConfig(**{k: v for k, v in settings.items() if k in agent_names})
    return Config(**{k: v for k, v in settings.items() if k not in agent_names}, agent=agent)


def _saved_settings(run_dir: Path) -> dict[str, Any]:
    """The flat settings of the run in ``run_dir``, from its config.json."""
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        settings = {k: v for k, v in saved.items() if k != "agent"} | saved["agent"]
        make_config(settings)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(
            f"{run_dir} is not a run folder with a readable config.json: give a folder train.py made"
        ) from None
    return settings


# ----------------------------------------------------------------------------- TensorBoard
def _flat_config(config: Config) -> dict[str, Any]:
    flat = {k: v for k, v in asdict(config).items() if k != "agent"} | asdict(config.agent)
    return {k: (",".join(map(str, v)) if isinstance(v, tuple) else "none" if v is None else v) for k, v in flat.items()}


def log_hparams(writer: SummaryWriter, config: Config, metrics: dict[str, float]) -> None:
    """Hparams into the run's own event file: ``add_hparams`` would write a separate sub-run."""
    file_writer = writer._get_file_writer()
    for summary in hparams(_flat_config(config), metrics):
        file_writer.add_summary(summary)
    for tag, value in metrics.items():
        writer.add_scalar(tag, value)


def log_gif(writer: SummaryWriter, tag: str, gif: bytes, height: int, width: int, step: int) -> None:
    """An animated GIF as an image summary (``add_video`` is broken with moviepy 2)."""
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


# ----------------------------------------------------------------------------- training
TRAINING, EVALUATION, VIDEO, SAMPLING = range(4)  # the random streams derived from a run's seed
CHECKPOINT, MODEL, RUN_FORMAT = "checkpoint.pt", "model.pt", "reinforce-run/1"


@dataclass
class RunState:
    """The counters of a run: with the agent's state, all a resumed run needs (each update's episodes
    are seeded from the run's seed and the update's index, so no environment state is kept)."""

    updates: int = 0
    env_steps: int = 0
    episodes: int = 0
    train_seconds: float = 0.0
    solved_at: int | None = None
    skipped_updates: int = 0
    skipped_in_a_row: int = 0


def build(config: Config) -> tuple[VectorEnv, ReinforceAgent]:
    """The training environments and a fresh agent, both seeded from ``config.seed`` (so every worker
    starts from the same weights)."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    env = make_vector_env(config.env, config.num_envs, config.max_episode_steps, config.vectorization)
    agent = ReinforceAgent(env.single_observation_space, env.single_action_space, config.agent, seed=config.seed)
    return env, agent


def learn(
    config: Config, env: VectorEnv, agent: ReinforceAgent, state: RunState, workers: Workers = ALONE
) -> Iterator[tuple[Rollout, dict[str, float]]]:
    """Collect complete episodes and learn from them until the budget runs out, yielding after each update;
    ``state`` counts as it goes, over all workers.

    Only collecting and updating are timed: what the caller does between updates (logging, evaluating,
    checkpointing) is not training time.
    """
    quotas = split_episodes(config.episodes_per_update, config.num_envs)
    while state.env_steps < config.total_env_steps and (
        config.max_updates is None or state.updates < config.max_updates
    ):
        started = time.perf_counter()
        keys = (state.updates, *workers.seed_keys())
        act = agent.sample
        if workers.size > 1:  # each worker samples from its own stream, drawn afresh each update like its episodes
            act = functools.partial(agent.sample, rng=np.random.default_rng(derive_seed(config.seed, SAMPLING, *keys)))
        rollout = collect_episodes(env, act, quotas, seed=derive_seed(config.seed, TRAINING, *keys))
        stats = agent.update(rollout.batch)
        state.train_seconds += time.perf_counter() - started
        state.updates += 1
        counts = torch.tensor([rollout.batch.num_steps, len(rollout.episode_returns)], dtype=torch.float64)
        steps, episodes = (int(x) for x in all_sum(counts))
        state.env_steps += steps
        state.episodes += episodes
        yield rollout, stats


class Evaluator:
    """Evaluation episodes on environments of their own, each evaluation seeded afresh (environments and
    sampling) from the run's seed, so that evaluating, however often, never changes training. ``due``
    says whether an update is the first at or after the next multiple of ``eval_every_steps``."""

    def __init__(self, config: Config) -> None:
        self.config, self.seed = config, config.seed
        self.episodes = config.eval_episodes
        self.every = config.eval_every_steps
        self.next_check = self.every
        self.evaluations = 0

    @functools.cached_property
    def env(self) -> VectorEnv:  # made on first use: under torchrun only the main worker evaluates
        config = self.config
        return make_vector_env(config.env, config.eval_episodes, config.max_episode_steps, config.vectorization)

    def due(self, env_steps: int) -> bool:
        if env_steps < self.next_check:
            return False
        self.next_check = (env_steps // self.every + 1) * self.every
        return True

    def __call__(self, agent: ReinforceAgent, deterministic: bool = True) -> np.ndarray:
        seed = derive_seed(self.seed, EVALUATION, self.evaluations)
        self.evaluations += 1
        return evaluate(agent, self.env, self.episodes, deterministic, np.random.default_rng(seed), seed)


class StopSignals:
    """While active, a first SIGINT or SIGTERM only asks the loop to stop after the current update; a
    second one exits at once (checkpoints are written atomically, so the last one stays intact)."""

    def __init__(self) -> None:
        self.received: int | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            os._exit(128 + signum)
        self.received = signum

    def __enter__(self) -> StopSignals:
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _stats(returns: np.ndarray) -> dict[str, float]:
    return {name: float(getattr(returns, name)()) for name in ("mean", "std", "min", "max")}


def _new_run_dir(config: Config) -> Path:
    root = Path(config.logdir)
    stamp = int(time.time())
    try:
        root.mkdir(parents=True, exist_ok=True)
        while (run_dir := root / f"{config.env.replace('/', '-')}__{config.seed}__{stamp}").exists():
            stamp += 1
        run_dir.mkdir()
    except OSError as error:
        raise ValueError(f"cannot create a run folder under --logdir {root}: {error.strerror or error}") from None
    return run_dir


class Run:
    """One training run in its folder: prepared (every check that can fail on bad input, before anything
    is written), then executed."""

    def __init__(self, config: Config, resume: Path | None = None, workers: Workers = ALONE) -> None:
        self.config, self.workers = config, workers
        self.env, self.agent = build(config)
        self.evaluator = Evaluator(config)
        spec_target = self.env.spec.reward_threshold if self.env.spec else None
        self.target = config.target_return if config.target_return is not None else spec_target
        self.state = RunState()
        self.agent.check_workers(workers.size)
        self.run_dir = resume
        if resume is not None:
            self._restore(resume / CHECKPOINT)

    def create_folder(self) -> None:
        """The new run's folder with its config.json (a resumed run has its folder already)."""
        if self.run_dir is None:
            self.run_dir = _new_run_dir(self.config)
            (self.run_dir / "config.json").write_text(json.dumps(asdict(self.config), indent=2))

    def _restore(self, path: Path) -> None:
        checkpoint = load_safely(path)
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != RUN_FORMAT:
            raise CheckpointError(f"{path} is not a {RUN_FORMAT} checkpoint")
        try:
            agent = ReinforceAgent.from_state_dict(checkpoint["agent"])
            self.state = RunState(**checkpoint["run"])
            self.evaluator.evaluations, self.evaluator.next_check = checkpoint["evaluator"]
        except (CheckpointError, KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{path} does not fit a run: {error}") from None
        agent.check_fits(self.env.single_observation_space, self.env.single_action_space, self.config.env)
        workers = checkpoint.get("workers", 1)  # runs saved before torchrun support had one
        if workers != self.workers.size:  # each worker plays its own episodes: the batch would change
            raise ValueError(
                f"the run had {workers} worker(s), this launch has {self.workers.size}: resume it "
                f"with {Workers(size=workers).launcher} train.py --resume"
            )
        changed = sorted(k for k, v in asdict(self.config.agent).items() if asdict(agent.config)[k] != v)
        if changed:
            raise ValueError(f"--resume cannot change the agent's settings ({', '.join(changed)}): start a new run")
        self.agent = agent

    def checkpoint(self) -> None:
        state = {
            "format": RUN_FORMAT,
            "agent": self.agent.state_dict(),
            "run": asdict(self.state),
            "workers": self.workers.size,
            "evaluator": [self.evaluator.evaluations, self.evaluator.next_check],
        }
        save_atomically(state, self.run_dir / CHECKPOINT)

    def log_update(
        self, writer: SummaryWriter, returns: np.ndarray, lengths: np.ndarray, stats: dict[str, float]
    ) -> None:
        step = self.state.env_steps
        for suffix in ("", "_min", "_max", "_std"):
            writer.add_scalar(f"charts/episodic_return{suffix}", getattr(returns, suffix[1:] or "mean")(), step)
        writer.add_scalar("charts/episodic_length", lengths.mean(), step)
        for name, value in stats.items():  # policy_loss, entropy, grad_norm, and the baseline's if any
            if name != "skipped_steps":
                writer.add_scalar(f"losses/{name}", value, step)
        writer.add_scalar("losses/skipped_updates", self.state.skipped_updates, step)
        writer.add_scalar("charts/learning_rate", self.agent.optimizer.param_groups[0]["lr"], step)
        writer.add_scalar("charts/SPS", step / self.state.train_seconds, step)
        if self.state.updates % self.config.histogram_every == 0:
            for name, parameter in self.agent.policy.named_parameters():
                writer.add_histogram(f"params/{name}", parameter, step)

    def execute(self) -> int:
        """Train until solved, out of budget or stopped; returns the exit status. With several workers
        the main one alone logs, evaluates, checkpoints and decides when to stop; the others follow."""
        config, state, main = self.config, self.state, self.workers.main
        resumed = state.updates > 0
        # on resume, drop whatever the interrupted run logged after its checkpoint
        writer = SummaryWriter(self.run_dir, purge_step=state.env_steps + 1 if resumed else None) if main else None
        if main and not resumed:
            writer.add_text("config", "\n".join(f"    {k} = {v}" for k, v in _flat_config(config).items()))
        bar = tqdm(
            total=config.total_env_steps,
            initial=state.env_steps,
            unit="step",
            disable=None if main else True,
            dynamic_ncols=True,
        )
        stopped_by: str | None = None
        with StopSignals() as signals:
            for rollout, stats in learn(config, self.env, self.agent, state, self.workers):
                skipped = stats["skipped_steps"] > 0  # the same on every worker: the gradient is shared
                state.skipped_updates += skipped
                state.skipped_in_a_row = state.skipped_in_a_row + 1 if skipped else 0
                returns = self.workers.gather(rollout.episode_returns)
                lengths = self.workers.gather(rollout.episode_lengths)
                reason = self._after_update(writer, bar, returns, lengths, stats) if main else None
                if reason is None and signals.received is not None:  # a signal to any worker stops them all
                    reason = signal.Signals(signals.received).name
                stopped_by = next((r for r in self.workers.everyone(reason) if r is not None), None)
                if stopped_by is not None:
                    break
            if main:
                self.checkpoint()
        bar.close()
        if stopped_by not in (None, "solved"):
            if main:
                writer.close()
                checkpoint = self.run_dir / CHECKPOINT
                if stopped_by == "nonfinite":
                    print(
                        f"train.py: stopped: {state.skipped_in_a_row} updates in a row had a non-finite loss or "
                        f"gradient (skipped, weights untouched); the last good state is {checkpoint}",
                        file=sys.stderr,
                    )
                else:
                    print(
                        f"train.py: {stopped_by}: stopped after update {state.updates}, saved {checkpoint}; "
                        f"resume with: {self.workers.launcher} train.py --resume {self.run_dir}",
                        file=sys.stderr,
                    )
            return 1 if stopped_by == "nonfinite" else 128 + signal.Signals[stopped_by].value
        if main:
            self.finish(writer)
        return 0

    def _after_update(
        self,
        writer: SummaryWriter,
        bar: tqdm,
        returns: np.ndarray,
        lengths: np.ndarray,
        stats: dict[str, float],
    ) -> str | None:
        """Log, print, evaluate and checkpoint after an update; say why training should stop, if it should."""
        config, state = self.config, self.state
        self.log_update(writer, returns, lengths, stats)
        bar.update(state.env_steps - bar.n)
        bar.set_postfix(ret=f"{returns.mean():.1f}")
        if stats["skipped_steps"]:
            bar.write(f"warning: update {state.updates} skipped: its loss or gradient is not finite")
        if state.updates % config.print_every == 0:
            bar.write(f"update {state.updates:4d}  steps {state.env_steps:7d}  {describe_returns(returns)}")
        if self.evaluator.due(state.env_steps):
            greedy = self.evaluator(self.agent)
            if self._record_evaluation(writer, greedy):
                bar.write(f"solved at {state.env_steps} env steps: greedy mean {greedy.mean():.1f}")
                if config.stop_when_solved:
                    return "solved"
        if state.skipped_in_a_row >= config.max_nonfinite_updates:
            return "nonfinite"
        if state.updates % config.checkpoint_every == 0:
            self.checkpoint()
        return None

    def _record_evaluation(self, writer: SummaryWriter, greedy: np.ndarray) -> bool:
        """Log a greedy evaluation's returns; whether they solve the environment for the first time."""
        state = self.state
        writer.add_scalar("eval/return_mean", greedy.mean(), state.env_steps)
        writer.add_scalar("eval/return_std", greedy.std(), state.env_steps)
        if state.solved_at is None and self.target is not None and greedy.mean() >= self.target:
            state.solved_at = state.env_steps
            return True
        return False

    def finish(self, writer: SummaryWriter) -> None:
        """Save the model, evaluate it greedily and by sampling, write the summary and the GIF."""
        config, state = self.config, self.state
        self.agent.save(self.run_dir / MODEL)
        greedy, sampled = self.evaluator(self.agent), self.evaluator(self.agent, deterministic=False)
        self._record_evaluation(writer, greedy)
        log_hparams(writer, config, {"eval/final_return_mean": float(greedy.mean())})
        summary = {
            "env_id": config.env,
            "seed": config.seed,
            "config": asdict(config),
            "env_steps": state.env_steps,
            "updates": state.updates,
            "episodes": state.episodes,
            "train_seconds": round(state.train_seconds, 3),
            "target_return": self.target,
            "solved": state.solved_at is not None,
            "solved_at_env_steps": state.solved_at,
            "skipped_updates": state.skipped_updates,
            "final_eval": {"episodes": config.eval_episodes, "greedy": _stats(greedy), "sampled": _stats(sampled)},
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "gymnasium": gym.__version__,
                "numpy": np.__version__,
            },
            "device": "cpu",
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        if config.gif:
            seed = derive_seed(config.seed, VIDEO)
            gif, height, width = record_gif(self.agent, config.env, config.max_episode_steps, seed=seed)
            (self.run_dir / "episode.gif").write_bytes(gif)
            log_gif(writer, "videos/greedy_episode", gif, height, width, state.env_steps)
        writer.close()
        self.env.close()
        self.evaluator.env.close()
        solved = "solved" if state.solved_at is not None else "not solved"
        print(
            f"{solved} after {state.env_steps} env steps, {state.updates} updates, "
            f"{state.train_seconds:.2f} s of training"
        )
        print(f"final evaluation, {config.eval_episodes} episodes: greedy {describe_returns(greedy)}")
        print(f"                                      sampled {describe_returns(sampled)}")
        print(f"model:       {self.run_dir / MODEL}")
        print(f"TensorBoard: tensorboard --logdir {config.logdir}   (this run: {self.run_dir})")


def load_agent(target: Path) -> tuple[ReinforceAgent, Path]:
    """The agent in a model file, a run checkpoint, or a run folder (its model, else its checkpoint)."""
    if target.is_dir():
        target = target / MODEL if (target / MODEL).is_file() else target / CHECKPOINT
    state = load_safely(target)
    if isinstance(state, dict) and state.get("format") == RUN_FORMAT:
        state = state.get("agent")
    try:
        return ReinforceAgent.from_state_dict(state), target
    except CheckpointError as error:
        raise CheckpointError(f"{target}: {error}") from None


def watch(config: Config, target: str) -> None:
    """Play a saved agent in the environment it was trained on (read from its run's config.json)."""
    agent, path = load_agent(Path(target))
    saved = path.parent / "config.json"
    if saved.is_file():
        run = json.loads(saved.read_text())
        config = dataclasses.replace(config, env=run["env"], max_episode_steps=run["max_episode_steps"])
    play(agent, config.env, config.max_episode_steps, config.watch_episodes, config.seed, path.parent)


def main(argv: list[str] | None = None) -> int:
    workers = Workers.from_environment()
    status = _main(argv, workers)
    workers.close()  # not after an exception: the other workers may never reach the barrier
    return status


def _main(argv: list[str] | None, workers: Workers) -> int:
    def agreed(error: str | None) -> bool:
        """Whether no worker failed (a worker alone must not go on); the main one prints the first error."""
        errors = [e for e in workers.everyone(error) if e is not None]
        if errors and workers.main:
            print(f"train.py: error: {errors[0]}", file=sys.stderr)
        return not errors

    error = None
    try:
        config, args = parse_args(argv)
        if (args.watch or args.heuristic) and workers.size > 1:
            raise ValueError("--watch and --heuristic run in one process: start them with python train.py")
        if args.watch:
            watch(config, args.watch)
            return 0
        if args.heuristic:
            run_heuristic(config.env, config.eval_episodes, config.max_episode_steps, config.seed)
            return 0
        run = Run(config, Path(args.resume) if args.resume else None, workers)
    except (ValueError, OSError) as problem:
        error = str(problem)
    if not agreed(error):
        return 2
    try:  # only now, once every worker is ready, does the run write anything
        if workers.main:
            run.create_folder()
    except ValueError as problem:
        error = str(problem)
    if not agreed(error):
        return 2
    try:
        return run.execute()
    except KeyboardInterrupt:  # after training, while evaluating or recording: the checkpoint is written
        if workers.main:
            print(f"train.py: interrupted; the run's checkpoint is in {run.run_dir}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
