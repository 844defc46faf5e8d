"""SIGTERM and SIGHUP stop a local command the way Ctrl-C does: cleanly.

Python's default for SIGTERM and SIGHUP ends the process on the spot: no ``finally``
block, no context manager, no ``atexit`` handler runs, so the embedded PostgreSQL
(started detached by ``pg_ctl``) and the Lambda and Glue processes outlive the
command. Under :func:`terminate_on` such a signal raises :class:`Terminated` in the
main thread instead, and the stack's ``finally`` blocks stop everything.

Code that must not be cut in the middle — starting the warehouse (a postmaster
forked but not yet recorded would be orphaned) and stopping the stack — runs under
:func:`deferred`: a signal arriving there is held and raised when the section ends.
Once a signal has been raised, later ones are ignored, so a second ``kill`` cannot
interrupt the cleanup the first one started.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any, Optional

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """A stop signal arrived (a ``BaseException``, like ``KeyboardInterrupt``:
    ``except Exception`` blocks let it through to the cleanup)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """The shell's status for a process ended by this signal: 128 + its number."""
        return 128 + self.signum


class _Guard:
    def __init__(self) -> None:
        self.received: Optional[int] = None
        self.raised = False
        self.depth = 0

    def handle(self, signum: int, _frame: Any) -> None:
        if self.received is not None:
            return  # already stopping: let the cleanup finish
        self.received = signum
        if self.depth == 0:
            self.raise_now()

    def raise_now(self) -> None:
        assert self.received is not None
        self.raised = True
        raise Terminated(self.received)


_guard: Optional[_Guard] = None


@contextlib.contextmanager
def terminate_on(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, ``signals`` raise :class:`Terminated` in the main thread."""
    global _guard
    if threading.current_thread() is not threading.main_thread() or _guard is not None:
        yield
        return
    guard = _Guard()
    previous = {signum: signal.signal(signum, guard.handle) for signum in signals}
    _guard = guard
    try:
        yield
    finally:
        _guard = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A section a stop signal must not cut: the signal is raised when it ends."""
    guard = _guard
    if guard is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    guard.depth += 1
    try:
        yield
    finally:
        guard.depth -= 1
        if guard.depth == 0 and guard.received is not None and not guard.raised:
            guard.raise_now()  # replaces an exception under way: the command is stopping anyway
