"""What an async vector environment's worker process does with the signals that stop a run: it leaves them to
the main process, which finishes its update, writes its checkpoint and then closes the workers. Ctrl-C in a
terminal, ``kill -TERM -PGID`` and a batch scheduler's SIGTERM reach every process of the run at once; a worker
that died of them would take the update in progress with it."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

import gymnasium as gym


def in_worker(build: Callable[[], gym.Env], main_pid: int) -> gym.Env:
    """The environment ``build`` makes, in a worker that ignores SIGINT and SIGHUP and obeys SIGTERM only from
    ``main_pid``: Gymnasium's forced close terminates its workers with SIGTERM, and that must still end them.

    :param build: makes the worker's environment.
    :param main_pid: the process that owns the vector environment.
    """
    if os.getpid() == main_pid:  # Gymnasium makes one environment in the main process too, to read its spaces
        return build()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):  # a closed terminal's: the main process stops the run
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if hasattr(signal, "sigwaitinfo"):  # it names the sender; where it is missing (macOS), SIGTERM ends the worker
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the thread below inherits the mask
        threading.Thread(target=_end_on_sigterm_from, args=(main_pid,), daemon=True).start()
    return build()


def _end_on_sigterm_from(main_pid: int) -> None:
    while signal.sigwaitinfo({signal.SIGTERM}).si_pid != main_pid:
        pass
    os._exit(128 + signal.SIGTERM)  # what the default action would do, with the shell's status for it
