"""Executors for the fitting jobs (one per participant): see :mod:`cogflex.executors`."""

from cogflex.executors import LocalExecutor, RayExecutor, make_executor

__all__ = ["LocalExecutor", "RayExecutor", "make_executor"]
