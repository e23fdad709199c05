"""Executors: who runs independent fitting jobs (one per participant).

The model code only calls ``executor.map(function, argument_tuples)`` and
gets the results in order, so a distributed engine can later provide the same
method without touching the models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["LocalExecutor"]


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

    def map(self, function: Callable[..., Any], jobs: Iterable[tuple]) -> list[Any]:
        """``[function(*job) for job in jobs]``, in order."""
        jobs = list(jobs)
        if self.workers == 1 or len(jobs) <= 1:
            return [function(*job) for job in jobs]
        with ProcessPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
            futures = [pool.submit(function, *job) for job in jobs]
            return [f.result() for f in futures]
