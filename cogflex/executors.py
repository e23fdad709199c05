"""Who runs independent job units: this process, a local process pool, or Ray.

Long jobs (per-participant fits, rows of a sweep grid) are split into
independent units; an executor runs ``function(*job)`` for every job and hands
each result back *in the driver* as soon as it is done (``on_done``), so the
caller can write it to disk at once: a run killed half-way keeps every
finished unit. The model code only calls :meth:`run`; it does not know which
backend ran it.

- :class:`LocalExecutor`: in process (``workers = 1``) or a process pool.
- :class:`RayExecutor`: a Ray cluster (``address``) or a local Ray instance;
  Ray is an optional extra (``pip install 'cogflex[ray]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from cogflex.errors import ConfigError

__all__ = ["LocalExecutor", "RayExecutor", "make_executor", "BACKENDS"]

BACKENDS = ("local", "ray")
OnDone = Callable[[int, Any], None]


class LocalExecutor:
    """Run jobs in this process (``workers=1``) or in a local process pool.

    Parameters
    ----------
    workers
        Number of worker processes; 1 runs the jobs one after the other here
        (progress bars and Ctrl-C behave best).
    """

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers

    def run(self, function: Callable[..., Any], jobs: Iterable[tuple], on_done: OnDone | None = None) -> list[Any]:
        """``[function(*job) for job in jobs]`` in job order; ``on_done(i, result)`` as each finishes."""
        jobs = list(jobs)
        results: list[Any] = [None] * len(jobs)
        if self.workers == 1 or len(jobs) <= 1:
            for i, job in enumerate(jobs):
                results[i] = function(*job)
                if on_done is not None:
                    on_done(i, results[i])
            return results
        with ProcessPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
            pending = {pool.submit(function, *job): i for i, job in enumerate(jobs)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    results[i] = future.result()
                    if on_done is not None:
                        on_done(i, results[i])
        return results

    def map(self, function: Callable[..., Any], jobs: Iterable[tuple]) -> list[Any]:
        """``[function(*job) for job in jobs]``, in order."""
        return self.run(function, jobs)

    def close(self) -> None:
        """Nothing to release."""


class RayExecutor:
    """Run jobs as Ray tasks (one CPU each) on a cluster or a local Ray instance.

    Parameters
    ----------
    address
        Address of a running Ray cluster (``"auto"``, ``"ray://host:10001"``);
        ``None`` starts a local instance for this process.
    num_cpus
        CPUs of the local instance (``None``: all); ignored with ``address``.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError("backend", "the ray backend needs Ray: pip install 'cogflex[ray]'") from None
        self._ray = ray
        self._owner = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError("address", f"cannot connect to Ray at {address!r}: {exc}") from None
            self._owner = True

    def run(self, function: Callable[..., Any], jobs: Iterable[tuple], on_done: OnDone | None = None) -> list[Any]:
        """``[function(*job) for job in jobs]`` in job order; ``on_done(i, result)`` as each finishes."""
        ray = self._ray
        remote = ray.remote(num_cpus=1, max_retries=0)(function)
        refs = [remote.remote(*job) for job in jobs]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    i = index[ref]
                    results[i] = ray.get(ref)
                    if on_done is not None:
                        on_done(i, results[i])
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return results

    def map(self, function: Callable[..., Any], jobs: Iterable[tuple]) -> list[Any]:
        """``[function(*job) for job in jobs]``, in order."""
        return self.run(function, jobs)

    def close(self) -> None:
        """Shut down the local Ray instance this executor started (a cluster is left running)."""
        if self._owner and self._ray.is_initialized():
            self._ray.shutdown()
            self._owner = False


def make_executor(backend: str = "local", *, workers: int = 1, address: str | None = None,
                  num_cpus: int | None = None) -> LocalExecutor | RayExecutor:
    """The executor for ``--backend local|ray`` (``workers`` sets the local pool and the local Ray CPUs)."""
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError("jobs", f"must be at least 1, got {workers!r}")
    if backend == "local":
        if address is not None:
            raise ConfigError("address", "is only used with --backend ray")
        return LocalExecutor(workers)
    if backend == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus or workers)
    raise ConfigError("backend", f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")


def add_backend_options(parser) -> None:
    """Add ``--backend local|ray`` and ``--address ADDR`` to an argparse (sub)parser."""
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="who runs the independent units: local (this machine; default) or ray (a Ray "
                        "cluster, or a local Ray instance; needs the optional extra cogflex[ray])")
    parser.add_argument("--address", metavar="ADDR", default=None,
                        help="with --backend ray: address of a running Ray cluster (e.g. auto, ray://host:10001); "
                        "default: start a local instance")
