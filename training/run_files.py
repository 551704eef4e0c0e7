"""A run's files: its folder and lock, its checkpoint (settings, agent, counters, evaluation schedule), and the
agent to load from a model file or a run. The checkpoint and the JSON files are written atomically, through
``agents.files``."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from agents import CheckpointError, ReinforceAgent
from agents.files import load_safely, remove_temporary_files, save_atomically, write_json
from envs import EnvConfig, check_env_id, untrusted_module
from training.evaluation import Evaluator
from training.settings import Config, saved_settings
from training.trainer import RunState, Trainer
from training.workers import Workers

try:
    import fcntl
except ImportError:  # not on Windows: run folders are not locked there
    fcntl = None

CHECKPOINT, MODEL, BEST_MODEL = "checkpoint.pt", "model.pt", "best_model.pt"
CONFIG, SUMMARY, GIF = "config.json", "summary.json", "episode.gif"
LOCK = ".lock"  # held by the process that writes the run (see ``lock_run``)
# 2: the flat settings inside the checkpoint; 3: the learning-rate schedule's base rates in the optimizers' state,
# the best check in the counters
RUN_FORMAT = "reinforce-run/3"
OLDER_RUN_FORMATS = ("reinforce-run/1", "reinforce-run/2")


class RunWriteError(OSError):
    """A file of the run could not be written (a full disk, lost permissions); what was written before is intact."""


def run_name(env: str, exp_name: str, seed: int) -> str:
    """``<env>__<exp_name>__<seed>``: a run folder's name before its time stamp (CleanRL's), the env id's
    namespace slash and module colon made safe in a folder name."""
    return f"{env.replace('/', '-').replace(':', '.')}__{exp_name}__{seed}"


def new_run_dir(config: Config) -> Path:
    """A new folder ``<logdir>/<env>__<exp_name>__<seed>__<unix time>`` (CleanRL's run names) holding the
    run's ``config.json``."""
    root = Path(config.logdir)
    stamp = int(time.time())
    try:
        root.mkdir(parents=True, exist_ok=True)
        name = run_name(config.env, config.exp_name, config.seed)
        while (run_dir := root / f"{name}__{stamp}").exists():
            stamp += 1
        run_dir.mkdir()
    except OSError as error:
        raise ValueError(f"cannot create a run folder under --logdir {root}: {error.strerror or error}") from None
    try:
        write_json(run_dir / CONFIG, asdict(config))
    except OSError as error:  # a full disk: leave no empty run folder behind
        shutil.rmtree(run_dir, ignore_errors=True)
        raise ValueError(f"cannot write in a run folder under --logdir {root}: {error.strerror or error}") from None
    return run_dir


def lock_folder(folder: Path, holder: str) -> IO[str] | None:
    """Hold ``folder`` for this process until it ends (the lock goes with the process, however it ends): a second
    ``holder`` (a program's name) on the same folder is refused in one line instead of writing it too."""
    if fcntl is None:
        return None
    try:
        handle = open(folder / LOCK, "a")  # noqa: SIM115 (kept open: it holds the lock for the process)
    except OSError as error:
        raise ValueError(f"cannot write in the folder {folder}: {error.strerror or error}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ValueError(f"{folder} is in use by another {holder}: wait for it to end") from None
    return handle


def lock_run(run_dir: Path) -> IO[str] | None:
    """Hold the run folder (``lock_folder``) and remove what a killed writer of any of its files (the checkpoint,
    ``best_model.pt`` at a check, ...) left behind: holding the folder, no other process writes them."""
    handle = lock_folder(run_dir, "run")
    remove_temporary_files(run_dir)
    return handle


def save_run(run_dir: Path, trainer: Trainer, evaluator: Evaluator) -> None:
    """Write the run's checkpoint atomically."""
    state = {
        "format": RUN_FORMAT,
        "config": asdict(trainer.config),
        "agent": trainer.agent.state_dict(),
        "run": asdict(trainer.state),
        "workers": trainer.workers.size,
        "evaluator": evaluator.state_dict(),
    }
    save_atomically(state, run_dir / CHECKPOINT)


def read_run(run_dir: Path) -> dict[str, Any]:
    """The checkpoint of the run in ``run_dir``, to resume the run there; its ``config`` are the run's settings.
    A one-line error if the folder holds no usable checkpoint, or if no file can be written in it (the resumed
    run writes its logs and checkpoints there)."""
    if not (run_dir / CHECKPOINT).is_file():
        raise CheckpointError(f"{run_dir} is not a run folder with a {CHECKPOINT}: give the folder of a run to resume")
    checkpoint = load_safely(run_dir / CHECKPOINT)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != RUN_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else None
        why = "made by an older version: start a new run" if found in OLDER_RUN_FORMATS else "not a run's checkpoint"
        raise CheckpointError(f"{run_dir / CHECKPOINT} is not a {RUN_FORMAT} checkpoint ({why})")
    if not isinstance(checkpoint.get("config"), dict):
        raise CheckpointError(f"{run_dir / CHECKPOINT} holds no settings: start a new run")
    try:
        with tempfile.TemporaryFile(dir=run_dir):  # a file without a name where it can be: nothing is left behind
            pass
    except OSError as error:
        raise ValueError(
            f"cannot write in {run_dir} ({error.strerror or error}): --resume continues a run in its own folder, "
            "make it writable"
        ) from None
    return checkpoint


def saved_config(run_dir: str | Path) -> Config:
    """The settings of a run, as its checkpoint holds them (``fit(replace(saved_config(run_dir),
    total_env_steps=...), resume=run_dir)`` continues it with a larger budget).

    :param run_dir: the run's folder; one without a usable checkpoint, or in which no file can be written,
        raises a one-line error (``CheckpointError``, ``ValueError``).
    """
    return saved_settings(read_run(Path(run_dir))["config"])


def restore_run(run_dir: Path, checkpoint: dict[str, Any], trainer: Trainer, evaluator: Evaluator) -> None:
    """Put the saved agent, counters and evaluation schedule of the run in ``run_dir`` into a freshly
    built ``trainer`` and ``evaluator``; a one-line error if they do not fit."""
    try:
        agent = ReinforceAgent.from_state_dict(checkpoint["agent"])
        state = RunState(**checkpoint["run"])
        workers = int(checkpoint["workers"])
        evaluator.load_state_dict(checkpoint["evaluator"])
    except (CheckpointError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{run_dir / CHECKPOINT} does not fit a run: {error}") from None
    env = trainer.env
    agent.check_fits(env.single_observation_space, env.single_action_space, trainer.env_config.name)
    if workers != trainer.workers.size:  # each worker plays its own episodes: the batch would change
        raise ValueError(
            f"the run had {workers} worker(s), this launch has {trainer.workers.size}: resume it "
            f"with {Workers(size=workers).resume_command(run_dir)}"
        )
    trainer.restore(agent, state)


def saved_env(run_dir: Path, given_env: str | None = None) -> EnvConfig | None:
    """The environment (id, time limit, action bins) the run in ``run_dir`` was trained with, from its
    ``config.json``; None if there is no such file (a model file outside a run folder). A one-line
    ``ValueError`` naming the file if it does not hold them, or, unless the user gives the environment
    (``given_env``), if its id is not one Gymnasium knows (an environment made by a callable is saved under the
    callable's name) or is ``module:EnvId``, whose module the user has not named (``untrusted_module``)."""
    path = run_dir / CONFIG
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8
        raise ValueError(f"{path} is not readable JSON ({error}): repair it or remove it") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("env"), str):
        raise ValueError(f"{path} names no environment (a JSON object with an env id): repair it or remove it")
    limit, bins = saved.get("max_episode_steps"), saved.get("discretize_actions")  # absent before bins existed
    for name, value, least in (("max_episode_steps", limit, 1), ("discretize_actions", bins, 2)):
        if value is not None and (type(value) is not int or value < least):
            raise ValueError(f"{path}: {name} must be a whole number >= {least} or null, got {value!r}")
    if given_env is None:
        untrusted_module(saved["env"], given_env, str(path))
        try:
            check_env_id(saved["env"])
        except ValueError as error:
            raise ValueError(f"{path}: {error} (or give --env)") from None
    return EnvConfig(saved["env"], limit, action_bins=bins)


def load_agent(target: Path) -> tuple[ReinforceAgent, Path]:
    """The agent in a model file, a run checkpoint, or a run folder (its model, else its checkpoint),
    and the file it came from."""
    if target.is_dir():
        target = target / MODEL if (target / MODEL).is_file() else target / CHECKPOINT
    state = load_safely(target, "a model.pt or a run folder")
    if isinstance(state, dict) and state.get("format") in (RUN_FORMAT, *OLDER_RUN_FORMATS):  # a run's: its agent
        state = state.get("agent")
    try:
        return ReinforceAgent.from_state_dict(state), target
    except CheckpointError as error:
        raise CheckpointError(f"{target}: {error}") from None


def best_agent(run_dir: Path | None, best_state: dict[str, Any] | None) -> ReinforceAgent | None:
    """The best check's agent: ``best_model.pt`` in the run's folder, else the state kept in memory; None
    before any check (or where a resumed run's file was removed)."""
    if run_dir is not None and (run_dir / BEST_MODEL).is_file():
        try:
            return ReinforceAgent.load(run_dir / BEST_MODEL)
        except ValueError as problem:
            raise ValueError(f"{problem}: remove it, and the run goes on without it until a better check") from None
    return None if best_state is None else ReinforceAgent.from_state_dict(best_state)
