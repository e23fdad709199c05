"""cogflex: a toolkit for task switching.

Simulate gated linear networks that learn task abstractions (Sandbrink,
Bauer, Proca, Saxe, Summerfield & Hummos, NeurIPS 2024)::

    import cogflex as cf
    result = cf.simulate(cf.load_config("fig2-flexible"))
    result.summary()["time_to_criterion"]

read, clean and summarise human task-switching data, fit models to it and compare them::

    data = cf.load_trials("ebb_and_flow.csv.gz", format="ebb-and-flow")   # or a DataFrame
    cf.summarize(data).switch_cost
    fits = [cf.fit(data, model, out="fits") for model in ("flexible", "forgetful", "descriptive")]
    comparison = cf.compare(fits)
    cf.report(fits, "report.html", comparison=comparison)

Subpackages: :mod:`cogflex.nta` (the network, its training, metrics, plots),
:mod:`cogflex.data` (trial schema, loaders, cleaning, summaries, plots),
:mod:`cogflex.fit` (cognitive models, fitting, comparison, posterior predictive checks).
The names below are imported on first use, so that ``import cogflex`` (and the
command line's ``--help``) does not load PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cogflex.errors import CogflexError, ConfigError, DivergenceError

if TYPE_CHECKING:
    from cogflex import data, fit, nta
    from cogflex.data import CleaningRules, TrialData, clean, load_trials, summarize
    from cogflex.fit import FitOptions, load_fit
    from cogflex.nta import SimulationConfig, SimulationResult, load_config, load_result, simulate
    from cogflex.pipeline import run_pipeline
    from cogflex.workflow import compare, report

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
    "fit",
    "FitOptions",
    "load_fit",
    "compare",
    "report",
    "run_pipeline",
    "nta",
    "data",
]

__version__ = "0.1.0"

_LAZY = {name: "cogflex.nta" for name in
         ("SimulationConfig", "SimulationResult", "load_config", "load_result", "simulate")}
_LAZY.update({name: "cogflex.data" for name in ("TrialData", "CleaningRules", "load_trials", "clean", "summarize")})


_LAZY.update({"FitOptions": "cogflex.fit", "load_fit": "cogflex.fit", "compare": "cogflex.workflow",
              "report": "cogflex.workflow", "run_pipeline": "cogflex.pipeline"})
#: Subpackages reached as attributes; ``cf.fit`` is also callable: ``cf.fit(data, model, ...)`` fits a model.
_SUBPACKAGES = ("nta", "data", "fit")


def __getattr__(name: str) -> Any:
    if name == "report":  # the module is callable: the verb and cogflex.report are one object
        return importlib.import_module("cogflex.report")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"cogflex.{name}")
    raise AttributeError(f"module 'cogflex' has no attribute {name!r}")
