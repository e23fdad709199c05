"""Predictor tables: a model's network predictors at every node of its parameter grid, per participant.

For each participant the model's network (torch, :mod:`cogflex.fit.network`: the one boundary between
fitting and :mod:`cogflex.nta`) runs once over the whole trial sequence for every grid node, as one batch,
and records the model's predictors before each observed trial (NTA: squared error L_t and margin m_t).
Tables are ``(*grid shape, n_observed, K)`` and cached on disk, keyed by the model's
:meth:`~cogflex.fit.models.base.CognitiveModel.table_identity` and the participant's trials.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from cogflex.fit.sequence import Sequence
from cogflex.io import atomic_path

__all__ = ["TABLE_FORMAT", "grid_points", "grid_shape", "predictor_table"]

#: Bump when the network code changes what a predictor table holds (invalidates cached tables).
TABLE_FORMAT = 3


def grid_points(model) -> dict[str, np.ndarray]:
    """Every grid node's parameter values (flattened meshgrid, C order over ``model.grid_names``)."""
    nodes = [p.nodes() for p in model.grid.values()]
    mesh = np.meshgrid(*nodes, indexing="ij")
    return {n: m.ravel() for n, m in zip(model.grid_names, mesh)}


def grid_shape(model) -> tuple[int, ...]:
    """Nodes per grid axis."""
    return tuple(p.points for p in model.grid.values())


def _table_key(model, seq: Sequence) -> str:
    h = hashlib.sha256(f"table-format-{TABLE_FORMAT}".encode())
    h.update(json.dumps(model.table_identity(), sort_keys=True).encode())
    for arr in (seq.task, seq.features, seq.session, seq.observed):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:20]


def predictor_table(model, seq: Sequence, *, cache_dir: str | Path | None = None,
                    progress: bool = False) -> np.ndarray:
    """``(*grid shape, n_observed, K)`` table of the model's predictors for one participant.

    Cached under ``cache_dir`` when given; ``progress`` shows a bar over the simulated trials.
    """
    shape = (*grid_shape(model), int(seq.observed.sum()), len(model.predictors))
    path = None
    if cache_dir is not None:
        tag = getattr(model, "variant", None) or model.family
        path = Path(cache_dir) / f"predictors-{tag}-{_table_key(model, seq)}.npy"
        if path.exists():
            table = np.load(path)
            if table.shape == shape:
                return table
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=model.progress_length(seq), unit="trial", leave=False,
                   desc=f"network {model.name} x{int(np.prod(shape[:-2]))} participant {seq.participant}")
    table = model.compute_predictors(seq, grid_points(model), progress=bar.update if bar else None)
    if bar is not None:
        bar.close()
    table = np.asarray(table, dtype=float).reshape(shape)
    if path is not None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, table)
    return table
