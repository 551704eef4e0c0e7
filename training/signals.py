"""The signals that stop a run: between two updates while training (with a checkpoint to resume from), at
once while evaluating, recording or watching."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any


class _Signals:
    """SIGINT, SIGTERM and SIGHUP (a closed terminal; not under ``nohup``, which ignores it) handled by
    ``_handle`` while active, as they were before afterwards."""

    def _handle(self, signum: int, frame: Any) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Signals:
        # only the main thread may set handlers: elsewhere (a run started from a thread) signals keep theirs
        main = threading.current_thread() is threading.main_thread()
        stops = [signal.SIGINT, signal.SIGTERM]
        if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            stops.append(signal.SIGHUP)
        self._previous = {s: signal.signal(s, self._handle) for s in stops if main}
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class StopSignals(_Signals):
    """While active, a first stop signal (SIGINT, SIGTERM, SIGHUP) only asks the loop to stop after the current update
    (``received``); a second one exits at once (checkpoints are written atomically, so the last one
    stays intact).

    :param among_workers: a worker of several under torchrun. When an exception ends the context, SIGTERM is then
        ignored from there on: torchrun sends it to the other workers once one has failed, and it would end them
        before they say why the run ended (torchrun's SIGKILL follows if they do not end).
    """

    def __init__(self, among_workers: bool = False) -> None:
        self.received: int | None = None
        self.among_workers = among_workers

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        if exc_type is not None and self.among_workers and signal.SIGTERM in self._previous:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            del self._previous[signal.SIGTERM]
        super().__exit__(exc_type, *exc_info)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            os._exit(128 + signum)
        self.received = signum


class Interrupted(BaseException):
    """A stop signal under ``InterruptingSignals`` (a BaseException, like KeyboardInterrupt, so that
    no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class InterruptingSignals(_Signals):
    """While active, a stop signal (SIGINT, SIGTERM, SIGHUP) abandons the work at once by raising
    ``Interrupted``: for what has nothing to save half-way (evaluating, recording, watching)."""

    def _handle(self, signum: int, frame: Any) -> None:
        raise Interrupted(signum)
