"""Train a REINFORCE agent on a Gymnasium environment, with TensorBoard logs.

python train.py                          # CartPole-v1 until solved
python train.py --env Acrobot-v1 --seed 3
python train.py --preset seed            # the seed notebook's settings
python train.py --heuristic              # the notebook's hard-coded CartPole policy
python train.py --watch runs/<run>       # play a trained agent
python train.py --resume runs/<run>      # continue a stopped run in its folder
python train.py --env InvertedPendulum-v5 --learning-rate 0.01   # continuous actions
python train.py --help                   # every setting, with its default
torchrun --standalone --nproc_per_node=2 train.py   # one run over 2 worker processes

Exit status: 0 trained (solved or out of budget), 1 stopped after too many non-finite updates in a row,
2 bad input (one line on stderr, nothing written), 128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM)
with a checkpoint to resume from.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from envs import play, record_gif, run_heuristic
from training import Config, Evaluator, StopSignals, Trainer, Workers, make_config, parse_args, solves, target_return
from training.checkpoints import CHECKPOINT, MODEL, load_agent, new_run_dir, read_run, restore_run, save_run, saved_env
from training.logs import (
    describe_returns,
    log_config,
    log_evaluation,
    log_gif,
    log_hparams,
    log_update,
    run_summary,
)
from training.seeding import VIDEO, derive_seed

EXIT_NONFINITE = 1


def main(argv: list[str] | None = None) -> int:
    workers = Workers.from_environment()  # under torchrun: this worker's rank, its process group joined
    status = train(argv, workers)
    workers.close()  # not after an exception: the other workers may never reach the barrier
    return status


def train(argv: list[str] | None, workers: Workers) -> int:
    """One run, from the command line to its results; returns the exit status."""
    # ---- set-up: every check that can fail on bad input, on every worker, before anything is written
    error = run_dir = None
    try:
        flags, mode = parse_args(argv, __doc__)
        if (mode.watch or mode.heuristic) and workers.size > 1:
            raise ValueError("--watch and --heuristic run in one process: start them with python train.py")
        if mode.watch:
            watch(make_config(flags, mode.preset), mode.watch)
            return 0
        if mode.heuristic:
            config = make_config(flags, mode.preset)
            returns = run_heuristic(config.env, config.eval_episodes, config.max_episode_steps, config.seed)
            print(describe_returns(returns))
            return 0
        checkpoint = read_run(Path(mode.resume)) if mode.resume else None
        config = make_config(flags, mode.preset, checkpoint["config"] if checkpoint else None)
        if workers.size > 1:
            config.check_distributed()
        trainer, evaluator = Trainer(config, workers), Evaluator(config)
        target = target_return(config, trainer.env)
        if checkpoint:
            run_dir = Path(mode.resume)
            restore_run(run_dir, checkpoint, trainer, evaluator)
    except (ValueError, OSError) as problem:
        error = str(problem)
    if not agreed(error, workers):
        return 2
    try:  # only now, once every worker is ready, does the run write anything
        if run_dir is None and workers.main:
            run_dir = new_run_dir(config)
    except ValueError as problem:
        error = str(problem)
    if not agreed(error, workers):
        return 2

    # ---- the training loop: collect, update, log, evaluate, checkpoint, stop
    state, agent, main = trainer.state, trainer.agent, workers.main
    resumed = state.updates > 0
    # on resume, drop whatever the interrupted run logged after its checkpoint
    writer = SummaryWriter(run_dir, purge_step=state.env_steps + 1 if resumed else None) if main else None
    if main and not resumed:
        log_config(writer, config)
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
                        greedy = evaluator(agent)
                        if record(writer, trainer, greedy, target):
                            bar.write(f"solved at {state.env_steps} env steps: greedy mean {greedy.mean():.1f}")
                            stop = 0 if config.stop_when_solved else None
                    if stop is None and state.skipped_in_a_row >= config.max_nonfinite_updates:
                        stop = EXIT_NONFINITE
                    elif stop is None and state.updates % config.checkpoint_every == 0:
                        save_run(run_dir, trainer, evaluator)
                if stop is None and signals.received is not None:  # a signal to any worker stops them all
                    stop = 128 + signals.received
                stop = workers.first(stop)
            if main:
                save_run(run_dir, trainer, evaluator)
        bar.close()

        # ---- the end: trained (save, evaluate, summarise), or stopped early (say how to go on)
        if stop in (None, 0):
            if main:
                finish(writer, trainer, evaluator, target, run_dir)
            return 0
        if main:
            writer.close()
            stopped(stop, trainer, run_dir)
        return stop
    except KeyboardInterrupt:  # after training, while evaluating or recording: the checkpoint is written
        if main:
            print(f"train.py: interrupted; the run's checkpoint is in {run_dir}", file=sys.stderr)
        return 130


def agreed(error: str | None, workers: Workers) -> bool:
    """Whether no worker met an error (a worker alone must not go on); the main one prints the first."""
    error = workers.first(error)
    if error is not None and workers.main:
        print(f"train.py: error: {error}", file=sys.stderr)
    return error is None


def record(writer: SummaryWriter, trainer: Trainer, greedy: np.ndarray, target: float | None) -> bool:
    """Log a greedy evaluation; whether it solves the environment for the first time."""
    state = trainer.state
    log_evaluation(writer, greedy, state.env_steps)
    if state.solved_at is None and solves(greedy, target):
        state.solved_at = state.env_steps
        return True
    return False


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
            f"{checkpoint}; resume with: {trainer.workers.launcher} train.py --resume {run_dir}",
            file=sys.stderr,
        )


def finish(writer: SummaryWriter, trainer: Trainer, evaluator: Evaluator, target: float | None, run_dir: Path) -> None:
    """Save the model, evaluate it greedily and by sampling, write the summary and the GIF."""
    config, state, agent = trainer.config, trainer.state, trainer.agent
    agent.save(run_dir / MODEL)
    greedy, sampled = evaluator(agent), evaluator(agent, deterministic=False)
    record(writer, trainer, greedy, target)
    log_hparams(writer, config, {"eval/final_return_mean": float(greedy.mean())})
    (run_dir / "summary.json").write_text(json.dumps(run_summary(trainer, target, greedy, sampled), indent=2))
    if config.gif:
        seed = derive_seed(config.seed, VIDEO)
        gif, height, width = record_gif(agent, config.env, config.max_episode_steps, seed=seed)
        (run_dir / "episode.gif").write_bytes(gif)
        log_gif(writer, "videos/greedy_episode", gif, height, width, state.env_steps)
    writer.close()
    trainer.close()
    evaluator.close()
    solved = "solved" if state.solved_at is not None else "not solved"
    print(
        f"{solved} after {state.env_steps} env steps, {state.updates} updates, {state.train_seconds:.2f} s of training"
    )
    print(f"final evaluation, {len(greedy)} episodes: greedy {describe_returns(greedy)}")
    print(f"                                      sampled {describe_returns(sampled)}")
    print(f"model:       {run_dir / MODEL}")
    print(f"TensorBoard: tensorboard --logdir {config.logdir}   (this run: {run_dir})")


def watch(config: Config, target: str) -> None:
    """Play a saved agent in the environment it was trained on (read from its run's config.json)."""
    agent, path = load_agent(Path(target))
    config.env, config.max_episode_steps = saved_env(path.parent) or (config.env, config.max_episode_steps)
    play(agent, config.env, config.max_episode_steps, config.watch_episodes, config.seed, path.parent)


if __name__ == "__main__":
    sys.exit(main())
