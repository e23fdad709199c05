"""Fitting: cognitive models of task switching fitted trial by trial to human data with PyMC.

The stages, one module each, in the order a fit runs them:

- :mod:`cogflex.fit.models`: the model registry and families (NTA flexible/forgetful, descriptive, your own);
- :mod:`cogflex.fit.prepare`: selecting, cleaning and encoding a participant's trials (:mod:`~cogflex.fit.sequence`:
  the task mapping onto the network);
- :mod:`cogflex.fit.tables`: predictor tables on the model's parameter grid (torch, via :mod:`cogflex.fit.network`,
  the one boundary with :mod:`cogflex.nta`);
- :mod:`cogflex.fit.interpolate` and :mod:`cogflex.fit.link`: the interpolant and the observation model, written
  once for numpy and PyTensor;
- :mod:`cogflex.fit.pymc_model`: the PyMC model of any registered model;
- :mod:`cogflex.fit.start`: start values and the mode search;
- :mod:`cogflex.fit.sampling`: NUTS, the pointwise log-likelihood per draw;
- :mod:`cogflex.fit.checks`: diagnostics and the exact-vs-interpolated check;
- :mod:`cogflex.fit.schema`: the fit file (``.nc``) written, read and checked;
- :mod:`cogflex.fit.fitting`: :func:`fit`, the front door; :mod:`cogflex.fit.options`: sampler settings;
- :mod:`cogflex.fit.simulate`, :mod:`cogflex.fit.predictive`, :mod:`cogflex.fit.ppc`: synthetic participants and
  posterior predictive checks; :mod:`cogflex.fit.compare`: PSIS-LOO comparison.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cogflex.fit.fitting import FitResult, FitWarning, fit, summarize_fit
    from cogflex.fit.models import CognitiveModel, load_model, register
    from cogflex.fit.options import FitOptions
    from cogflex.fit.schema import load_fit, model_of
    from cogflex.fit.simulate import Design, design_trials, draw_parameters, simulate_trials, to_ebb_and_flow

__all__ = ["fit", "FitOptions", "FitWarning", "FitResult", "load_fit", "summarize_fit", "load_model",
           "CognitiveModel", "register", "model_of", "Design", "design_trials", "draw_parameters",
           "simulate_trials", "to_ebb_and_flow"]

#: Where each exported name lives; imported on first use (the command line's --help loads no PyTorch).
_LAZY = {"fit": "fitting", "FitResult": "fitting", "FitWarning": "fitting", "summarize_fit": "fitting",
         "FitOptions": "options", "load_fit": "schema", "model_of": "schema", "CognitiveModel": "models",
         "load_model": "models", "register": "models", "Design": "simulate", "design_trials": "simulate",
         "draw_parameters": "simulate", "simulate_trials": "simulate", "to_ebb_and_flow": "simulate"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"cogflex.fit.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'cogflex.fit' has no attribute {name!r}")


class _FittingPackage(types.ModuleType):
    """The :mod:`cogflex.fit` package, callable as :func:`cogflex.fit.fitting.fit` (``cf.fit(data, model)``)."""

    def __call__(self, *args, **kwargs) -> FitResult:
        """:func:`cogflex.fit.fitting.fit`."""
        from cogflex.fit.fitting import fit

        return fit(*args, **kwargs)


sys.modules[__name__].__class__ = _FittingPackage
