"""Sweeps split into units: resumable, and runnable on any executor (local or Ray).

:func:`run_sweep` cuts a config's ``[sweep]`` grid into units, one per value
of its first axis (a row of the regime map), runs the units on an executor
(:mod:`cogflex.executors`), and merges them into one
:class:`~cogflex.nta.results.SimulationResult` laid out exactly as
:func:`~cogflex.nta.simulation.simulate` of the whole grid would be (seed-major
networks, global grid-point indices). Every seed draws its own teachers,
initial weights and input noise whatever else is in the batch, so a unit's
networks are the same networks as in the one-batch run.

With ``out``, each finished unit is kept in ``out/.units/sweep/`` (see
:class:`~cogflex.units.UnitStore`) as soon as it is done; a rerun after a
kill reuses it, and a changed config recomputes exactly the rows whose
settings changed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import xarray as xr

from cogflex import __version__
from cogflex.executors import LocalExecutor
from cogflex.nta.config import SimulationConfig, Sweep
from cogflex.nta.results import SimulationResult
from cogflex.units import UnitStore

__all__ = ["sweep_units", "run_sweep", "merge_units"]


def sweep_units(config: SimulationConfig) -> list[SimulationConfig]:
    """One config per value of the first swept axis (the whole config when nothing is swept)."""
    if not config.sweep.axes:
        return [config]
    (name, values), rest = config.sweep.axes[0], config.sweep.axes[1:]
    return [dataclasses.replace(config, sweep=Sweep(axes=((name, (v,)), *rest))) for v in values]


def _simulate_unit(config: SimulationConfig, device: str) -> xr.Dataset:
    """Run one unit (a function of plain arguments, so that any executor can ship it)."""
    import torch

    from cogflex.nta.simulation import simulate

    torch.set_num_threads(1)
    return simulate(config, device=device).dataset


def _unit_settings(unit: SimulationConfig, device: str) -> dict:
    return {"config": unit.to_dict(), "device": device, "cogflex_version": __version__}


def merge_units(config: SimulationConfig, datasets: list[xr.Dataset]) -> SimulationResult:
    """Merge unit datasets (in :func:`sweep_units` order) into the dataset of the whole grid."""
    if len(datasets) == 1:
        ds = datasets[0]
        ds.attrs["config"] = json.dumps(config.to_dict())
        return SimulationResult(config=config, dataset=ds)
    seeds = config.seeds
    per_unit = [int(ds.sizes["network"]) // seeds for ds in datasets]
    total = sum(per_unit)
    offsets = np.cumsum([0, *per_unit[:-1]])
    parts = []
    for ds, offset, g in zip(datasets, offsets, per_unit):
        local = ds["grid_point"].values
        seed_index = np.arange(ds.sizes["network"]) // g
        parts.append(ds.assign_coords(grid_point=("network", local + offset),
                                      network=seed_index * total + local + offset))
    merged = xr.concat(parts, dim="network", join="outer", data_vars="all", coords="different",
                       compat="equals", combine_attrs="override").sortby("network")
    merged.attrs["wall_seconds"] = float(sum(float(ds.attrs["wall_seconds"]) for ds in datasets))
    merged.attrs["config"] = json.dumps(config.to_dict())
    merged.attrs["units"] = len(datasets)
    return SimulationResult(config=config, dataset=merged)


def run_sweep(config: SimulationConfig, *, out: str | Path | None = None, executor=None, device: str = "cpu",
              log=None) -> SimulationResult:
    """Run ``config``'s grid unit by unit on ``executor``; keep finished units in ``out/.units/sweep/``.

    Parameters
    ----------
    config
        A config with a ``[sweep]`` table (without one it is a single unit).
    out
        Output folder of the sweep; ``None`` keeps nothing on disk.
    executor
        :class:`~cogflex.executors.LocalExecutor` (default, in process) or
        :class:`~cogflex.executors.RayExecutor`.
    device
        ``"cpu"`` or ``"cuda"`` (resolved by the caller; ``"auto"`` is not a stable unit key).
    log
        Receives one line per reused or recomputed unit (default: stderr).
    """
    started = time.perf_counter()
    executor = executor or LocalExecutor()
    units = sweep_units(config)
    settings = [_unit_settings(u, device) for u in units]
    names = [f"unit {i:03d}" for i in range(len(units))]
    store = UnitStore(Path(out) / ".units" / "sweep", log=log) if out is not None else None
    results: list[xr.Dataset | None] = [None] * len(units)
    if store is not None:
        store.clear_stale_parts()
        results = [store.load(n, s) for n, s in zip(names, settings)]
        reused = sum(r is not None for r in results)
        if reused:
            store.log(f"{config.name}: reusing {reused} of {len(units)} finished sweep unit(s) from {store.folder}")
    todo = [i for i, r in enumerate(results) if r is None]

    def done(k: int, ds: xr.Dataset) -> None:
        i = todo[k]
        results[i] = ds
        if store is not None:
            store.save(names[i], settings[i], ds, seconds=float(ds.attrs["wall_seconds"]))

    executor.run(_simulate_unit, [(units[i], device) for i in todo], on_done=done)
    result = merge_units(config, results)  # type: ignore[arg-type]
    result.dataset.attrs["run_seconds"] = time.perf_counter() - started
    return result
