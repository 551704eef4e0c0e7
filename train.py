"""Train a REINFORCE agent on a Gymnasium environment, with TensorBoard logs.

python train.py                          # CartPole-v1 until solved
python train.py --env Acrobot-v1 --seed 3
python train.py --preset seed            # the seed notebook's settings
python train.py --heuristic              # the notebook's hard-coded CartPole policy
python train.py --watch runs/<run>       # play a trained agent
python train.py --help                   # every setting, with its default
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
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

from agents import AgentConfig, ReinforceAgent
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
    num_envs: int = _setting(16, "environments stepped together (one batched forward per step)")
    episodes_per_update: int = _setting(16, "complete episodes per gradient step (a multiple of num_envs is best)")
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
    threads: int = _setting(1, "torch CPU threads (1 is fastest for small networks)")
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
            "threads",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_episode_steps", "max_updates"):
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
    ),
}


# ----------------------------------------------------------------------------- command line
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


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
    """The run's Config (defaults, then ``--preset``, then each flag given) and the mode flags."""
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_argument_group("modes")
    modes.add_argument("--preset", choices=sorted(PRESETS), help="start from a named set of settings")
    modes.add_argument("--heuristic", action="store_true", help="evaluate the notebook's hard-coded CartPole policy")
    modes.add_argument("--watch", metavar="RUN_DIR_OR_MODEL", help="play a saved agent (window, or a GIF)")
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
    given = {**PRESETS.get(args.preset or "", {}), **{n: getattr(args, n) for n, *_ in _settings() if hasattr(args, n)}}
    agent_names = {f.name for f in dataclasses.fields(AgentConfig)}
    agent = AgentConfig(**{k: v for k, v in given.items() if k in agent_names})
    config = Config(**{k: v for k, v in given.items() if k not in agent_names}, agent=agent)
    return config, args


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
TRAINING, EVALUATION, VIDEO = range(3)  # the random streams derived from a run's seed


@dataclass
class Progress:
    """Where a run stands after an update."""

    updates: int
    env_steps: int
    episodes: int
    train_seconds: float
    rollout: Rollout
    stats: dict[str, float]


def build(config: Config) -> tuple[VectorEnv, ReinforceAgent]:
    """The training environments and a fresh agent, both seeded from ``config.seed``."""
    torch.set_num_threads(config.threads)
    env = make_vector_env(config.env, config.num_envs, config.max_episode_steps, config.vectorization)
    agent = ReinforceAgent(env.single_observation_space, env.single_action_space, config.agent, seed=config.seed)
    return env, agent


def learn(config: Config, env: VectorEnv, agent: ReinforceAgent) -> Iterator[Progress]:
    """Collect complete episodes and learn from them until the budget runs out, yielding after each update.

    Only collecting and updating are timed: what the caller does between updates (logging, evaluating)
    is not training time.
    """
    quotas = split_episodes(config.episodes_per_update, config.num_envs)
    updates = env_steps = episodes = 0
    train_seconds = 0.0
    while env_steps < config.total_env_steps and (config.max_updates is None or updates < config.max_updates):
        started = time.perf_counter()
        rollout = collect_episodes(env, agent.act, quotas, seed=derive_seed(config.seed, TRAINING, updates))
        stats = agent.update(rollout.batch)
        train_seconds += time.perf_counter() - started
        updates += 1
        env_steps += rollout.batch.num_steps
        episodes += len(rollout.episode_returns)
        yield Progress(updates, env_steps, episodes, train_seconds, rollout, stats)


class Evaluator:
    """Evaluation episodes on environments of their own, each evaluation seeded afresh (environments and
    sampling) from the run's seed, so that evaluating, however often, never changes training. ``due``
    says whether an update is the first at or after the next multiple of ``eval_every_steps``."""

    def __init__(self, config: Config) -> None:
        self.seed = config.seed
        self.env = make_vector_env(config.env, config.eval_episodes, config.max_episode_steps, config.vectorization)
        self.episodes = config.eval_episodes
        self.every = config.eval_every_steps
        self.next_check = self.every
        self.evaluations = 0

    def due(self, env_steps: int) -> bool:
        if env_steps < self.next_check:
            return False
        self.next_check = (env_steps // self.every + 1) * self.every
        return True

    def __call__(self, agent: ReinforceAgent, deterministic: bool = True) -> np.ndarray:
        seed = derive_seed(self.seed, EVALUATION, self.evaluations)
        self.evaluations += 1
        generator = torch.Generator().manual_seed(seed)
        return evaluate(agent, self.env, self.episodes, deterministic, generator, seed)


def _stats(returns: np.ndarray) -> dict[str, float]:
    return {name: float(getattr(returns, name)()) for name in ("mean", "std", "min", "max")}


def _new_run_dir(config: Config) -> Path:
    root = Path(config.logdir)
    stamp = int(time.time())
    while (run_dir := root / f"{config.env.replace('/', '-')}__{config.seed}__{stamp}").exists():
        stamp += 1
    run_dir.mkdir(parents=True)
    return run_dir


def log_update(writer: SummaryWriter, progress: Progress, agent: ReinforceAgent, config: Config) -> None:
    step, returns = progress.env_steps, progress.rollout.episode_returns
    for suffix in ("", "_min", "_max", "_std"):
        value = getattr(returns, suffix[1:] or "mean")()
        writer.add_scalar(f"charts/episodic_return{suffix}", value, step)
    writer.add_scalar("charts/episodic_length", progress.rollout.episode_lengths.mean(), step)
    for name, value in progress.stats.items():
        writer.add_scalar(f"losses/{name}", value, step)
    writer.add_scalar("charts/learning_rate", agent.optimizer.param_groups[0]["lr"], step)
    writer.add_scalar("charts/SPS", progress.env_steps / progress.train_seconds, step)
    if progress.updates % config.histogram_every == 0:
        for name, parameter in agent.policy.named_parameters():
            writer.add_histogram(f"params/{name}", parameter, step)


def train(config: Config) -> dict[str, Any]:
    """Train until solved or out of budget; save, evaluate, record; return the summary."""
    env, agent = build(config)
    evaluator = Evaluator(config)
    target = config.target_return if config.target_return is not None else env.spec.reward_threshold
    run_dir = _new_run_dir(config)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    writer = SummaryWriter(run_dir)
    writer.add_text("config", "\n".join(f"    {k} = {v}" for k, v in _flat_config(config).items()))

    solved_at: int | None = None
    bar = tqdm(total=config.total_env_steps, unit="step", disable=None, dynamic_ncols=True)
    for progress in learn(config, env, agent):
        log_update(writer, progress, agent, config)
        returns = progress.rollout.episode_returns
        bar.update(progress.rollout.batch.num_steps)
        bar.set_postfix(ret=f"{returns.mean():.1f}")
        if progress.updates % config.print_every == 0:
            bar.write(f"update {progress.updates:4d}  steps {progress.env_steps:7d}  {describe_returns(returns)}")
        if evaluator.due(progress.env_steps):
            greedy = evaluator(agent)
            writer.add_scalar("eval/return_mean", greedy.mean(), progress.env_steps)
            writer.add_scalar("eval/return_std", greedy.std(), progress.env_steps)
            if target is not None and greedy.mean() >= target and solved_at is None:
                solved_at = progress.env_steps
                bar.write(f"solved at {solved_at} env steps: greedy mean {greedy.mean():.1f} >= {target:g}")
                if config.stop_when_solved:
                    break
    bar.close()
    agent.save(run_dir / "model.pt")

    greedy, sampled = evaluator(agent), evaluator(agent, deterministic=False)
    if solved_at is None and target is not None and greedy.mean() >= target:
        solved_at = progress.env_steps
    writer.add_scalar("eval/return_mean", greedy.mean(), progress.env_steps)
    writer.add_scalar("eval/return_std", greedy.std(), progress.env_steps)
    log_hparams(writer, config, {"eval/final_return_mean": float(greedy.mean())})
    summary = {
        "env_id": config.env,
        "seed": config.seed,
        "config": asdict(config),
        "env_steps": progress.env_steps,
        "updates": progress.updates,
        "episodes": progress.episodes,
        "train_seconds": round(progress.train_seconds, 3),
        "target_return": target,
        "solved": solved_at is not None,
        "solved_at_env_steps": solved_at,
        "final_eval": {"episodes": config.eval_episodes, "greedy": _stats(greedy), "sampled": _stats(sampled)},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "gymnasium": gym.__version__,
            "numpy": np.__version__,
        },
        "device": "cpu",
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if config.gif:
        seed = derive_seed(config.seed, VIDEO)
        gif, height, width = record_gif(agent, config.env, config.max_episode_steps, seed=seed)
        (run_dir / "episode.gif").write_bytes(gif)
        log_gif(writer, "videos/greedy_episode", gif, height, width, progress.env_steps)
    writer.close()
    env.close()
    evaluator.env.close()

    print(
        f"{'solved' if solved_at is not None else 'not solved'} after {progress.env_steps} env steps, "
        f"{progress.updates} updates, {progress.train_seconds:.2f} s of training"
    )
    print(f"final evaluation, {config.eval_episodes} episodes: greedy {describe_returns(greedy)}")
    print(f"                                      sampled {describe_returns(sampled)}")
    print(f"model:       {run_dir / 'model.pt'}")
    print(f"TensorBoard: tensorboard --logdir {config.logdir}   (this run: {run_dir})")
    return summary


def watch(config: Config, target: str) -> None:
    """Play a saved agent (a run folder or a model file) in the environment it was trained on."""
    path = Path(target)
    model = path / "model.pt" if path.is_dir() else path
    saved = model.parent / "config.json"
    if saved.is_file():
        run = json.loads(saved.read_text())
        config = dataclasses.replace(config, env=run["env"], max_episode_steps=run["max_episode_steps"])
    agent = ReinforceAgent.load(model)
    play(agent, config.env, config.max_episode_steps, config.watch_episodes, config.seed, model.parent)


def main(argv: list[str] | None = None) -> int:
    try:
        config, args = parse_args(argv)
        if args.watch:
            watch(config, args.watch)
        elif args.heuristic:
            run_heuristic(config.env, config.eval_episodes, config.max_episode_steps, config.seed)
        else:
            train(config)
    except (ValueError, OSError) as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train.py: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
