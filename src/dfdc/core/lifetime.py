"""The processes a run starts live no longer than the run, and a stopped run says so in one line.

A stage's work runs in processes below the one ``dvc repro`` starts: the notebook kernel
(jupyter_client starts it in a session of its own, so a signal to ``dvc repro``'s process group
never reaches it), the pool workers below the kernel, Ray's local cluster. Killed with
``kill -KILL`` of that group, they once went on writing into the DVC output for seconds, then
hung on, holding a gigabyte each, until someone killed them by hand. So:

- every such child dies with the process that started it: :func:`die_with_parent` (a pool
  worker calls it first) and :func:`death_signal_preexec` (the kernel is started with it) set
  Linux's ``PR_SET_PDEATHSIG``; elsewhere a thread watches the parent's pid (ipykernel's own
  poller does that for the kernel);
- a child that starts a process group of its own (the kernel: its pool workers and a local
  Ray instance live in its group, and Ray's agents outlive a killed driver for a minute) gets a
  reaper (:func:`start_group_reaper`): a small process out of the run's group that kills the
  whole group the moment the run's process is gone;
- SIGTERM stops a run as Ctrl-C does (:func:`stop_on_signals`): both raise :class:`Stopped`, a
  ``KeyboardInterrupt``, so ``finally`` blocks run on the way out (the pool's workers killed,
  Ray shut down, the kernel killed at once: :func:`stopping`), and the entry point ends in one
  line with the shell's status for the signal (130, 143).

Outputs are written atomically (:mod:`dfdc.core.io`), so a run killed at any instant leaves
whole files, and a temporary file at worst, which the next run removes.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "Stopped",
    "death_signal_preexec",
    "die_with_parent",
    "ignoring_sigint",
    "start_group_reaper",
    "stop_on_signals",
    "stopping",
]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

_stopping: int | None = None  # the signal that is stopping this process, once one has


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (``signum``); a ``KeyboardInterrupt``, so code that already
    lets Ctrl-C through unharmed (asyncio, concurrent.futures, ``except Exception``) treats
    SIGTERM the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stopping() -> int | None:
    """The signal that is stopping this process, or None: cleanup that is polite by default
    (a kernel's shutdown request, which waits for the running cell) is quick once it is set."""
    return _stopping


def _raise_stopped(signum: int, _frame: object) -> None:
    global _stopping
    if _stopping is not None:  # already stopping: let the cleanup finish (SIGKILL still ends it)
        return
    _stopping = signum
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Stopped` in the main thread during the block (the
    handlers before it are put back after). Elsewhere than the main thread, nothing changes
    (Python delivers signals to the main thread only)."""
    global _stopping
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        _stopping = None


@contextmanager
def ignoring_sigint() -> Iterator[None]:
    """SIGINT ignored for the block, in the main thread: processes started inside inherit
    that, and Python keeps an ignored SIGINT ignored, so a pool's workers never print a
    ``KeyboardInterrupt`` traceback each on Ctrl-C (the terminal signals the whole group);
    their parent stops them instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None


def _watch_parent(parent: int) -> None:
    """Exit as soon as the parent's pid is no longer this process's parent."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` (the pid that started it) ends, and now if it has
    already: SIGKILL from the kernel on Linux, a watching thread elsewhere. A worker's writes
    are atomic, so dying mid-file leaves no half-written output."""
    prctl = _prctl()
    if prctl is None or prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def death_signal_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGKILL when this process
    (strictly: the thread that starts it) ends. None off Linux, where the child watches for
    itself. The parent's pid is read here, before the fork, so a parent that dies before the
    child sets the signal is noticed too."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


REAP_POLL_S = 0.2  # how often a reaper looks at its parent and its group


def start_group_reaper(pgid: int) -> subprocess.Popen:
    """Start a reaper of process group ``pgid``: when this process ends, however it ends, the
    reaper SIGKILLs the whole group, then exits; it exits too once the group is empty. It runs
    in a session of its own, so a signal to this process's group leaves it to do its work, and
    imports nothing but the standard library."""
    return subprocess.Popen(
        [sys.executable, "-m", "dfdc.core.lifetime", str(os.getpid()), str(pgid)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def _reap(parent: int, pgid: int) -> None:
    """The reaper's loop (:func:`start_group_reaper`)."""
    while True:
        try:
            if os.getppid() != parent:
                os.killpg(pgid, signal.SIGKILL)
                return
            os.killpg(pgid, 0)  # still there?
        except (ProcessLookupError, PermissionError):  # the group has ended: nothing to watch
            return
        time.sleep(REAP_POLL_S)


if __name__ == "__main__":  # the reaper: python -m dfdc.core.lifetime PARENT_PID PGID
    _reap(int(sys.argv[1]), int(sys.argv[2]))
