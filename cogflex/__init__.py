"""cogflex: a toolkit for task switching.

Simulate gated linear networks that learn task abstractions (Sandbrink,
Bauer, Proca, Saxe, Summerfield & Hummos, NeurIPS 2024)::

    import cogflex as cf
    result = cf.simulate(cf.load_config("fig2-flexible"))
    result.summary()["time_to_criterion"]

and read, clean and summarise human task-switching data::

    data = cf.load_trials("ebb_and_flow.csv.gz", format="ebb-and-flow")
    cf.summarize(data).switch_cost

Subpackages: :mod:`cogflex.nta` (the network, its training, metrics, plots),
:mod:`cogflex.data` (trial schema, loaders, cleaning, summaries, plots).
The names below are imported on first use, so that ``import cogflex`` (and the
command line's ``--help``) does not load PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cogflex.errors import CogflexError, ConfigError, DivergenceError

if TYPE_CHECKING:
    from cogflex.data import CleaningRules, TrialData, clean, load_trials, summarize
    from cogflex.nta import SimulationConfig, SimulationResult, load_config, load_result, simulate

__all__ = [
    "CogflexError",
    "ConfigError",
    "DivergenceError",
    "SimulationConfig",
    "SimulationResult",
    "load_config",
    "load_result",
    "simulate",
    "TrialData",
    "CleaningRules",
    "load_trials",
    "clean",
    "summarize",
]

__version__ = "0.1.0"

_LAZY = {name: "cogflex.nta" for name in
         ("SimulationConfig", "SimulationResult", "load_config", "load_result", "simulate")}
_LAZY.update({name: "cogflex.data" for name in ("TrialData", "CleaningRules", "load_trials", "clean", "summarize")})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cogflex' has no attribute {name!r}")
