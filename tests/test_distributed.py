"""With torch.distributed, processes that each update on their own episodes end with identical
parameters, equal to one process's update on all the episodes; `torchrun train.py` runs one run."""

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from gymnasium import spaces

from agents import AgentConfig, EpisodeBatch, ReinforceAgent
from training import Trainer, Workers, make_config
from training.signals import StopSignals

ROOT = Path(__file__).resolve().parent.parent
TRAIN = shlex.quote(str(ROOT / "train.py"))  # train.py as these tests start it, and as its messages name it
OBS, ACTIONS = spaces.Box(-5.0, 5.0, (3,), np.float32), spaces.Discrete(3)
SETTINGS = {
    "batch": dict(normalize="batch", normalize_observations=True, baseline=True, entropy_coef=0.01),
    "episode": dict(normalize="episode", normalize_observations=False),
    "none, two passes": dict(normalize="none", passes=2, max_grad_norm=0.5),
    "a KL target, three passes": dict(passes=3, learning_rate=0.05, target_kl=0.002),
}


def episodes_of(rank: int) -> list:
    """Different numbers of episodes and of steps on each process, so the weighting matters."""
    rng = np.random.default_rng(100 + rank)
    lengths = (7, 1, 12) if rank == 0 else (30, 4)
    return [(rng.normal(size=(n, 3)) * 2 + rank, rng.integers(0, 3, n), rng.normal(size=n) + rank) for n in lengths]


def make_agent(setting: str) -> ReinforceAgent:
    return ReinforceAgent(OBS, ACTIONS, AgentConfig(hidden_sizes=(8,), **SETTINGS[setting]), seed=0)


def _worker(rank: int, world: int, init_file: str, out: str, setting: str, distributed: bool = True) -> None:
    agent = make_agent(setting)  # before the group exists, as Workers.from_environment explains
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    stats = [agent.update(EpisodeBatch.from_episodes(episodes_of(rank)), distributed=distributed) for _ in range(2)]
    state = {"policy": agent.policy.state_dict(), "stats": stats}
    if agent.value is not None:
        state["value"] = agent.value.state_dict()
    torch.save(state, f"{out}/rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_two_processes_step_like_one_process_on_all_episodes(tmp_path, setting):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path), setting), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    single = make_agent(setting)
    union = EpisodeBatch.from_episodes(episodes_of(0) + episodes_of(1))
    expected_stats = [single.update(union) for _ in range(2)]
    for name in ("policy", "value"):
        if name not in ranks[0]:
            continue
        expected = getattr(single, name).state_dict()
        for key, value in ranks[0][name].items():
            assert torch.equal(value, ranks[1][name][key]), (name, key)  # (a) identical on both ranks
            torch.testing.assert_close(value, expected[key], atol=1e-6, rtol=1e-5)  # (b) = one process
    for got, want in zip(ranks[0]["stats"], expected_stats):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key


def test_a_process_group_alone_makes_no_update_collective(tmp_path):
    """Without distributed=True each process learns from its own episodes, as if it were alone."""
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path), "batch", False), nprocs=2, join=True)
    for rank in (0, 1):
        alone = make_agent("batch")
        for _ in range(2):
            alone.update(EpisodeBatch.from_episodes(episodes_of(rank)))
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)["policy"]
        for key, value in alone.policy.state_dict().items():
            assert torch.equal(got[key], value), (rank, key)


def _learning_worker(rank: int, world: int, init_file: str, out: str) -> None:
    config = make_config({"num_envs": 2, "episodes_per_update": 3 + rank})
    # before the group exists, as Workers.from_environment explains
    trainer = Trainer(config, workers=Workers(rank, world))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    batch, state = trainer.step().batch, trainer.state
    starts = batch.observations[0]  # each environment's first observation
    torch.save({"starts": torch.as_tensor(starts), "steps": batch.num_steps, "state": vars(state)}, f"{out}/{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def test_workers_play_their_own_episodes_and_count_everyone_s(tmp_path):
    mp.spawn(_learning_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1)]
    assert not torch.equal(ranks[0]["starts"], ranks[1]["starts"])  # seeds derived from the rank too
    for got in ranks:
        assert got["state"]["env_steps"] == ranks[0]["steps"] + ranks[1]["steps"]
        assert got["state"]["episodes"] == 3 + 4


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def torchrun(*args, cwd, script=ROOT / "train.py"):
    return subprocess.run([*TORCHRUN, str(script), *args], cwd=cwd, capture_output=True, text=True)


def test_torchrun_trains_one_run_with_two_workers(tmp_path):
    args = ["--max-updates", "4", "--no-gif", "--eval-episodes", "10", "--eval-every-steps", "500"]
    result = torchrun(*args, "--logdir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1  # (c) only the main worker writes
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["updates"] == 4
    assert summary["episodes"] == 4 * 2 * 8  # both workers' episodes count
    assert result.stdout.count("model:") == 1


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from /proc")
def test_torchrun_workers_stop_gloo_threads_before_exiting(tmp_path):
    """A gloo thread alive at interpreter exit can abort the worker (SIGABRT) while it frees a collective."""
    script = tmp_path / "run_then_list_threads.py"
    script.write_text(
        "import os, sys\nimport train\n"
        "status = train.main(sys.argv[1:])\n"
        "names = [open(f'/proc/self/task/{t}/comm').read() for t in os.listdir('/proc/self/task')]\n"
        "open(f'gloo_threads_{os.environ[\"RANK\"]}', 'w').write(str(sum('gloo' in n for n in names)))\n"
        "sys.exit(status)\n"
    )
    args = ["--max-updates", "1", "--no-gif", "--eval-episodes", "2", "--logdir", str(tmp_path / "runs")]
    result = torchrun(*args, cwd=tmp_path, script=script)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [(tmp_path / f"gloo_threads_{rank}").read_text() for rank in (0, 1)] == ["0", "0"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "CartPol-v1"], "unknown environment id 'CartPol-v1'"),
        (["--num-envs", "many"], "argument --num-envs: invalid"),  # refused by the command-line parser
        (["--minibatch-size", "64"], "minibatch_size is not supported with several processes"),
        (["--heuristic"], "--watch and --heuristic run in one process"),
    ],
)
def test_torchrun_bad_input_stops_every_worker_with_one_line(tmp_path, args, message):
    result = torchrun(*args, "--logdir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.count("train.py: error: ") == 1 and f"train.py: error: {message}" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_torchrun_resumes_a_run_exactly(tmp_path):
    common = ["--no-gif", "--eval-episodes", "10", "--no-stop-when-solved", "--max-updates"]
    assert torchrun(*common, "4", "--logdir", str(tmp_path / "whole"), cwd=tmp_path).returncode == 0
    assert torchrun(*common, "2", "--logdir", str(tmp_path / "runs"), cwd=tmp_path).returncode == 0
    run = next((tmp_path / "runs").iterdir())
    result = torchrun("--resume", str(run), *common, "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["updates"] == 4 and summary["episodes"] == 4 * 2 * 8
    assert len(list((tmp_path / "runs").iterdir())) == 1
    whole = next((tmp_path / "whole").iterdir())
    assert json.loads((whole / "summary.json").read_text())["env_steps"] == summary["env_steps"]
    expected, resumed = (torch.load(r / "checkpoint.pt", weights_only=True)["agent"] for r in (whole, run))
    for key, value in expected["policy"].items():  # every worker's episodes replayed exactly
        assert torch.equal(value, resumed["policy"][key]), key
    alone = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--resume", str(run)], capture_output=True, text=True
    )
    assert alone.returncode == 2
    assert alone.stderr.strip().splitlines() == [
        "train.py: error: the run had 2 worker(s), this launch has 1: "
        f"resume it with torchrun [the same 2 workers] {TRAIN} --resume {run}"
    ]


def test_torchrun_workers_stop_together_when_the_main_one_says_solved(tmp_path):
    args = ["--target-return", "15", "--eval-every-steps", "500", "--eval-episodes", "5", "--max-updates", "50"]
    result = torchrun(*args, "--no-gif", "--logdir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(next((tmp_path / "runs").iterdir()).joinpath("summary.json").read_text())
    assert summary["solved"] and summary["updates"] < 50


def _pid_of_rank(rank: int, marker: str) -> int:
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and marker.encode() in cmdline and b"train.py" in cmdline:
            return int(entry.name)
    raise AssertionError(f"no worker of rank {rank}")


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="finds the worker through /proc")
def test_torchrun_a_signal_to_any_worker_stops_every_worker_with_a_checkpoint(tmp_path):
    logdir = str(tmp_path / "runs")
    args = ["--no-stop-when-solved", "--no-gif", "--print-every", "1", "--logdir", logdir]
    with subprocess.Popen([*TORCHRUN, str(ROOT / "train.py"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, cwd=tmp_path) as process:  # fmt: skip
        for line in process.stdout:
            if line.startswith("update    2"):  # both workers are in the training loop
                break
        os.kill(_pid_of_rank(1, logdir), signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "train.py: SIGTERM: stopped after update" in stderr, stderr[-2000:]
    assert "[rank0]: Traceback" not in stderr and "[rank1]: Traceback" not in stderr, stderr[-3000:]
    assert f"resume with: torchrun [the same 2 workers] {TRAIN} --resume" in stderr
    run = next(Path(logdir).iterdir())
    assert (run / "checkpoint.pt").is_file() and not (run / "summary.json").exists()


def test_a_worker_whose_run_failed_ignores_the_sigterm_torchrun_sends_next():
    """Once a worker's loop ends in an error, torchrun's SIGTERM to the survivors cannot end it before it has
    said why; alone, or ending normally, the handlers are restored."""
    before, before_sigint = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        for among_workers, error, after in [(True, RuntimeError, signal.SIG_IGN), (False, RuntimeError, before),
                                            (True, None, before)]:  # fmt: skip
            signal.signal(signal.SIGTERM, before)
            with contextlib.suppress(RuntimeError), StopSignals(among_workers=among_workers):
                if error:
                    raise error("gloo: connection closed by peer")
            assert signal.getsignal(signal.SIGTERM) == after, (among_workers, error)
            assert signal.getsignal(signal.SIGINT) == before_sigint
    finally:
        signal.signal(signal.SIGTERM, before)


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="finds the worker through /proc")
def test_torchrun_a_killed_worker_leaves_one_line_with_the_checkpoint_not_a_traceback(tmp_path):
    """kill -9 of one worker: rank 0 reports gloo's error in one line naming the checkpoint to resume from,
    not as gloo's 20-line traceback."""
    logdir = str(tmp_path / "runs")
    args = ["--no-stop-when-solved", "--no-gif", "--print-every", "1", "--checkpoint-every", "1", "--logdir", logdir]
    with subprocess.Popen([*TORCHRUN, str(ROOT / "train.py"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, cwd=tmp_path) as process:  # fmt: skip
        for line in process.stdout:
            if line.startswith("update    2"):  # both workers are in the training loop, a checkpoint written
                break
        os.kill(_pid_of_rank(1, logdir), signal.SIGKILL)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    ours = [line for line in stderr.splitlines() if line.startswith("train.py: ")]
    assert len(ours) == 1 and "[rank0]: Traceback" not in stderr, stderr[-3000:]
    # torchrun may also have sent rank 0 its SIGTERM first: either way one line names the checkpoint
    assert "a collective with the other workers failed" in ours[0] or "SIGTERM: stopped" in ours[0]
    assert f"torchrun [the same 2 workers] {TRAIN} --resume" in ours[0]
