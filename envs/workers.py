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

_POLL_SECONDS = 0.05  # how often the watcher looks up from the signal queue, so that a close can stop it


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
    if not hasattr(signal, "sigtimedwait"):  # it names the sender; where it is missing (macOS), SIGTERM ends it
        return build()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the watcher thread inherits the mask
    watcher = _SigtermWatcher(main_pid)  # before the build, which may take a while
    return _EndsOnSigtermAtClose(build(), watcher)


class _SigtermWatcher:
    """A thread that ends the process as SIGTERM's default action would, with the shell's status for it, when
    the signal comes from the main process; a SIGTERM from anyone else is dropped."""

    def __init__(self, main_pid: int) -> None:
        self.main_pid = main_pid
        self._start()

    def _start(self) -> None:
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._watch, args=(self.closing,), daemon=True)
        self.thread.start()

    def _watch(self, closing: threading.Event) -> None:
        while not closing.is_set():
            self.take(_POLL_SECONDS)

    def take(self, timeout: float) -> None:
        info = signal.sigtimedwait({signal.SIGTERM}, timeout)
        if info is not None and info.si_pid == self.main_pid:
            os._exit(128 + signal.SIGTERM)

    def settle(self) -> None:
        """Act now on a SIGTERM the thread has not taken yet: stop the thread (it takes nothing else after it
        sees ``closing``), take the signal here, then watch on until the process exits, for a forced close
        that comes later."""
        self.closing.set()
        self.thread.join()
        self.take(0)
        self._start()


class _EndsOnSigtermAtClose(gym.Wrapper):
    """Gymnasium's forced close sends SIGTERM and then closes its pipes. The end of the pipe reaches the worker's
    loop as an error, and without this the worker could leave through that error (status 1, a traceback on
    stderr) before the watcher thread acted on the SIGTERM that came first."""

    def __init__(self, env: gym.Env, sigterm: _SigtermWatcher) -> None:
        super().__init__(env)
        self._sigterm = sigterm

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._sigterm.settle()
