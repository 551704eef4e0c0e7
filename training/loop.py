"""The training loop of a run (``training.fit`` runs it): set-up, then collect and update (``Trainer.step``),
log, evaluate, keep the best agent, checkpoint, stop; then the end: the model, the final evaluation,
``summary.json`` and the GIF. The one home of the loop."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agents.files import write_atomically, write_json
from envs import EnvironmentFailed, record_gif
from envs.contract import first_line
from envs.factory import EnvFactory
from training.command_line import running_program
from training.evaluation import Evaluation, Evaluator, no_target_reason, solves, target_return
from training.logs import (
    describe_returns,
    log_config,
    log_evaluation,
    log_gif,
    log_histograms,
    log_hparams,
    log_update,
    open_writer,
    run_summary,
)
from training.run_files import (
    BEST_MODEL,
    CHECKPOINT,
    GIF,
    MODEL,
    SUMMARY,
    RunWriteError,
    best_agent,
    lock_run,
    new_run_dir,
    read_run,
    restore_run,
    save_run,
)
from training.seeding import VIDEO, derive_seed
from training.settings import Config, run_settings
from training.signals import Interrupted, InterruptingSignals, StopSignals
from training.trainer import RunState, Trainer, Update
from training.workers import WorkerLost, Workers

NONFINITE = "nonfinite"  # why a run stopped: too many non-finite updates in a row
ENDED = "ended"  # the target or a callback ended training: the run finishes as one out of budget


class Callback:
    """Hooks into ``fit``'s loop, called on the main process (under torchrun, rank 0). Either may return True
    to stop the run there; it then ends as a run out of budget does (model, final evaluation, summary)."""

    def on_update(self, state: RunState, update: Update) -> bool | None:
        """After every update: the run's counters, and what the update learnt from and reported."""

    def on_check(self, state: RunState, evaluation: Evaluation) -> bool | None:
        """After every check (the greedy and the sampled evaluations, ``evaluation.greedy`` and ``.sampled``)."""


class Run:
    """One run's set-up, loop and end, with ``fit``'s parameters: bad input raises one ``ValueError`` on every
    worker before anything is written."""

    def __init__(
        self,
        config: Config | None,
        env: str | EnvFactory | None,
        resume: str | os.PathLike | None,
        workers: Workers,
        write_run: bool,
        verbose: bool,
    ) -> None:
        self.workers, self.verbose = workers, verbose
        self.main, self.run_dir, self.lock, self.writer = workers.main, None, None, None
        self.trainer: Trainer | None = None
        self.evaluator: Evaluator | None = None
        self.best_state: dict[str, Any] | None = None
        self.trained = False  # whether the loop reached its end
        error = None
        try:  # every check that can fail on bad input, on every worker, before anything is written
            checkpoint = read_run(Path(resume)) if resume is not None else None
            config, env_config = run_settings(config, env, checkpoint and checkpoint["config"])
            if workers.size > 1:
                config.check_distributed()
            self.config, self.env = config, env_config
            self.trainer, self.evaluator = Trainer(config, env_config, workers), Evaluator(config, env_config)
            self.target = target_return(config, env_config)
            if checkpoint is not None:
                self.run_dir = Path(resume)
                restore_run(self.run_dir, checkpoint, self.trainer, self.evaluator)
                best_agent(self.run_dir, None)  # read at the end: refused now if bad, before any write
                self.lock = lock_run(self.run_dir) if self.main else None  # one process per run folder
        except (ValueError, OSError) as problem:
            error = str(problem)
        try:
            workers.raise_first(error)
            self.resumed, self.write = resume is not None, write_run or resume is not None
            workers.raise_first(self._open_folder() if self.main and self.write else None)
        except ValueError:
            self.close()
            raise

    def _open_folder(self) -> str | None:
        """Open the run's folder, lock and TensorBoard writer, the first things the run writes; the error."""
        try:
            if not self.resumed:
                self.run_dir = new_run_dir(self.config)
                self.lock = lock_run(self.run_dir)
            self.writer = open_writer(self.run_dir, self.trainer.state.env_steps if self.resumed else None)
            if not self.resumed:
                log_config(self.writer, self.config)
        except ValueError as problem:
            return str(problem)
        except OSError as problem:  # a full disk: a new run leaves no folder behind
            if not self.resumed:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            return f"cannot write in {self.run_dir}: {problem.strerror or problem}"
        return None

    def train(self, callback: Callback) -> tuple[str | None, bool, dict[str, Any] | None]:
        """The loop, then the end: why the run stopped (None: it trained to its end; ``"nonfinite"``, or a
        signal's name), whether training reached its end, and the summary (None for a run stopped before its
        end, and on the workers that are not the main one). A file that cannot be written raises
        ``RunWriteError``."""
        try:
            stopped = self._loop(callback)
            self.trained = stopped is None
            if stopped is not None:
                return stopped, False, None
            summary = None
            if self.main:
                with InterruptingSignals():
                    summary = self._finish()
            return None, True, summary
        except (Interrupted, KeyboardInterrupt) as interrupted:  # after training: its checkpoint is written
            return str(interrupted) if isinstance(interrupted, Interrupted) else "SIGINT", True, None
        except OSError as problem:  # a full disk or lost permissions: what was written before is intact
            reason = problem.strerror or problem
            raise RunWriteError(f"cannot write in {self.run_dir}: {reason} ({self._kept()})") from None
        except EnvironmentFailed as failure:  # the environment's code: the run's files stay as they were
            raise EnvironmentFailed(f"{self.config.env}: {failure} ({self._kept()})") from failure.__cause__
        except RuntimeError as error:  # under torchrun, gloo's error when another worker died mid-collective
            if self.workers.size == 1:
                raise
            raise WorkerLost(
                f"a collective with the other workers failed, one probably died (RuntimeError: {first_line(error)}); "
                f"{self._kept()}"
            ) from None

    def _kept(self) -> str:
        """What a run that fails keeps: its model (after training), else its last checkpoint, or nothing."""
        if self.run_dir is None:
            return "nothing was written"
        if self.trained and (self.run_dir / MODEL).is_file():
            return f"its model is saved: {self.run_dir / MODEL}"
        if (self.run_dir / CHECKPOINT).is_file():
            return f"its last checkpoint is intact: {self.workers.resume_command(self.run_dir)}"
        return "no checkpoint"

    def _loop(self, callback: Callback) -> str | None:
        """Train until the budget, the target or the callback ends it (None), or a stop: ``"nonfinite"``, a
        signal's name."""
        config, trainer, evaluator, main = self.config, self.trainer, self.evaluator, self.main
        state = trainer.state
        if main and self.verbose and (reason := no_target_reason(config, self.env)):
            print(reason)
        shown = main and self.verbose
        bar = tqdm(
            total=config.total_env_steps,
            initial=state.env_steps,
            unit="step",
            disable=None if shown else True,
            dynamic_ncols=True,
        )
        stop: str | None = None
        # by the target or the callback: the run then ends as one out of budget; a resumed run that was stopped
        # when solved stays stopped (it ends again, its agent as it was)
        ended = state.solved_at is not None and config.stop_when_solved
        with StopSignals(among_workers=self.workers.size > 1) as signals:
            if main and not ended and state.updates > 0 and evaluator.due(state.env_steps):
                # a stop signal skipped this check: the resumed run makes it where an uninterrupted run made it
                ended = self._check(bar, callback)
                if self.write and state.best_at == state.env_steps:
                    save_run(self.run_dir, trainer, evaluator)
            stop, ended = self._decide(stop, ended, signals)
            while not ended and stop is None and trainer.within_budget():
                if self.writer is not None:  # its thread checksums the events in Python: not during training
                    self.writer.flush()
                update = trainer.step()  # every worker plays its episodes; the update combines them
                if main:  # a stop signal skips a due check: it stops within the update, as promised
                    ended = self._after_update(update, bar, callback, signals)
                    if not ended and state.skipped_in_a_row >= config.max_nonfinite_updates:
                        stop = NONFINITE
                    # best_model.pt is checkpointed with the counters that name it
                    elif (
                        not ended
                        and self.write
                        and (state.updates % config.checkpoint_every == 0 or state.best_at == state.env_steps)
                    ):
                        save_run(self.run_dir, trainer, evaluator)
                stop, ended = self._decide(stop, ended, signals)
            if main and self.write:
                save_run(self.run_dir, trainer, evaluator)
        bar.total = bar.n  # stopped before the budget: end the bar where training ended, with no ETA
        bar.close()
        return stop

    def _decide(self, stop: str | None, ended: bool, signals: StopSignals) -> tuple[str | None, bool]:
        """Whether the run stops (and why) or ends, the same on every worker: the first worker's decision."""
        if stop is None and not ended and signals.received is not None:  # a signal to any worker stops all
            stop = signal.Signals(signals.received).name
        decision = self.workers.first(stop or (ENDED if ended else None))
        return (None, True) if decision == ENDED else (decision, False)

    def _after_update(self, update: Update, bar: tqdm, callback: Callback, signals: StopSignals) -> bool:
        """Log an update, check when due (unless ``signals`` received one); whether the target or the callback
        ends the run here."""
        state, config = self.trainer.state, self.config
        if self.writer is not None:
            log_update(self.writer, self.trainer, update)
        bar.update(state.env_steps - bar.n)
        bar.set_postfix(ret=f"{update.episode_returns.mean():.1f}")
        if update.skipped:
            self._say(bar, f"warning: update {state.updates} skipped: its loss, gradient or step is not finite")
        if state.updates % config.print_every == 0:
            line = describe_returns(update.episode_returns)
            self._say(bar, f"update {state.updates:4d}  steps {state.env_steps:7d}  {line}")
        ended = bool(callback.on_update(state, update))
        if signals.received is None and self.evaluator.due(state.env_steps):
            ended = self._check(bar, callback) or ended
        return ended

    def _check(self, bar: tqdm, callback: Callback) -> bool:
        """Evaluate the agent as it is now and record it; whether the target or the callback ends the run here."""
        state = self.trainer.state
        evaluation, _ = self.evaluator.check(self.trainer.agent, state.env_steps)
        ended = False
        if self._record(evaluation) and self.config.stop_when_solved:
            ended = True
        elif state.solved_at == state.env_steps:  # else the end says it, once
            self._say(bar, f"solved at {state.env_steps} env steps: greedy mean {evaluation.greedy.mean():.1f}")
        return bool(callback.on_check(state, evaluation)) or ended

    def _say(self, bar: tqdm, line: str) -> None:
        if self.verbose:
            bar.write(line)

    def _record(self, evaluation: Evaluation) -> bool:
        """Log a check and keep the agent if it is the best so far; whether its greedy evaluation solves the
        environment for the first time."""
        state, agent = self.trainer.state, self.trainer.agent
        if self.writer is not None:
            log_evaluation(self.writer, evaluation)
        greedy = float(evaluation.greedy.mean())
        if state.best_return is None or greedy > state.best_return:
            state.best_return, state.best_at = greedy, evaluation.env_steps
            if self.write:
                agent.save(self.run_dir / BEST_MODEL)
            else:
                self.best_state = copy.deepcopy(agent.state_dict())  # its tensors would follow training
        if state.solved_at is None and solves(evaluation.greedy, self.target):
            state.solved_at = state.env_steps
            return True
        return False

    def _finish(self) -> dict[str, Any]:
        """Save the model, evaluate it greedily and by sampling, write the summary and the GIF; the summary."""
        config, trainer, run_dir = self.config, self.trainer, self.run_dir
        state, agent = trainer.state, trainer.agent
        if self.write:
            agent.save(run_dir / MODEL)
        evaluation, new = self.evaluator.check(agent, state.env_steps)  # a check made at this step is the final one
        if new:
            self._record(evaluation)
        greedy, sampled = evaluation.greedy, evaluation.sampled
        best_so_far = best_agent(self.run_dir if self.write else None, self.best_state)
        best = None if best_so_far is None else self.evaluator.reevaluate(best_so_far)
        summary = run_summary(trainer, self.target, greedy, sampled, best)
        if not self.write:
            return summary
        metrics = {
            "eval/final_return_mean": float(greedy.mean()),
            "eval/final_sampled_return_mean": float(sampled.mean()),
        }
        if state.solved_at is not None:  # an unsolved run leaves the cell empty
            metrics["eval/solved_at_env_steps"] = state.solved_at
        log_hparams(run_dir, config, metrics, state.env_steps)
        log_histograms(self.writer, trainer, last=True)
        write_json(run_dir / SUMMARY, summary)
        if config.gif:
            self._record_gif()
        return summary

    def _record_gif(self) -> None:
        """The GIF of one greedy episode; one that cannot be recorded is only a warning."""
        try:
            gif, height, width = record_gif(self.trainer.agent, self.env, derive_seed(self.config.seed, VIDEO))
            write_atomically(self.run_dir / GIF, lambda file: file.write(gif))
            log_gif(self.writer, "videos/greedy_episode", gif, height, width, self.trainer.state.env_steps)
        except Exception as error:  # rendering is the environment's code (OpenGL, render modes): only the GIF is lost
            if not self.verbose:
                return
            print(  # the error's whole first line: a cut one can lose the part that says what went wrong
                f"{running_program()}: warning: no GIF ({type(error).__name__}: {first_line(error, None)}); the run's "
                "results are saved (--no-gif skips recording)",
                file=sys.stderr,
            )

    def close(self) -> None:
        """Close the environments and the writer; the lock, held to here, goes last."""
        for part in (self.trainer, self.evaluator):
            if part is not None:
                part.close()
        if self.writer is not None:
            self.writer.close()
        if self.lock is not None:
            self.lock.close()
