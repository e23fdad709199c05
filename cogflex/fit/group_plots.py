"""Convergence figures of a hierarchical fit's group level: trace and rank plots (ArviZ's arviz-plots).

The group-level parameters (group means, spreads, covariate slopes: scalars per draw) carry a hierarchical fit;
their per-chain distributions (ECDFs) and traces, and their rank plots (uniform when the chains mix), are what a
reader checks before trusting the group estimates. :func:`group_variables` picks them; :func:`trace_figure`
and :func:`rank_figure` draw them with ``arviz_plots`` (matplotlib backend) and return PNG bytes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import xarray as xr

__all__ = ["group_variables", "trace_figure", "rank_figure"]

#: At most this many group variables per figure (means and slopes first, then spreads).
MAX_VARIABLES = 16


def group_variables(tree: xr.DataTree) -> list[str]:
    """The posterior's group-level scalars of a hierarchical fit (empty for per-participant fits)."""
    if not int(tree.attrs.get("hierarchical", 0)):
        return []
    post = tree["posterior"]
    names = [n for n in post.data_vars if post[n].dims == ("chain", "draw")]
    return sorted(names, key=lambda n: n.endswith("_sd"))[:MAX_VARIABLES]  # stable: means and slopes first


def _png(plot, tree: xr.DataTree, names: list[str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    collection = plot(tree, var_names=names, backend="matplotlib")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "figure.png"
        collection.savefig(path, dpi=80)
        data = path.read_bytes()
    plt.close("all")
    return data


def trace_figure(tree: xr.DataTree) -> bytes | None:
    """Per-chain ECDF and trace of every group variable (PNG), or None for a per-participant fit."""
    import arviz_plots as azp

    names = group_variables(tree)
    return _png(azp.plot_trace_dist, tree, names) if names else None


def rank_figure(tree: xr.DataTree) -> bytes | None:
    """Rank plots of the group variables (PNG; uniform ranks when the chains mix), or None."""
    import arviz_plots as azp

    names = group_variables(tree)
    return _png(azp.plot_rank, tree, names) if names else None
