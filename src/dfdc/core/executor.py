"""Where per-video batch work runs: the local process pool (the default) or Ray.

Either way the workers live no longer than the run (:mod:`dfdc.core.lifetime`): a pool's
workers die with the process that started them and are killed at once when the run stops
(Ctrl-C, SIGTERM, an error), and Ray's local instance is shut down on the way out (or, killed,
goes with its driver: Ray starts it sharing the driver's fate).

The full DFDC is about 120,000 videos; face extraction at about 1 s a video on 2 cores is some
35 hours on one machine. Ray spreads the same per-video function over a cluster's workers
without a home-made scheduler: one actor per worker holds its models (one MTCNN, or one
inference bundle) and takes videos from an ordered queue (:class:`RayActors`), so the results come
back in the order of the inputs, as the pool's ``map`` gives them. Inputs and outputs are paths
every worker must be able to read and write (a shared filesystem); nothing is shipped between
nodes but the job descriptions and the small results.

Ray stays quiet by default (no dashboard, warnings only, workers' logs not streamed to the
driver), and a Ray that cannot start or connect is one line naming the address and the cause.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from dfdc.core.errors import UserError
from dfdc.core.lifetime import die_with_parent, ignoring_sigint

log = logging.getLogger(__name__)

__all__ = ["CONNECT_TIMEOUT_S", "RayActors", "RayUnavailable", "process_pool", "ray_session"]


def _start_worker(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def _nothing() -> None:
    return None


@contextmanager
def process_pool(
    workers: int, initializer: Callable | None = None, initargs: tuple = (),
    context: str | None = "spawn",
) -> Iterator[ProcessPoolExecutor]:  # fmt: skip
    """A ``ProcessPoolExecutor`` of ``workers`` processes (``context``: a multiprocessing start
    method, None for the platform's default), each running ``initializer(*initargs)`` first.

    The workers die with this process, however it ends (SIGKILL included); they ignore SIGINT,
    so Ctrl-C prints no traceback a worker; and when the block raises (Ctrl-C, SIGTERM through
    :func:`~dfdc.core.lifetime.stop_on_signals`, a failed job) they are killed at once rather
    than left to finish the jobs in flight. Normally the block's end waits for them, as the
    executor's own ``with`` does.
    """
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context(context), initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )  # fmt: skip
    try:
        # Every worker starts here, inside the window where SIGINT is ignored, so they inherit
        # that (the executor starts one a submitted job while it has fewer than ``workers``).
        with ignoring_sigint():
            for _ in range(workers):
                pool.submit(_nothing)
        yield pool
    except BaseException:
        for proc in set(multiprocessing.active_children()) - before:
            proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


class RayUnavailable(UserError, RuntimeError):
    """Ray could not start locally or reach the cluster at the given address."""


# How long an address of ``host:port`` form may take to accept a connection before Ray is
# asked: ray.init waits some 20 s on an address where nothing answers.
CONNECT_TIMEOUT_S = 3.0


def _unreachable(address: str) -> str | None:
    """Why ``address`` (``host:port``, ``[ipv6]:port``, or either after ``ray://``) takes no
    connection, or None when it does or the address names no port (``auto``: Ray finds the
    address itself)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 literal: [::1]:6379
    if not sep or not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            return None
    except TimeoutError:
        return f"no answer from {host}:{port} within {CONNECT_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"


@contextmanager
def ray_session(address: str = "local", num_cpus: int | None = None) -> Iterator[None]:
    """Ray started (``local``: a private instance on this machine with ``num_cpus``) or
    connected (``auto``, ``ray://host:10001``, ``host:6379``) for the block, and shut down after
    if this block started it."""
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a pinned requirement
        raise RayUnavailable("faces.executor ray: the ray package is not installed") from None
    if ray.is_initialized():
        yield
        return
    local = address in ("", "local")
    if not local and (why := _unreachable(address)) is not None:
        raise RayUnavailable(f"ray: could not start or connect to address {address!r} ({why})")
    # Ray's own chatter (the dashboard, usage stats, worker logs) stays out of the terminal.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs = dict(
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        configure_logging=True,
    )
    try:
        if local:
            ray.init(num_cpus=num_cpus, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError: all one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "a local instance" if local else f"address {address!r}"
        raise RayUnavailable(f"ray: could not start or connect to {where} ({text[:200]})") from None
    try:
        yield
    finally:
        ray.shutdown()


class RayActors:
    """``actors`` Ray actors of ``actor_class`` (built with ``init_args``, each reserving
    ``num_cpus``/``num_gpus``), started and ready (each answered ``ready()``) when this
    returns, so what follows times the work, not the start-up (as the pool's warm-up does)."""

    def __init__(
        self, actor_class: type, init_args: tuple, actors: int, num_cpus: float = 1,
        num_gpus: float = 0,
    ) -> None:  # fmt: skip
        import ray

        remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(actor_class)
        self.actors = [remote.remote(*init_args) for _ in range(max(1, actors))]
        ray.get([a.ready.remote() for a in self.actors])

    def map(
        self, method: str, phases: list[list], on_result: Callable[[object], None] | None = None
    ) -> list:
        """``actor.method(item)`` for every item of each phase; a phase starts when the one
        before has finished (the faces stage's fakes reuse their originals' boxes). Results in
        the items' order, phases concatenated; ``on_result`` sees each as it is ready."""
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        out = []
        for items in phases:
            for result in pool.map(lambda a, item: getattr(a, method).remote(item), list(items)):
                out.append(result)
                if on_result is not None:
                    on_result(result)
        return out
