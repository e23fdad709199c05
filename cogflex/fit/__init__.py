"""Fitting: the NTA network as a trial-by-trial cognitive model of human task switching.

- :mod:`cogflex.fit.sequence` maps a paradigm onto the network (Ebb and Flow, generic two-task);
- :mod:`cogflex.fit.network` runs the network on a participant's own trial sequence;
- :mod:`cogflex.fit.spec` reads the model specs in ``models/fitting`` (flexible, forgetful, descriptive);
- :mod:`cogflex.fit.engine` builds the PyMC models (predictor grids interpolated inside PyMC);
- :mod:`cogflex.fit.fitting` samples and saves fits (DataTree, netCDF) with diagnostics;
- :mod:`cogflex.fit.simulate` simulates synthetic participants from each model.
"""

from cogflex.fit.fitting import FitOptions, FitResult, FitWarning, diagnostics, fit, load_fit
from cogflex.fit.simulate import Design, design_trials, draw_parameters, simulate_trials, to_ebb_and_flow
from cogflex.fit.spec import ModelSpec, load_model

__all__ = ["fit", "FitOptions", "FitWarning", "FitResult", "load_fit", "diagnostics", "load_model", "ModelSpec",
           "Design", "design_trials", "draw_parameters", "simulate_trials", "to_ebb_and_flow"]
