"""Results of a simulation: one xarray dataset, summaries and tables.

Dimensions of :attr:`SimulationResult.dataset`:

- ``network``: every simulated network (seed-major: seed, then grid point);
  coordinates ``seed``, ``grid_point`` and the four sweepable hyperparameters
  (``block_length``, ``gate_timescale``, ``weight_timescale``,
  ``regularization``) per network.
- ``time``: the log points (time units; coordinate ``step`` too). The state
  is recorded *before* the update of that step, with that step's loss.
- ``path``, ``task``, ``unit`` (gate rows: one per output unit with per-unit
  gates, a single row otherwise).
- ``segment``: stretches between task switches; segment k >= 1 starts at
  switch k, segment 0 at the start of the run.
- ``offset``: steps after a switch, for ``switch_curve``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from cogflex.io import atomic_path, write_json
from cogflex.nta.config import SWEEPABLE, SimulationConfig, config_from_dict

__all__ = ["SimulationResult", "build_dataset", "load_result"]


def build_dataset(
    config: SimulationConfig,
    points: Sequence[Mapping[str, float]],
    params: Mapping[str, np.ndarray],
    data: Mapping[str, np.ndarray],
    *,
    n_steps: int,
    wall_seconds: float,
    device: str,
) -> xr.Dataset:
    """Assemble the recorded arrays into the documented dataset."""
    dt = config.learning.dt
    n_points = len(points)
    n_net = config.seeds * n_points
    seeds = np.repeat(np.asarray(config.seed_values), n_points)
    steps = data["step"]
    tau_w = params["weight_timescale"][:, None]
    time_to_criterion = data["steps_to_criterion"] * dt / tau_w
    segment_start = np.where(data["segment_start"] >= 0, data["segment_start"] * dt, np.nan)
    net = ("network",)
    coords = {
        "network": np.arange(n_net),
        "seed": (net, seeds),
        "grid_point": (net, np.tile(np.arange(n_points), config.seeds)),
        **{name: (net, params[name]) for name in SWEEPABLE},
        "time": steps * dt,
        "step": (("time",), steps),
        "path": np.arange(config.network.paths),
        "task": np.arange(config.teachers.tasks),
        "unit": np.arange(data["gates"].shape[2]),
        "segment": np.arange(time_to_criterion.shape[1]),
        "offset": np.arange(data["switch_curve"].shape[2]),
    }
    variables = {
        "loss": (("network", "time"), data["loss"], "data loss 1/2 mean_batch sum_out (y - y*)^2 at the step"),
        "current_task": (("network", "time"), data["task"], "index of the task trained at the step"),
        "gates": (("network", "time", "unit", "path"), data["gates"], "gate values c"),
        "alignment": (("network", "time", "path", "task"), data["alignment"],
                      "row-wise cosine between path and teacher, averaged over rows"),
        "total_alignment": (("network", "time"), data["total_alignment"],
                            "cosine between stacked teachers and best-matched stacked paths"),
        "weight_speed": (("network", "time"), data["weight_speed"], "||dW/dt|| of the expected-gradient flow"),
        "gate_speed": (("network", "time"), data["gate_speed"], "||dc/dt|| of the expected-gradient flow"),
        "final_gates": (("network", "unit", "path"), data["final_gates"], "gates at the end of the run"),
        "final_alignment": (("network", "path", "task"), data["final_alignment"], "alignment at the end"),
        "final_total_alignment": (("network",), data["final_total_alignment"], "total alignment at the end"),
        "final_weights": (("network", "path", "output", "input"), data["final_weights"],
                          "path weights W_p at the end of the run"),
        "teachers": (("network", "task", "output", "input"), data["teachers"], "the teachers W*_m"),
        "segment_start_time": (("network", "segment"), segment_start, "time the segment (block) starts"),
        "time_to_criterion": (("network", "segment"), time_to_criterion,
                              "time from the segment start until the loss < criterion, in units of tau_W"),
        "block_end_loss": (("network", "segment"), data["block_end_loss"], "loss at the last step of the block"),
        "switch_curve": (("network", "segment", "offset"), data["switch_curve"],
                         "loss `offset` steps after the switch that starts the segment"),
    }
    ds = xr.Dataset(
        {name: xr.Variable(dims, values, attrs={"description": desc})
         for name, (dims, values, desc) in variables.items()},
        coords=coords,
    )
    ds.attrs.update(
        config=json.dumps(config.to_dict()),
        name=config.name,
        mode=config.learning.mode,
        n_steps=int(n_steps),
        dt=dt,
        criterion=config.recording.criterion,
        wall_seconds=float(wall_seconds),
        device=device,
        seeds=json.dumps(list(config.seed_values)),
        cogflex_version=_version("cogflex"),
        torch_version=_version("torch"),
        reference="Sandbrink, Bauer, Proca, Saxe, Summerfield & Hummos (2024), NeurIPS",
    )
    return ds


@dataclass(frozen=True)
class SimulationResult:
    """A finished simulation: its config and the recorded :class:`xarray.Dataset`."""

    config: SimulationConfig
    dataset: xr.Dataset

    @property
    def wall_seconds(self) -> float:
        """Wall-clock duration of the run (seconds)."""
        return float(self.dataset.attrs["wall_seconds"])

    @property
    def n_grid_points(self) -> int:
        """Number of sweep grid points."""
        return int(self.dataset["grid_point"].max()) + 1

    def grid_point(self, index: int) -> xr.Dataset:
        """The networks (one per seed) of grid point ``index``."""
        return self.dataset.isel(network=np.flatnonzero(self.dataset["grid_point"].values == index))

    def summary(self, grid_point: int = 0) -> dict[str, Any]:
        """The stable summary of one grid point (means over seeds).

        Keys: ``time_to_criterion`` (per switch, units of tau_W; ``None`` where
        no seed reached the criterion), ``criterion_reached`` (fraction of
        seeds per switch), ``time_to_criterion_first_block`` (learning from
        scratch in the first block, same units), ``total_alignment`` (end of run),
        ``final_gates`` (per path, sorted ascending within each network so
        that one-hot gates read (0, 1) whichever path took which task),
        ``block_end_loss`` (per block), ``wall_seconds``, ``config``.
        """
        ds = self.grid_point(grid_point)
        n_seg = int(np.isfinite(ds["segment_start_time"].values).all(axis=0).sum())
        ttc = ds["time_to_criterion"].values[:, 1:n_seg]
        reached = np.isfinite(ttc)
        count = reached.sum(axis=0)
        ttc_mean = np.where(count > 0, np.nansum(ttc, axis=0) / np.maximum(count, 1), np.nan)
        gates = np.sort(ds["final_gates"].values, axis=-1).mean(axis=(0, 1))
        point = {name: float(ds[name].values[0]) for name in self.config.sweep.names}
        return {
            "name": self.config.name,
            "mode": self.config.learning.mode,
            "seeds": [int(s) for s in ds["seed"].values],
            **({"grid_point": point} if point else {}),
            "time_to_criterion": ttc_mean.tolist(),
            "criterion_reached": reached.mean(axis=0).tolist(),
            "time_to_criterion_first_block": _nanmean(ds["time_to_criterion"].values[:, 0]),
            "total_alignment": float(ds["final_total_alignment"].mean()),
            "final_gates": gates.tolist(),
            "block_end_loss": ds["block_end_loss"].values[:, :n_seg].mean(axis=0).tolist(),
            "wall_seconds": self.wall_seconds,
            "config": self.config.to_dict(),
        }

    def table(self) -> pd.DataFrame:
        """One row per grid point: swept parameters, total alignment, mean time to criterion.

        Columns: ``block_length``, ``gate_timescale``, ``weight_timescale``,
        ``regularization``, ``total_alignment`` (mean over seeds, end of run),
        ``total_alignment_sd``, ``time_to_criterion`` (mean over switches and
        seeds, units of tau_W), ``final_gate_max`` (mean largest gate),
        ``seeds``.
        """
        rows = []
        for g in range(self.n_grid_points):
            ds = self.grid_point(g)
            ttc = ds["time_to_criterion"].values[:, 1:]
            rows.append({
                **{name: float(ds[name].values[0]) for name in SWEEPABLE},
                "total_alignment": float(ds["final_total_alignment"].mean()),
                "total_alignment_sd": float(ds["final_total_alignment"].std()),
                "time_to_criterion": float(np.nanmean(ttc)) if np.isfinite(ttc).any() else np.nan,
                "final_gate_max": float(ds["final_gates"].max("path").mean()),
                "seeds": int(ds.sizes["network"]),
            })
        return pd.DataFrame(rows)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``trajectories.nc`` and ``summary.json`` (per grid point for sweeps), atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"trajectories": out / "trajectories.nc", "summary": out / "summary.json"}
        with atomic_path(paths["trajectories"]) as tmp:
            self.dataset.to_netcdf(tmp, engine="h5netcdf")
        summary = (self.summary() if self.n_grid_points == 1
                   else {"grid": [self.summary(g) for g in range(self.n_grid_points)]})
        write_json(paths["summary"], summary)
        return paths


def load_result(path: str | Path) -> SimulationResult:
    """Read a saved ``trajectories.nc`` back into a :class:`SimulationResult`."""
    ds = xr.load_dataset(path, engine="h5netcdf")
    data = json.loads(ds.attrs["config"])
    sweep = data.pop("sweep", {})
    config = config_from_dict({**data, "sweep": sweep}, source=str(path))
    return SimulationResult(config=config, dataset=ds)


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
