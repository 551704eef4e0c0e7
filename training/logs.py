"""What a run tells: TensorBoard's tags (CleanRL's names, env steps on the x-axis), the statistics line
it prints, its ``summary.json``, and the console it prints on."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams.summary_v2 import hparams_pb
from torch.utils.tensorboard import SummaryWriter

from training.evaluation import Evaluation
from training.settings import Config
from training.trainer import Trainer, Update

SIMULATORS = ("mujoco", "box2d")  # the distributions of Gymnasium's MuJoCo and Box2D environments


def describe_returns(returns: np.ndarray) -> str:
    """The seed notebook's statistics line."""
    return describe_statistics(_statistics(np.asarray(returns, dtype=np.float64)))


def describe_statistics(statistics: dict[str, float]) -> str:
    """The statistics line of returns' mean, std, min and max (as ``summary.json`` holds them)."""
    mean, std, low, high = (statistics[name] for name in ("mean", "std", "min", "max"))
    return f"Mean: {mean:.1f}, Std: {std:.2f}, Min: {low:g}, Max: {high:g}"


def open_writer(run_dir: str | Path, resumed_at: int | None = None) -> SummaryWriter:
    """The run's TensorBoard writer. Resumed (``resumed_at``: the checkpoint's env step), it drops what the
    interrupted run logged after its checkpoint, and its event file sorts after the run's earlier ones:
    TensorBoard reads a folder's event files in the order of their names, which begin with the second a file
    was opened and end with a count of the files its process opened (so ``.10`` sorts before ``.9``). A resume
    in the second of the run's last file could be read before it; it waits for the next second (at most 2 s,
    so that a clock set back does not stall the run)."""
    if resumed_at is not None:
        opened = [int(path.name.split(".")[3]) for path in Path(run_dir).glob("events.out.tfevents.*")]
        wait = max(opened, default=0) + 1 - time.time()
        if 0 < wait <= 2:
            time.sleep(wait)
    return SummaryWriter(str(run_dir), purge_step=None if resumed_at is None else resumed_at + 1)


def log_config(writer: SummaryWriter, config: Config) -> None:
    """Every setting as text, once at the start of a run."""
    writer.add_text("config", "\n".join(f"    {name} = {value}" for name, value in config.shown().items()))


def log_update(writer: SummaryWriter, trainer: Trainer, update: Update) -> None:
    """The update's episodes and losses, at the run's env-step count; parameter histograms every
    ``histogram_every`` updates."""
    state, returns, step = trainer.state, update.episode_returns, trainer.state.env_steps
    for suffix in ("", "_min", "_max", "_std"):
        writer.add_scalar(f"charts/episodic_return{suffix}", getattr(returns, suffix[1:] or "mean")(), step)
    writer.add_scalar("charts/episodic_length", update.episode_lengths.mean(), step)
    for name, value in update.stats.items():  # policy_loss, entropy, grad_norm, and the baseline's if any
        if name != "skipped_steps":
            writer.add_scalar(f"losses/{name}", value, step)
    writer.add_scalar("losses/skipped_updates", state.skipped_updates, step)
    writer.add_scalar("charts/learning_rate", update.learning_rate, step)
    writer.add_scalar("charts/entropy_coef", update.entropy_coef, step)
    writer.add_scalar("charts/SPS", step / state.train_seconds, step)
    log_histograms(writer, trainer)


def log_histograms(writer: SummaryWriter, trainer: Trainer, last: bool = False) -> None:
    """The policy's parameters as histograms, after the first update, every ``histogram_every`` updates,
    and (``last``) after the last one if it was not one of those, so that a short run has its before and
    after."""
    updates, step = trainer.state.updates, trainer.state.env_steps
    due = updates == 1 or updates % trainer.config.histogram_every == 0
    if due != last:
        for name, parameter in trainer.agent.policy.named_parameters():
            # TensorBoard cannot bin huge weights (a diverging run's): the run goes on without that histogram
            with contextlib.suppress(ValueError):
                writer.add_histogram(f"params/{name}", parameter, step)


def log_evaluation(writer: SummaryWriter, evaluation: Evaluation) -> None:
    """A check's greedy and sampled returns, at its env step."""
    for name, returns in (("", evaluation.greedy), ("sampled_", evaluation.sampled)):
        writer.add_scalar(f"eval/{name}return_mean", returns.mean(), evaluation.env_steps)
        writer.add_scalar(f"eval/{name}return_std", returns.std(), evaluation.env_steps)


HPARAMS_RUN = "hparams"  # the sub-run of a run's folder that holds its HPARAMS entry


def log_hparams(run_dir: Path, config: Config, metrics: dict[str, float], step: int) -> None:
    """The settings that define the experiment (as their own types: booleans as booleans) and its
    ``metrics`` (scalars at ``step``, the run's last), for TensorBoard's HPARAMS, in a sub-run of their own:
    TensorBoard takes every scalar of a session's run as a metric column. No experiment summary is written,
    so that TensorBoard works out which settings differ between the runs shown and puts those first."""
    hparams = {"exp_name": config.exp_name, **config.shown(housekeeping=False)}
    folder = run_dir / HPARAMS_RUN
    shutil.rmtree(folder, ignore_errors=True)  # a resumed run's finish replaces what an interrupted one wrote
    with SummaryWriter(folder) as writer:
        writer.file_writer.add_summary(hparams_pb(hparams, trial_id=run_dir.name))
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, step)


def log_gif(writer: SummaryWriter, tag: str, gif: bytes, height: int, width: int, step: int) -> None:
    """An animated GIF as an image summary (``add_video`` does nothing with moviepy 2)."""
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


def _statistics(returns: np.ndarray) -> dict[str, float]:
    return {name: float(getattr(returns, name)()) for name in ("mean", "std", "min", "max")}


def run_summary(
    trainer: Trainer, target: float | None, greedy: np.ndarray, sampled: np.ndarray, best: np.ndarray | None
) -> dict:
    """The contents of ``summary.json``: what the run was, how far it got, its final evaluation, its best check
    (with ``best``, the greedy returns of that check's agent on fresh episodes)."""
    config, state = trainer.config, trainer.state
    return {
        "env_id": config.env,  # for an environment made by a callable: its name
        "seed": config.seed,
        "config": asdict(config),
        "env_steps": state.env_steps,
        "updates": state.updates,
        "episodes": state.episodes,
        "train_seconds": round(state.train_seconds, 3),
        "workers": trainer.workers.size,  # torchrun's processes (num_envs and episodes_per_update are each one's)
        "target_return": target,
        "solved": None if target is None else state.solved_at is not None,  # no target: neither
        "solved_at_env_steps": state.solved_at,
        "skipped_updates": state.skipped_updates,
        "best_eval": {  # the best check's agent: best_model.pt
            "env_steps": state.best_at,
            "greedy_mean": state.best_return,
            "reevaluated": None if best is None else _statistics(best),
        },
        "final_eval": {"episodes": len(greedy), "greedy": _statistics(greedy), "sampled": _statistics(sampled)},
        "versions": versions(),
        "device": "cpu",
    }


def versions() -> dict[str, str]:
    """The versions a run's numbers depend on: Python's, the libraries', and the simulators' that are installed
    (a MuJoCo or Box2D release can change an environment's physics, and so every curve trained on it)."""
    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
    }
    for simulator in SIMULATORS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[simulator] = metadata.version(simulator)
    return found


class Console:
    """stdout that never ends a run: once its reader is gone (``| head``) or its device is full, what is printed
    goes nowhere. The run's files are its record, and a failed print is not a failure to write them."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError:
            self._lost()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError:
            self._lost()

    def _lost(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the interpreter's own last flush then goes nowhere too
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
