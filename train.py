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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from tqdm import tqdm

from agents import AgentConfig, CheckpointError, ReinforceAgent
from envs import (
    CARTPOLE_OBSERVATION,
    collect_episodes,
    describe_returns,
    display_available,
    encode_gif,
    evaluate,
    lean_policy,
    make_env,
    make_vector_env,
    play_episode,
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


# ----------------------------------------------------------------------------- modes
def _stats(returns: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(returns.mean()),
        "std": float(returns.std()),
        "min": float(returns.min()),
        "max": float(returns.max()),
    }


def _derived_seed(seed: int, purpose: int) -> int:
    return int(np.random.SeedSequence([seed, purpose]).generate_state(1)[0])


def _new_run_dir(config: Config) -> Path:
    root = Path(config.logdir)
    stamp = int(time.time())
    while (run_dir := root / f"{config.env.replace('/', '-')}__{config.seed}__{stamp}").exists():
        stamp += 1
    run_dir.mkdir(parents=True)
    return run_dir


def train(config: Config) -> dict[str, Any]:
    """Train until solved or out of budget; save, evaluate, record; return the summary."""
    torch.set_num_threads(config.threads)
    env = make_vector_env(config.env, config.num_envs, config.max_episode_steps, config.vectorization)
    eval_env = make_vector_env(config.env, config.eval_episodes, config.max_episode_steps, config.vectorization)
    target = config.target_return if config.target_return is not None else env.spec.reward_threshold
    agent = ReinforceAgent(env.single_observation_space, env.single_action_space, config.agent, seed=config.seed)
    eval_seed = _derived_seed(config.seed, 1)
    eval_generator = torch.Generator().manual_seed(eval_seed)
    quotas = split_episodes(config.episodes_per_update, config.num_envs)

    run_dir = _new_run_dir(config)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    writer = SummaryWriter(run_dir)
    writer.add_text("config", "\n".join(f"    {k} = {v}" for k, v in _flat_config(config).items()))

    def check(step: int) -> float:
        returns = evaluate(
            agent, eval_env, config.eval_episodes, True, eval_generator, eval_seed if first_eval else None
        )
        writer.add_scalar("eval/return_mean", returns.mean(), step)
        writer.add_scalar("eval/return_std", returns.std(), step)
        return float(returns.mean())

    env_steps = updates = episodes = 0
    train_seconds = 0.0
    solved_at: int | None = None
    first_eval, next_eval = True, config.eval_every_steps
    progress = tqdm(total=config.total_env_steps, unit="step", disable=None, dynamic_ncols=True)
    while env_steps < config.total_env_steps and (config.max_updates is None or updates < config.max_updates):
        started = time.perf_counter()
        rollout = collect_episodes(env, agent.act, quotas, seed=config.seed if updates == 0 else None)
        stats = agent.update(rollout.batch)
        train_seconds += time.perf_counter() - started
        steps = rollout.batch.num_steps
        env_steps += steps
        updates += 1
        episodes += len(rollout.episode_returns)
        returns = rollout.episode_returns
        for name, value in (
            ("", returns.mean()),
            ("_min", returns.min()),
            ("_max", returns.max()),
            ("_std", returns.std()),
        ):
            writer.add_scalar(f"charts/episodic_return{name}", value, env_steps)
        writer.add_scalar("charts/episodic_length", rollout.episode_lengths.mean(), env_steps)
        for name, value in stats.items():
            writer.add_scalar(f"losses/{name}", value, env_steps)
        writer.add_scalar("charts/learning_rate", agent.optimizer.param_groups[0]["lr"], env_steps)
        writer.add_scalar("charts/SPS", env_steps / train_seconds, env_steps)
        if updates % config.histogram_every == 0:
            for name, parameter in agent.policy.named_parameters():
                writer.add_histogram(f"params/{name}", parameter, env_steps)
        if updates % config.print_every == 0:
            progress.write(f"update {updates:4d}  steps {env_steps:7d}  {describe_returns(returns)}")
        progress.update(steps)
        progress.set_postfix(ret=f"{returns.mean():.1f}")
        if env_steps >= next_eval:
            next_eval += config.eval_every_steps * (1 + (env_steps - next_eval) // config.eval_every_steps)
            mean = check(env_steps)
            first_eval = False
            if target is not None and mean >= target and solved_at is None:
                solved_at = env_steps
                progress.write(f"solved at {env_steps} env steps: greedy mean {mean:.1f} >= {target:g}")
                if config.stop_when_solved:
                    break
    progress.close()
    agent.save(run_dir / "model.pt")

    greedy = evaluate(agent, eval_env, config.eval_episodes, True, eval_generator, eval_seed if first_eval else None)
    sampled = evaluate(agent, eval_env, config.eval_episodes, False, eval_generator)
    if solved_at is None and target is not None and greedy.mean() >= target:
        solved_at = env_steps
    writer.add_scalar("eval/return_mean", greedy.mean(), env_steps)
    writer.add_scalar("eval/return_std", greedy.std(), env_steps)
    log_hparams(writer, config, {"eval/final_return_mean": float(greedy.mean())})
    summary = {
        "env_id": config.env,
        "seed": config.seed,
        "config": asdict(config),
        "env_steps": env_steps,
        "updates": updates,
        "episodes": episodes,
        "train_seconds": round(train_seconds, 3),
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
        render_env = make_env(config.env, config.max_episode_steps, render_mode="rgb_array")
        episode = play_episode(agent, render_env, seed=eval_seed)
        render_env.close()
        fps = render_env.metadata.get("render_fps", 30) / 2
        gif, height, width = encode_gif(episode.frames[::2], fps)
        (run_dir / "episode.gif").write_bytes(gif)
        log_gif(writer, "videos/greedy_episode", gif, height, width, env_steps)
    writer.close()
    env.close()
    eval_env.close()

    print(
        f"{'solved' if solved_at is not None else 'not solved'} after {env_steps} env steps, {updates} updates, "
        f"{train_seconds:.2f} s of training"
    )
    print(f"final evaluation, {config.eval_episodes} episodes: greedy {describe_returns(greedy)}")
    print(f"                                      sampled {describe_returns(sampled)}")
    print(f"model:       {run_dir / 'model.pt'}")
    print(f"TensorBoard: tensorboard --logdir {config.logdir}   (this run: {run_dir})")
    return summary


def heuristic(config: Config) -> np.ndarray:
    """The notebook's hard-coded policy on CartPole, over ``eval_episodes`` episodes."""
    env = make_vector_env(config.env, config.eval_episodes, config.max_episode_steps, config.vectorization)
    observations, _ = env.reset(seed=config.seed)
    print("first observation:", ", ".join(f"{n} {v:+.4f}" for n, v in zip(CARTPOLE_OBSERVATION, observations[0])))
    quotas = split_episodes(config.eval_episodes, env.num_envs)
    returns = collect_episodes(env, lean_policy, quotas, seed=config.seed).episode_returns
    env.close()
    print(describe_returns(returns))
    return returns


def watch(config: Config, target: str) -> None:
    """Play a saved agent: on screen when there is a display, else into a GIF beside the model."""
    path = Path(target)
    model = path / "model.pt" if path.is_dir() else path
    saved = path / "config.json" if path.is_dir() else path.parent / "config.json"
    if saved.is_file():
        run = json.loads(saved.read_text())
        config = dataclasses.replace(config, env=run["env"], max_episode_steps=run["max_episode_steps"])
    agent = ReinforceAgent.load(model)
    render_mode = "human" if display_available() else "rgb_array"
    env = make_env(config.env, config.max_episode_steps, render_mode=render_mode)
    if env.observation_space != agent.observation_space or env.action_space != agent.action_space:
        raise CheckpointError(f"{model} was saved for other spaces than {config.env}'s: pass the right --env")
    limit = env.spec.max_episode_steps
    for index in range(config.watch_episodes):
        episode = play_episode(agent, env, seed=config.seed + index)
        print(f"{episode.total_reward:g}/{limit}" if limit else f"{episode.total_reward:g}")
        if render_mode == "rgb_array":
            gif = model.parent / f"watch_{index + 1}.gif"
            gif.write_bytes(encode_gif(episode.frames[::2], env.metadata.get("render_fps", 30) / 2)[0])
            print(f"  no display: wrote {gif}")
    env.close()


def main(argv: list[str] | None = None) -> int:
    try:
        config, args = parse_args(argv)
        if args.watch:
            watch(config, args.watch)
        elif args.heuristic:
            heuristic(config)
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
