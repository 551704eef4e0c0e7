"""The suite's runs as processes: each ``train.py`` launched in its own session, its output logged, the stop
signals passed on, stopped when the suite dies; the wall time of its sessions; what a failed one said last."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from agents.files import write_json
from bench.common import is_number

STOPPED = (130, 143)  # a run's exit status when SIGINT or SIGTERM stopped it (it resumes from its checkpoint)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # Linux's prctl option: a signal for the child when its parent dies


def launch(command: list[str], log: Path, sessions: Path) -> int:
    """Run train.py, its output into ``log``. It runs in its own session and gets SIGINT and SIGTERM from
    here only, passed on once each time, so that it stops with a checkpoint; a hang-up (a closed terminal,
    unless under nohup) is passed on as SIGTERM. Each session's time is kept. A run stopped so returns the
    signal's status (128 + its number) whatever it exited with: torchrun exits 1 when it was stopped."""
    started = time.perf_counter()
    with log.open("a") as output:
        output.write(f"$ {shlex.join(command)}\n")
        output.flush()
        unbuffered = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the log follows the run
        child = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=unbuffered,
            start_new_session=True,
            preexec_fn=functools.partial(_stop_with_parent, os.getpid()),
        )

        passed: list[int] = []

        def pass_on(signum: int, _: object) -> None:
            passed.append(signal.SIGTERM if signum == signal.SIGHUP else signum)
            child.send_signal(passed[-1])

        watched = [s for s in STOP_SIGNALS if s != signal.SIGHUP or signal.getsignal(s) is not signal.SIG_IGN]
        passed_on = {s: signal.signal(s, pass_on) for s in watched}
        try:
            status = None
            while status is None:  # in steps: Ray's cancel of a task runs the SIGINT handler between them
                with contextlib.suppress(subprocess.TimeoutExpired):
                    status = child.wait(timeout=1)
        finally:
            for s, handler in passed_on.items():
                signal.signal(s, handler)
    if passed and status != 0:
        status = 128 + passed[0]
    done = read_sessions(sessions) or []  # an unreadable record of wall times is started again
    write_json(sessions, [*done, {"command": command, "seconds": time.perf_counter() - started, "status": status}])
    return status


def wall_seconds(sessions: list[dict] | None) -> float | None:
    """The wall time of the sessions that trained the run: those that ended it or were stopped to be resumed,
    not those that failed (a resume refused, a crash), whose time went into no result."""
    if sessions is None:
        return None
    return sum(s["seconds"] for s in sessions if s.get("status") in (0, *STOPPED))


def _stop_with_parent(parent: int) -> None:
    """In the child, before train.py starts (Linux): SIGTERM when the suite dies, even by ``kill -9``, so that no
    run goes on training unwatched, holding its folder's lock; it stops as a SIGTERM always stops it, with a
    checkpoint, and the next suite resumes it. The stop signals are unblocked: a Ray worker blocks SIGINT, and
    train.py would inherit that."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    with contextlib.suppress(AttributeError, OSError):  # not Linux: an orphan is possible, and its run's lock says so
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the suite died before the request was made
        os._exit(128 + signal.SIGTERM)


def last_words(log: Path) -> str:
    """What a failed run said last: train.py's own one line, else the log's last line that is not a rule of
    ``=`` or ``-`` (torchrun frames its failure report with them)."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()] if log.is_file() else []
    said = [line for line in lines if line.startswith("train.py: ")]
    meaningful = [line for line in lines if line.strip("=-")]
    return (said or meaningful or [""])[-1]


def read_sessions(path: Path) -> list[dict] | None:
    """The sessions (command, seconds, status) a run took, or None where the file is missing or unreadable."""
    try:
        sessions = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    valid = isinstance(sessions, list) and all(isinstance(s, dict) and is_number(s.get("seconds")) for s in sessions)
    return sessions if valid else None
