"""What one reproduced figure of Sandbrink et al. (2024) is: a runner and its numbers.

Every figure module in :mod:`cogflex.reproduce` defines ``FIGURE``, a
:class:`Figure` whose ``run(scale, out)`` runs the experiment, writes its PNG
panel groups into ``out`` (names starting with the figure key, e.g.
``fig6_sorted_weights.png``) and returns the key quantities as
:class:`Quantity` records. :func:`cogflex.reproduce.runner.reproduce` collects
them into ``numbers.json``.

``scale`` is ``"paper"`` (the settings of DESIGN section 2, all figures in
about 10 minutes on 2 cores) or ``"quick"`` (reduced seeds / durations for CI;
the same code paths, numbers not comparable with the paper).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from cogflex.resources import data_path

__all__ = ["Scale", "Quantity", "Figure", "SCALES", "reference_numbers", "scaled"]

Scale = Literal["paper", "quick"]
SCALES: tuple[str, ...] = ("paper", "quick")


@dataclass(frozen=True)
class Quantity:
    """One key number of a figure, with what the paper / reference says.

    Parameters
    ----------
    name
        Short identifier, unique within the figure (``"selectivity_regularized"``).
    value
        What cogflex measured (a float, or a list of floats for curves).
    description
        One line for the documentation table.
    reference
        The paper's / reference value or claim in words (``"0.9996"``,
        ``">= 0.9"``, ``"flexible faster"``); ``None`` when the paper gives none.
    passed
        Whether ``value`` meets the acceptance criterion; ``None`` when there is none.
    unit
        Unit of ``value`` (``"tau_W"``, ``""``).
    """

    name: str
    value: float | list[float]
    description: str
    reference: str | None = None
    passed: bool | None = None
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (NaN becomes ``None``)."""
        out = asdict(self)
        out["value"] = _clean(self.value)
        return out


def _clean(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    value = float(value)
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class Figure:
    """A reproducible figure: key (``"fig6"``), title and runner.

    ``run(scale, out)`` writes ``out/<key>_*.png`` and returns its quantities.
    """

    key: str
    title: str
    run: Callable[[Scale, Path], list[Quantity]]


def reference_numbers() -> dict[str, Any]:
    """The bundled reference numbers, ``data/reference/sandbrink2024.json``."""
    import json

    return json.loads(data_path("reference/sandbrink2024.json").read_text())


def scaled(config, scale: Scale, *, quick_seeds: int = 3):
    """``config`` as run at ``scale``.

    Unchanged for ``"paper"``; for ``"quick"``, ``quick_seeds`` seeds in
    expected mode (the same code path, a fraction of the cost).
    """
    import dataclasses

    if scale == "paper":
        return config
    return dataclasses.replace(config, seeds=min(config.seeds, quick_seeds)).with_learning(mode="expected")
