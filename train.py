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
before stays intact), 4 the environment's own code raised (one line names the error, its line and what was
kept), 5 under torchrun, another worker was lost (one line names the checkpoint to resume from), 128 + N
stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 a closed terminal): during training with a checkpoint to
resume from, after it (evaluating, recording, watching) at once.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from envs import EnvConfig, EnvironmentFailed, play, run_heuristic
from training import Config, FitResult, RunWriteError, WorkerLost, Workers, fit, make_config, parse_args
from training.logs import Console, describe_returns, describe_statistics
from training.loop import NONFINITE
from training.run_files import BEST_MODEL, CHECKPOINT, MODEL, load_agent, read_run, saved_env
from training.signals import Interrupted, InterruptingSignals

EXIT_NONFINITE, EXIT_WRITE_FAILED, EXIT_ENVIRONMENT, EXIT_WORKER_LOST = 1, 3, 4, 5
MAIN = os.environ.get("RANK", "0") == "0"  # under torchrun only the main worker (rank 0) speaks


def main(argv: list[str] | None = None) -> int:
    """One run, or one of the other modes, from the command line; the exit status."""
    try:
        flags, mode = parse_args(argv, __doc__)
        if mode.watch or mode.heuristic:
            return other_mode(flags, mode)
        checkpoint = read_run(Path(mode.resume)) if mode.resume else None
        config = make_config(flags, mode.preset, checkpoint["config"] if checkpoint else None)
        result = fit(config, resume=mode.resume)
    except ValueError as problem:  # bad input: nothing was written
        return say(f"error: {problem}", 2)
    except RunWriteError as problem:  # a full disk or lost permissions: what was written before is intact
        return say(f"error: {problem}", EXIT_WRITE_FAILED)
    except OSError as problem:  # --watch or --heuristic: a file that cannot be read or written
        return say(f"error: {problem}", 2)
    except EnvironmentFailed as failure:  # the environment's code raised: the run's files are as they were
        return say(f"error: {failure}", EXIT_ENVIRONMENT)
    except WorkerLost as lost:
        return say(f"error: {lost}", EXIT_WORKER_LOST)
    if result.stopped is None:
        if MAIN:
            report(result)
        return 0
    if result.stopped == NONFINITE:
        return say(
            f"stopped: {result.state.skipped_in_a_row} updates in a row had a non-finite loss, gradient or step "
            f"(skipped, weights untouched); the last good state is {result.run_dir / CHECKPOINT}",
            EXIT_NONFINITE,
        )
    status = 128 + signal.Signals[result.stopped]
    if result.trained:  # stopped while finishing: its checkpoint is written
        return say(f"{result.stopped} after training; its checkpoint is in {result.run_dir}", status)
    resume = Workers(size=int(os.environ.get("WORLD_SIZE", "1"))).resume_command(result.run_dir)
    return say(
        f"{result.stopped}: stopped after update {result.state.updates}, saved {result.run_dir / CHECKPOINT}; "
        f"resume with: {resume}",
        status,
    )


def say(message: str, status: int) -> int:
    """``message`` on stderr as one line from the main worker; ``status``."""
    if MAIN:
        print(f"train.py: {message}", file=sys.stderr)
    return status


def other_mode(flags: dict[str, Any], mode: Any) -> int:
    """``--watch`` or ``--heuristic``: no training, one process; a signal stops them at once."""
    if os.environ.get("WORLD_SIZE", "1") != "1":
        raise ValueError("--watch and --heuristic run in one process: start them with python train.py")
    config = make_config(flags, mode.preset)
    try:
        with InterruptingSignals():
            if mode.watch:
                watch(config, mode.watch, given=set(flags))
            else:
                returns = run_heuristic(config.env_config(), config.eval_episodes, config.seed)
                print(f"{len(returns)} episodes: {describe_returns(returns)}")
    except Interrupted as interrupted:
        return say(f"{interrupted}: stopped", 128 + interrupted.signum)
    return 0


def report(result: FitResult) -> None:
    """What a finished run says: when it was solved, its final evaluation, where its files are."""
    state, summary = result.state, result.summary
    trained = f"{state.updates} updates, {state.train_seconds:.2f} s of training"
    if summary["target_return"] is None:
        print(f"no target; trained {state.env_steps} env steps, {trained}")
    elif state.solved_at is None:
        print(f"not solved after {state.env_steps} env steps, {trained}")
    elif state.solved_at == state.env_steps:
        print(f"solved at {state.env_steps} env steps, {trained}")
    else:
        print(f"solved at {state.solved_at} env steps; trained to {state.env_steps} env steps, {trained}")
    final = summary["final_eval"]
    print(f"final evaluation, {final['episodes']} episodes: greedy {describe_statistics(final['greedy'])}")
    print(f"                                      sampled {describe_statistics(final['sampled'])}")
    best = summary["best_eval"]
    if best["reevaluated"] is not None:
        again = f"{best['reevaluated']['mean']:.1f} on {final['episodes']} fresh episodes"
        where = shlex.quote(str(result.run_dir / BEST_MODEL))
        print(f"best check:  greedy mean {best['greedy_mean']:.1f} at {best['env_steps']} env steps, {again}: {where}")
    print(f"model:       {shlex.quote(str(result.run_dir / MODEL))}")
    logdir = result.run_dir.parent  # a resumed run's folder may have moved since its config was saved
    print(f"TensorBoard: {tensorboard_command(str(logdir))}   (this run: {shlex.quote(str(result.run_dir))})")


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
    saved = saved_env(path.parent, config.env if "env" in given else None) or config.env_config()
    env = EnvConfig(
        config.env if "env" in given else saved.env,
        config.max_episode_steps if "max_episode_steps" in given else saved.max_episode_steps,
        action_bins=config.discretize_actions if "discretize_actions" in given else saved.action_bins,
    )
    print(f"playing {path}")
    play(agent, env, config.watch_episodes, config.seed, path.parent)


def thread_failed(args: threading.ExceptHookArgs) -> None:
    """TensorBoard writes its event file from a thread. A full disk there ends that thread, and the main
    thread meets the same error at its next write, where it is reported in one line (exit status 3):
    the thread's own traceback would only repeat it."""
    if not issubclass(args.exc_type, OSError):
        threading.__excepthook__(args)


if __name__ == "__main__":
    threading.excepthook = thread_failed
    sys.stdout = Console(sys.stdout)
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while the run was being set up: training had not started
        sys.exit(say("SIGINT: stopped before training started", 128 + signal.SIGINT))
