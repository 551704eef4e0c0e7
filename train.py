"""The command line: train a REINFORCE agent on a Gymnasium environment, play a trained one, or resume a
stopped run. ``python train.py --help`` lists its modes, every setting with its default, examples and the exit
statuses; docs/settings.md tells each setting in full. Installed, the same program is ``reinforce-train``.
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
from training.command_line import command, program_name
from training.logs import Console, describe_returns, describe_statistics
from training.loop import NONFINITE
from training.run_files import BEST_MODEL, CHECKPOINT, MODEL, load_agent, read_run, saved_env
from training.signals import Interrupted, InterruptingSignals

EXIT_NONFINITE, EXIT_WRITE_FAILED, EXIT_ENVIRONMENT, EXIT_WORKER_LOST = 1, 3, 4, 5
MAIN = os.environ.get("RANK", "0") == "0"  # under torchrun only the main worker (rank 0) speaks
DESCRIPTION = """\
Train a REINFORCE agent on a Gymnasium environment, with TensorBoard logs. Each setting is a flag;
one not given keeps its default, its preset's or its resumed run's value. docs/settings.md tells
each setting in full, with the presets' values."""
EXAMPLES = (  # the arguments, and what they do
    ("", "CartPole-v1 until solved"),
    ("--env Acrobot-v1 --seed 3", "another environment and seed"),
    ("--env Hopper-v5 --preset tuned", "one seed of the suite's Hopper row"),
    ("--preset textbook", "plain REINFORCE: the robustness defaults off"),
    ("--watch runs/<run>", "play a trained agent"),
    ("--resume runs/<run>", "continue a stopped run in its folder"),
)
EXIT_STATUS = """\
exit status: 0 trained (solved or out of budget), 1 too many non-finite updates in a row,
2 bad input (one line on stderr, nothing written), 3 a file of the run could not be written,
4 the environment's code raised, 5 a torchrun worker was lost, 128 + N stopped by signal N
(130 Ctrl-C, 143 SIGTERM, 129 a closed terminal); stopped in training, a run keeps its checkpoint"""


def main(argv: list[str] | None = None) -> int:
    """One run, or one of the other modes, from the command line; the exit status."""
    try:
        flags, mode = parse_args(argv, DESCRIPTION, epilog(), program_name())
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
    status = EXIT_NONFINITE if result.stopped == NONFINITE else 128 + signal.Signals[result.stopped]
    if not MAIN:  # the main worker holds the run's folder and says where its checkpoint is
        return status
    if result.stopped == NONFINITE:
        return say(
            f"stopped: {result.state.skipped_in_a_row} updates in a row had a non-finite loss, gradient or step "
            f"(skipped, weights untouched); the last good state is {result.run_dir / CHECKPOINT}",
            status,
        )
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
        print(f"{program_name()}: {message}", file=sys.stderr)
    return status


def epilog() -> str:
    """The examples, written with the command that started the program, and the exit statuses."""
    start = command()
    examples = [f"{start} {arguments}".strip() for arguments, _ in EXAMPLES]
    width = max(map(len, examples))
    lines = [f"  {example:{width}}  # {what}" for example, (_, what) in zip(examples, EXAMPLES)]
    lines.append(f"  PYTHONPATH=. {start} --env my_envs:Corridor-v0  # your own environment (module:EnvId)")
    lines.append(f"  {command('torchrun --standalone --nproc_per_node=2')}  # one run over 2 worker processes")
    return "\n".join(["examples:", *lines, "", EXIT_STATUS])


def other_mode(flags: dict[str, Any], mode: Any) -> int:
    """``--watch`` or ``--heuristic``: no training, one process; a signal stops them at once."""
    if os.environ.get("WORLD_SIZE", "1") != "1":
        raise ValueError(f"--watch and --heuristic run in one process: start them with {command()}")
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


def command_line() -> int:
    """The program as a command (``python train.py``, ``python -m train``, the installed ``reinforce-train``):
    ``main`` on the command line's arguments, its exit status."""
    threading.excepthook = thread_failed
    sys.stdout = Console(sys.stdout)
    try:
        return main()
    except KeyboardInterrupt:  # Ctrl-C while the run was being set up: training had not started
        return say("SIGINT: stopped before training started", 128 + signal.SIGINT)


if __name__ == "__main__":
    sys.exit(command_line())
