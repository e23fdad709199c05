"""Predictor tables: a model's network predictors at every node of its parameter grid, per participant.

For each participant the model's network (torch, :mod:`cogflex.fit.network`: the one boundary between
fitting and :mod:`cogflex.nta`) runs once over the whole trial sequence for every grid node, as one batch,
and records the model's predictors before each observed trial (NTA: squared error L_t and margin m_t).
Tables are ``(*grid shape, n_observed, K)`` and cached on disk, keyed by the model's
:meth:`~cogflex.fit.models.base.CognitiveModel.table_identity`, the grid window and the participant's trials.

A :class:`GridWindow` says which part of the model's box a table covers: the whole box with the model's own
nodes (the first, coarse grid), or a sub-box around a posterior with nodes of its own (the refined grids of
:mod:`cogflex.fit.refine`). Windows are in box positions (0..1 per grid parameter, on the parameter's own
scale: log for timescales).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cogflex.fit.sequence import Sequence
from cogflex.io import atomic_path

__all__ = ["TABLE_FORMAT", "GridWindow", "grid_points", "grid_shape", "predictor_table"]

#: Bump when the network code changes what a predictor table holds (invalidates cached tables).
TABLE_FORMAT = 4


@dataclass(frozen=True)
class GridWindow:
    """The part of a model's box a predictor table covers.

    ``lower``..``upper`` are box positions per grid axis, with ``points`` evenly spaced nodes on each (in box
    position, so on the log scale for timescales).

    :meth:`full` is the whole box with the model's own nodes (``GridParameter.points``).
    """

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    points: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.lower) == len(self.upper) == len(self.points):
            raise ValueError("a grid window needs lower, upper and points for every grid axis")
        for lo, hi, n in zip(self.lower, self.upper, self.points):
            if not 0.0 <= lo < hi <= 1.0 or n < 2:
                raise ValueError(f"grid window axis [{lo}, {hi}] with {n} points: need 0 <= lower < upper <= 1 "
                                 "and at least 2 points")

    @classmethod
    def full(cls, model) -> GridWindow:
        """The model's whole box with its own nodes."""
        dims = len(model.grid)
        return cls((0.0,) * dims, (1.0,) * dims, tuple(p.points for p in model.grid.values()))

    def is_full(self, model) -> bool:
        """Whether this is :meth:`full` for ``model``."""
        return self == GridWindow.full(model)

    def is_full_box(self) -> bool:
        """Whether the window spans the whole box (whatever its nodes)."""
        return all(lo == 0.0 for lo in self.lower) and all(hi == 1.0 for hi in self.upper)

    @property
    def shape(self) -> tuple[int, ...]:
        """Nodes per grid axis."""
        return tuple(self.points)

    def node_positions(self, axis: int) -> np.ndarray:
        """Box positions of the nodes on ``axis``."""
        return np.linspace(self.lower[axis], self.upper[axis], self.points[axis])

    def local(self, axis: int, position):
        """Box position(s) -> position within the window on ``axis`` (0 at its lower edge, 1 at its upper)."""
        return (position - self.lower[axis]) / (self.upper[axis] - self.lower[axis])

    def values(self, model) -> dict[str, np.ndarray]:
        """Every node's parameter values (flattened meshgrid, C order over ``model.grid_names``)."""
        axes = []
        for d, gp in enumerate(model.grid.values()):
            nodes = gp.nodes() if (self.lower[d], self.upper[d], self.points[d]) == (0.0, 1.0, gp.points) \
                else gp.value(self.node_positions(d))
            axes.append(np.asarray(nodes, dtype=float))
        mesh = np.meshgrid(*axes, indexing="ij")
        return {n: m.ravel() for n, m in zip(model.grid_names, mesh)}

    def record(self, model) -> dict:
        """JSON-ready description: box positions and the parameter values of the window's edges."""
        return {"lower": list(self.lower), "upper": list(self.upper), "points": list(self.points),
                "values": {name: [float(gp.value(self.lower[d])), float(gp.value(self.upper[d]))]
                           for d, (name, gp) in enumerate(model.grid.items())}}

    @classmethod
    def from_record(cls, record: dict) -> GridWindow:
        """The window of a :meth:`record`."""
        return cls(tuple(map(float, record["lower"])), tuple(map(float, record["upper"])),
                   tuple(map(int, record["points"])))


def grid_points(model, window: GridWindow | None = None) -> dict[str, np.ndarray]:
    """Every grid node's parameter values (flattened meshgrid, C order over ``model.grid_names``)."""
    return (window or GridWindow.full(model)).values(model)


def grid_shape(model, window: GridWindow | None = None) -> tuple[int, ...]:
    """Nodes per grid axis."""
    return (window or GridWindow.full(model)).shape


def _table_key(model, seq: Sequence, window: GridWindow) -> str:
    h = hashlib.sha256(f"table-format-{TABLE_FORMAT}".encode())
    h.update(json.dumps(model.table_identity(), sort_keys=True).encode())
    if not window.is_full(model):
        h.update(json.dumps(window.record(model), sort_keys=True).encode())
    for arr in (seq.task, seq.features, seq.session, seq.observed):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:20]


def predictor_table(model, seq: Sequence, *, cache_dir: str | Path | None = None, progress: bool = False,
                    window: GridWindow | None = None) -> np.ndarray:
    """``(*grid shape, n_observed, K)`` table of the model's predictors for one participant.

    ``window`` is the part of the box covered (default: the whole box with the model's nodes). Cached under
    ``cache_dir`` when given; ``progress`` shows a bar over the simulated trials.
    """
    window = window or GridWindow.full(model)
    shape = (*window.shape, int(seq.observed.sum()), len(model.predictors))
    path = None
    if cache_dir is not None:
        tag = getattr(model, "variant", None) or model.family
        path = Path(cache_dir) / f"predictors-{tag}-{_table_key(model, seq, window)}.npy"
        if path.exists():
            table = np.load(path)
            if table.shape == shape:
                return table
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=model.progress_length(seq), unit="trial", leave=False,
                   desc=f"network {model.name} x{int(np.prod(shape[:-2]))} participant {seq.participant}")
    table = model.compute_predictors(seq, window.values(model), progress=bar.update if bar else None)
    if bar is not None:
        bar.close()
    table = np.asarray(table, dtype=float).reshape(shape)
    if path is not None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, table)
    return table
