"""``fit``: a whole training run from Python, as ``python train.py`` makes it: the trained agent, its summary
and its folder (TensorBoard, checkpoints, ``model.pt``, ``best_model.pt``, ``summary.json``).

    >>> from training import Config, fit
    >>> result = fit(Config(env="CartPole-v1", seed=3))
    >>> result.summary["solved_at_env_steps"], result.run_dir
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import ReinforceAgent
from envs.factory import EnvFactory
from training.loop import Callback, Run
from training.run_files import RunWriteError, best_agent
from training.settings import Config
from training.trainer import RunState
from training.workers import Workers


@dataclass
class FitResult:
    """What ``fit`` returns.

    :param agent: the agent as training left it (``best_agent()`` gives the best check's).
    :param state: the run's counters (env steps, updates, when it was solved, its best check).
    :param summary: what ``summary.json`` holds; None for a run stopped before its end.
    :param run_dir: the run's folder (None when ``fit`` wrote none).
    :param stopped: None for a run that trained to its end (budget, target or callback); ``"nonfinite"`` after
        too many non-finite updates in a row; ``"SIGINT"``, ``"SIGTERM"`` or ``"SIGHUP"`` when a signal stopped it (its
        checkpoint is in ``run_dir``).
    :param trained: whether training reached its end (False when it was stopped during training).
    """

    agent: ReinforceAgent
    state: RunState
    summary: dict[str, Any] | None
    run_dir: Path | None
    stopped: str | None = None
    trained: bool = True
    best_state: dict[str, Any] | None = None  # the best check's agent, kept in memory when no folder is written

    def best_agent(self) -> ReinforceAgent | None:
        """The agent of the best greedy check (``best_model.pt``), or None before any check."""
        return best_agent(self.run_dir, self.best_state)


def fit(
    config: Config | None = None,
    env: str | EnvFactory | None = None,
    *,
    resume: str | os.PathLike | None = None,
    callback: Callback | None = None,
    write_run: bool = True,
    verbose: bool = True,
) -> FitResult:
    """Train an agent: a whole run, with its evaluations, checkpoints, TensorBoard logs, best model and early
    stop. Under ``torchrun`` every process calls it and the run spreads over them.

    :param config: every setting of the run (default: ``Config()``: CartPole-v1 until solved).
    :param env: the environment, when it is not ``config.env``: a Gymnasium id, ``module:EnvId``, or a callable
        that makes one environment (a class of one's own, unregistered; it needs a time limit of its own or
        ``config.max_episode_steps``, and ``config.target_return`` for a target).
    :param resume: a run folder to continue, with its saved settings; a ``config`` given beside it may differ from
        them only in the budget, the evaluation and the housekeeping (``saved_config`` reads them), and a
        callable environment is passed again as ``env``.
    :param callback: hooks called after every update and every check, able to stop the run.
    :param write_run: write the run's folder under ``config.logdir``; without it nothing is written (the best
        agent is kept in memory) and nothing can be resumed (a resumed run always writes into its folder).
    :param verbose: print the progress bar and the statistics lines.
    :raises ValueError: bad settings, environments or run folders (one line; nothing written).
    :raises training.RunWriteError: a file of the run could not be written (the last checkpoint stays intact).
    :raises envs.EnvironmentFailed: the environment's own code raised (one line naming it and what was kept).
    :raises training.WorkerLost: under torchrun, a collective with the other workers failed (one of them died).
        Once a worker's run has failed this way, or any other, the process ignores SIGTERM: torchrun sends it to
        the surviving workers, and it would end them before they could say why.
    """
    if resume is not None and not write_run:
        raise ValueError("a resumed run writes into its own folder: leave write_run on")
    workers = Workers.from_environment()  # under torchrun: this worker's rank, its process group joined
    try:
        run = Run(config, env, resume, workers, write_run, verbose)
    except ValueError:  # every worker met it, so every one reaches the barrier
        workers.close()
        raise
    try:
        stopped, trained, summary = run.train(callback or Callback())
    except BaseException as error:  # the environments and the lock are released whatever ends the run
        run.close()
        if isinstance(error, RunWriteError) and run.trained:  # failed while finishing, on the main worker: the
            workers.close()  # others wait at the barrier
        raise
    run.close()
    workers.close()  # not after an exception: the other workers may never reach the barrier
    trainer = run.trainer
    return FitResult(trainer.agent, trainer.state, summary, run.run_dir, stopped, trained, run.best_state)
