"""The suite's runs as Ray tasks: ``python -m bench.suite --ray`` starts Ray on this machine, ``--ray auto`` or
``--ray ray://HOST:10001`` joins a cluster. Each (environment, seed) is one task holding the CPUs its run uses
(torchrun workers x torch threads). A task trains the run in the same ``--out`` path on its node (resuming it
from its checkpoint where that node sees one) and returns its result, which this process writes: the results
come home whether or not the nodes share a filesystem, and the run folders stay where they were written.

A task whose worker process or node dies is run again by Ray (up to ``RETRIES`` times); so is a run stopped by
a signal on its node. Either resumes from the run's checkpoint where the node's folder has it, and starts again
where it has not; the task's first line says which. Ctrl-C here stops every run with its checkpoint, and the
same command, with or without ``--ray``, continues the suite."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from bench.common import ROOT
from bench.suite_process import STOPPED, last_words
from bench.suite_report import result_path
from bench.suite_runs import bad_input, collect, expected_config, record, run_folders, say, stem, train_run
from training.run_files import lock_folder

RETRIES = 3  # a run's attempts after the first, when its worker or node dies or a signal stops it there
FREE_WAIT_SECONDS = 600  # how long a new attempt waits for the last one's train.py to leave the run folder
STOP_WAIT_SECONDS = 300  # how long Ctrl-C waits for the runs to write their checkpoints


def connect(address: str) -> None:
    """Start Ray here (``address`` "local") or join the cluster at ``address``; one line (exit 2) when Ray is
    missing or the cluster cannot be reached."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every run's own lines, not "repeated 2x across cluster"
    try:
        import ray
    except ImportError:
        bad_input('--ray needs Ray: pip install -e ".[cluster]" (on every node of a cluster)')
    # The workers import this project's bench package from where it lies (the same path on every node).
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}}
    try:
        ray.init(address=address, runtime_env=runtime_env, include_dashboard=False, logging_level="warning")
    except (ConnectionError, ValueError, RuntimeError) as error:
        bad_input(f"--ray {address}: cannot reach the cluster ({str(error).splitlines()[0]}): start it, or give --ray")


def run_on_ray(
    address: str, runs: list[tuple[str, int]], extra: list[str], out: Path, workers: int
) -> tuple[int, list[str]]:
    """Run each (env, seed) of ``runs`` that has no result yet as a Ray task, side by side, and write each
    result as it arrives; the suite's exit status so far (130 when Ctrl-C stopped it) and the runs that failed.

    :param address: "local" (Ray started here) or a cluster's address (see ``ray.init``).
    :param runs: the (environment, seed) pairs.
    :param extra: the train.py flags of every new run.
    :param out: the suite's folder (the same path on every node).
    :param workers: torchrun processes per run.
    """
    todo = [(env, seed) for env, seed in runs if not result_path(out, env, seed).is_file()]
    for env, seed in sorted(set(runs) - set(todo), key=runs.index):
        say(f"{env} seed {seed}: done")
    if not todo:
        return 0, []
    cpus = {run: run_cpus(*run, extra, out, workers) for run in todo}
    started = time.perf_counter()
    connect(address)
    import ray

    nodes = [node for node in ray.nodes() if node["Alive"]]
    largest = max((node["Resources"].get("CPU", 0) for node in nodes), default=0)
    total = sum(node["Resources"].get("CPU", 0) for node in nodes)
    say(f"Ray: {len(nodes)} nodes, {total:g} CPUs, reached in {time.perf_counter() - started:.1f} s")
    if max(cpus.values()) > largest:  # Ray would wait for such a node for ever
        ray.shutdown()
        bad_input(f"a run needs {max(cpus.values())} CPUs (--workers x --threads) and the largest node has {largest:g}")
    task = ray.remote(max_retries=RETRIES, retry_exceptions=False)(_train_on_node)
    where = str(out.resolve())
    start = lambda run: task.options(num_cpus=cpus[run]).remote(*run, extra, where, workers, cpus[run])  # noqa: E731
    pending = {start(run): run for run in todo}
    stops, failed = dict.fromkeys(todo, 0), []
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)  # Python takes Ctrl-C between waits
            if not done:
                continue
            env, seed = run = pending.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except ray.exceptions.RayError as error:  # its attempts used up, or the task could not run
                say(f"{env} seed {seed}: its task failed: {str(error).strip().splitlines()[-1]}")
                failed.append(f"{env} seed {seed}")
                continue
            if outcome["status"] == 0:
                record(out, outcome["result"])
            elif outcome["status"] in STOPPED and stops[run] < RETRIES:  # a signal on its node, not Ctrl-C here
                stops[run] += 1
                say(f"{env} seed {seed}: stopped on {outcome['node']} (exit {outcome['status']}); running it again")
                pending[start(run)] = run
            else:
                said = f"train.py exited {outcome['status']} on {outcome['node']}: {outcome['said']}"
                say(f"{env} seed {seed}: {said} (log: {outcome['log']})")
                failed.append(f"{env} seed {seed}")
    except KeyboardInterrupt:
        say(f"suite.py: SIGINT: stopping {len(pending)} runs with their checkpoints")
        for ref in pending:  # a running task's SIGINT handler passes SIGINT on: train.py stops with its checkpoint
            ray.cancel(ref)
        ray.wait(list(pending), num_returns=len(pending), timeout=STOP_WAIT_SECONDS)
        say("suite.py: stopped; the same command, with or without --ray, continues the suite")
        return 130, failed
    finally:
        ray.shutdown()
    return 0, failed


def run_cpus(env: str, seed: int, extra: list[str], out: Path, workers: int) -> int:
    """The CPUs a run's processes use (torchrun workers x torch threads): Ray reserves them for the run, and
    runs no more beside it than a node has."""
    threads = expected_config(env, seed, extra, out / "runs", workers)["threads"]
    return workers * (threads or os.cpu_count() or 1)  # no thread count: torch takes every core


def _train_on_node(env: str, seed: int, extra: list[str], out: str, workers: int, cpus: int) -> dict:
    """In a Ray worker: train (env, seed) in ``out`` on this node and return its result, or how it failed."""
    import ray

    folder = Path(out)
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    folders = run_folders(folder, env, seed)
    if folders:
        _wait_until_free(folders[-1])
    status = train_run(env, seed, extra, folder, workers)
    if status != 0:
        log = Path(f"{stem(folder, env, seed)}.log")
        return {"status": status, "node": platform.node(), "said": last_words(log), "log": str(log)}
    result = collect(env, seed, extra, folder, cpus)
    return {"status": 0, "result": {**result, "ray_node_id": ray.get_runtime_context().get_node_id()}}


def _wait_until_free(run_dir: Path) -> None:
    """Wait until no train.py holds ``run_dir``: after a worker was killed, its run stops with a checkpoint
    (SIGTERM when its parent dies) and the next attempt resumes from that checkpoint."""
    deadline = time.monotonic() + FREE_WAIT_SECONDS
    while True:
        try:
            handle = lock_folder(run_dir, "train.py")
        except ValueError:  # held, or not writable: train.py then says so in one line
            if not os.access(run_dir, os.W_OK) or time.monotonic() > deadline:
                return
            time.sleep(1)
            continue
        if handle is not None:
            handle.close()
        return
