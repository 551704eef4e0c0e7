"""Train a REINFORCE agent on a Gymnasium environment, with TensorBoard logs.

python train.py                          # CartPole-v1 until solved
python train.py --env Acrobot-v1 --seed 3
python train.py --preset seed            # the seed notebook's settings
python train.py --heuristic              # the notebook's hard-coded CartPole policy
python train.py --watch runs/<run>       # play a trained agent
python train.py --resume runs/<run>      # continue a stopped run in its folder
python train.py --preset textbook        # plain REINFORCE (the robustness defaults off)
python train.py --env Hopper-v5 --preset tuned   # one seed of the suite's row (training/presets.py)
PYTHONPATH=. python train.py --env my_envs:Corridor-v0   # an environment of your own (module:EnvId)
python train.py --env InvertedPendulum-v5   # continuous actions
python train.py --help                   # every setting, with its default
torchrun --standalone --nproc_per_node=2 train.py   # one run over 2 worker processes

Exit status: 0 trained (solved or out of budget; a GIF that cannot be recorded is only a warning),
1 stopped after too many non-finite updates in a row, 2 bad input (one line on stderr, nothing written),
3 a file of the run could not be written (a full disk, permissions: one line names it; what was written
before stays intact), 128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM): during training with a
checkpoint to resume from, after it (evaluating, recording, watching) at once.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from agents.checkpoint import write_atomically
from envs import play, record_gif, run_heuristic
from training import Config, Evaluator, StopSignals, Trainer, Workers, make_config, parse_args, solves, target_return
from training.checkpoints import (
    CHECKPOINT,
    GIF,
    MODEL,
    SUMMARY,
    load_agent,
    lock_run,
    new_run_dir,
    read_run,
    restore_run,
    save_run,
    saved_env,
    write_json,
)
from training.evaluation import Evaluation, no_target_reason
from training.logs import (
    describe_returns,
    log_config,
    log_evaluation,
    log_gif,
    log_histograms,
    log_hparams,
    log_update,
    run_summary,
)
from training.seeding import VIDEO, derive_seed
from training.trainer import Interrupted, InterruptingSignals

EXIT_NONFINITE, EXIT_WRITE_FAILED = 1, 3


def main(argv: list[str] | None = None) -> int:
    workers = Workers.from_environment()  # under torchrun: this worker's rank, its process group joined
    status = train(argv, workers)
    workers.close()  # not after an exception: the other workers may never reach the barrier
    return status


def train(argv: list[str] | None, workers: Workers) -> int:
    """One run, from the command line to its results; returns the exit status."""
    # ---- set-up: every check that can fail on bad input, on every worker, before anything is written
    error = run_dir = lock = None
    try:
        flags, mode = parse_args(argv, __doc__)
        if (mode.watch or mode.heuristic) and workers.size > 1:
            raise ValueError("--watch and --heuristic run in one process: start them with python train.py")
        if mode.watch or mode.heuristic:
            with InterruptingSignals():
                if mode.watch:
                    watch(make_config(flags, mode.preset), mode.watch, given=set(flags))
                else:
                    config = make_config(flags, mode.preset)
                    returns = run_heuristic(config.env, config.eval_episodes, config.max_episode_steps, config.seed)
                    print(f"{len(returns)} episodes: {describe_returns(returns)}")
            return 0
        checkpoint = read_run(Path(mode.resume)) if mode.resume else None
        config = make_config(flags, mode.preset, checkpoint["config"] if checkpoint else None)
        if workers.size > 1:
            config.check_distributed()
        trainer, evaluator = Trainer(config, workers), Evaluator(config)
        target = target_return(config)
        if checkpoint:
            run_dir = Path(mode.resume)
            restore_run(run_dir, checkpoint, trainer, evaluator)
            lock = lock_run(run_dir) if workers.main else None  # one process per run folder, before it writes
    except (ValueError, OSError) as problem:
        error = str(problem)
    except Interrupted as interrupted:
        print(f"train.py: {interrupted}: stopped", file=sys.stderr)
        return 128 + interrupted.signum
    if not agreed(error, workers):
        return 2
    state, agent, main = trainer.state, trainer.agent, workers.main
    resumed, writer = checkpoint is not None, None
    try:  # only now, once every worker is ready, does the run write anything
        if main and not resumed:
            run_dir = new_run_dir(config)
            lock = lock_run(run_dir)
        if main:  # on resume, drop whatever the interrupted run logged after its checkpoint
            writer = SummaryWriter(run_dir, purge_step=state.env_steps + 1 if resumed else None)
        if main and not resumed:
            log_config(writer, config)
    except ValueError as problem:
        error = str(problem)
    except OSError as problem:  # a full disk: a new run leaves no folder behind
        error = f"cannot write in {run_dir}: {problem.strerror or problem}"
        if not resumed:
            shutil.rmtree(run_dir, ignore_errors=True)
    if not agreed(error, workers):
        return 2

    # ---- the training loop: collect, update, log, evaluate, checkpoint, stop
    if main and (reason := no_target_reason(config)):
        print(reason)
    bar = tqdm(
        total=config.total_env_steps,
        initial=state.env_steps,
        unit="step",
        disable=None if main else True,
        dynamic_ncols=True,
    )
    stop: int | None = None  # the exit status, once training must stop before its budget
    try:
        with StopSignals() as signals:
            while stop is None and trainer.within_budget():
                update = trainer.step()  # every worker plays its episodes; the update combines them
                if main:
                    log_update(writer, trainer, update)
                    bar.update(state.env_steps - bar.n)
                    bar.set_postfix(ret=f"{update.episode_returns.mean():.1f}")
                    if update.skipped:
                        bar.write(f"warning: update {state.updates} skipped: its loss, gradient or step is not finite")
                    if state.updates % config.print_every == 0:
                        line = describe_returns(update.episode_returns)
                        bar.write(f"update {state.updates:4d}  steps {state.env_steps:7d}  {line}")
                    if evaluator.due(state.env_steps):
                        evaluation, _ = evaluator.check(agent, state.env_steps)
                        if record(writer, trainer, evaluation, target):
                            stop = 0 if config.stop_when_solved else None
                            if stop is None:  # else the end says it, once
                                mean = evaluation.greedy.mean()
                                bar.write(f"solved at {state.env_steps} env steps: greedy mean {mean:.1f}")
                    if stop is None and state.skipped_in_a_row >= config.max_nonfinite_updates:
                        stop = EXIT_NONFINITE
                    elif stop is None and state.updates % config.checkpoint_every == 0:
                        save_run(run_dir, trainer, evaluator)
                if stop is None and signals.received is not None:  # a signal to any worker stops them all
                    stop = 128 + signals.received
                stop = workers.first(stop)
            if main:
                save_run(run_dir, trainer, evaluator)
        bar.total = bar.n  # stopped before the budget: end the bar where training ended, with no ETA
        bar.close()

        # ---- the end: trained (save, evaluate, summarise), or stopped early (say how to go on)
        if stop in (None, 0):
            if main:
                with InterruptingSignals():
                    finish(writer, trainer, evaluator, target, run_dir)
            return 0
        if main:
            writer.close()
            stopped(stop, trainer, run_dir)
        return stop
    except (Interrupted, KeyboardInterrupt) as interrupted:  # after training: its checkpoint is written
        if main:
            name = str(interrupted) if isinstance(interrupted, Interrupted) else "SIGINT"
            print(f"train.py: {name} after training; its checkpoint is in {run_dir}", file=sys.stderr)
        return 128 + getattr(interrupted, "signum", signal.SIGINT)
    except OSError as problem:  # a full disk or lost permissions: what was written before is intact
        if main:
            kept = "no checkpoint"
            if (run_dir / CHECKPOINT).is_file():
                kept = f"its last checkpoint is intact: {resume_command(trainer, run_dir)}"
            reason = problem.strerror or problem
            print(f"train.py: error: cannot write in {run_dir}: {reason} ({kept})", file=sys.stderr)
        return EXIT_WRITE_FAILED
    finally:
        if lock is not None:  # held to here: the run folder is this process's until its results are written
            lock.close()


def agreed(error: str | None, workers: Workers) -> bool:
    """Whether no worker met an error (a worker alone must not go on); the main one prints the first."""
    error = workers.first(error)
    if error is not None and workers.main:
        print(f"train.py: error: {error}", file=sys.stderr)
    return error is None


def record(writer: SummaryWriter, trainer: Trainer, evaluation: Evaluation, target: float | None) -> bool:
    """Log a check; whether its greedy evaluation solves the environment for the first time."""
    state = trainer.state
    log_evaluation(writer, evaluation)
    if state.solved_at is None and solves(evaluation.greedy, target):
        state.solved_at = state.env_steps
        return True
    return False


def resume_command(trainer: Trainer, run_dir: Path) -> str:
    """The command that continues this run (under torchrun with as many workers)."""
    return f"{trainer.workers.launcher} train.py --resume {shlex.quote(str(run_dir))}"


def stopped(status: int, trainer: Trainer, run_dir: Path) -> None:
    """Say why training stopped early and what its checkpoint is for."""
    checkpoint, state = run_dir / CHECKPOINT, trainer.state
    if status == EXIT_NONFINITE:
        print(
            f"train.py: stopped: {state.skipped_in_a_row} updates in a row had a non-finite loss, gradient or step "
            f"(skipped, weights untouched); the last good state is {checkpoint}",
            file=sys.stderr,
        )
    else:
        print(
            f"train.py: {signal.Signals(status - 128).name}: stopped after update {state.updates}, saved "
            f"{checkpoint}; resume with: {resume_command(trainer, run_dir)}",
            file=sys.stderr,
        )


def finish(writer: SummaryWriter, trainer: Trainer, evaluator: Evaluator, target: float | None, run_dir: Path) -> None:
    """Save the model, evaluate it greedily and by sampling, write the summary and the GIF."""
    config, state, agent = trainer.config, trainer.state, trainer.agent
    agent.save(run_dir / MODEL)
    evaluation, new = evaluator.check(agent, state.env_steps)  # a check made at this step is the final one
    if new:
        record(writer, trainer, evaluation, target)
    greedy, sampled = evaluation.greedy, evaluation.sampled
    metrics = {"eval/final_return_mean": float(greedy.mean()), "eval/final_sampled_return_mean": float(sampled.mean())}
    if state.solved_at is not None:  # an unsolved run leaves the cell empty
        metrics["eval/solved_at_env_steps"] = state.solved_at
    log_hparams(run_dir, config, metrics, state.env_steps)
    log_histograms(writer, trainer, last=True)
    write_json(run_dir / SUMMARY, run_summary(trainer, target, greedy, sampled))
    if config.gif:
        try:
            gif, height, width = record_gif(
                agent, config.env, config.max_episode_steps, derive_seed(config.seed, VIDEO), config.discretize_actions
            )
            write_atomically(run_dir / GIF, lambda file: file.write(gif))
            log_gif(writer, "videos/greedy_episode", gif, height, width, state.env_steps)
        except Exception as error:  # rendering is the environment's code (OpenGL, render modes): only the GIF is lost
            reason = (str(error).strip().splitlines() or [""])[0][:120]
            print(
                f"train.py: warning: no GIF ({type(error).__name__}: {reason}); the run's results are saved "
                "(--no-gif skips recording)",
                file=sys.stderr,
            )
    writer.close()
    trainer.close()
    evaluator.close()
    trained = f"{state.updates} updates, {state.train_seconds:.2f} s of training"
    if target is None:
        print(f"no target; trained {state.env_steps} env steps, {trained}")
    elif state.solved_at is None:
        print(f"not solved after {state.env_steps} env steps, {trained}")
    elif state.solved_at == state.env_steps:
        print(f"solved at {state.env_steps} env steps, {trained}")
    else:
        print(f"solved at {state.solved_at} env steps; trained to {state.env_steps} env steps, {trained}")
    print(f"final evaluation, {len(greedy)} episodes: greedy {describe_returns(greedy)}")
    print(f"                                      sampled {describe_returns(sampled)}")
    print(f"model:       {shlex.quote(str(run_dir / MODEL))}")
    print(f"TensorBoard: {tensorboard_command(config.logdir)}   (this run: {shlex.quote(str(run_dir))})")


def tensorboard_command(logdir: str) -> str:
    """A command that starts TensorBoard from where the user is: ``tensorboard`` when a new shell finds it,
    else through this interpreter (a virtual environment's ``bin`` is on the path only once activated)."""
    launcher = "tensorboard" if shutil.which("tensorboard") else f"{shlex.quote(sys.executable)} -m tensorboard.main"
    return f"{launcher} --logdir {shlex.quote(logdir)}"


def watch(config: Config, target: str, given: set[str]) -> None:
    """Play a saved agent in the environment it was trained on (its run's config.json), or in the one
    ``--env``, ``--max-episode-steps`` and ``--discretize-actions`` name when they are ``given`` (its spaces must
    fit the agent's)."""
    agent, path = load_agent(Path(target))
    env, limit, bins = saved_env(path.parent) or (config.env, config.max_episode_steps, config.discretize_actions)
    config.env = config.env if "env" in given else env
    config.max_episode_steps = config.max_episode_steps if "max_episode_steps" in given else limit
    config.discretize_actions = config.discretize_actions if "discretize_actions" in given else bins
    play(
        agent,
        config.env,
        config.max_episode_steps,
        config.watch_episodes,
        config.seed,
        path.parent,
        config.discretize_actions,
    )


def thread_failed(args: threading.ExceptHookArgs) -> None:
    """TensorBoard writes its event file from a thread. A full disk there ends that thread, and the main
    thread meets the same error at its next write, where it is reported in one line (exit status 3):
    the thread's own traceback would only repeat it."""
    if not issubclass(args.exc_type, OSError):
        threading.__excepthook__(args)


if __name__ == "__main__":
    threading.excepthook = thread_failed
    sys.exit(main())
