"""Small model specs and trial tables for the fitting-layer tests (each runs in well under a second)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cogflex.data.dataset import TrialData
from cogflex.data.schema import derive
from cogflex.fit.simulate import Design, design_trials

#: Tiny boxes: 3 nodes per parameter so that the middle node sits at box position 0.5 (logit 0).
FLEXIBLE_PARAMETERS = {
    "gate_timescale": {"lower": 1.0, "upper": 4.0, "scale": "log", "points": 3},
    "weight_timescale": {"lower": 20.0, "upper": 80.0, "scale": "log", "points": 3},
    "regularization": {"lower": 0.05, "upper": 0.2, "scale": "linear", "points": 3},
}
FORGETFUL_PARAMETERS = {"timescale": {"lower": 2.0, "upper": 50.0, "scale": "log", "points": 3}}
#: Short tutorial, capped practice, float64 (so that tables match the numpy reference to ~1e-12).
TINY_NETWORK = {"substeps": 4, "tutorial_blocks": 2, "tutorial_block_trials": 30, "max_practice_trials": 60,
                "histories": 1, "seed": 0, "dtype": "float64"}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def toml_text(data: dict, prefix: str = "") -> str:
    """A (nested) mapping of scalars as TOML."""
    scalars = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    lines = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(toml_text(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines) + "\n"


def model_dict(variant: str, *, parameters: dict | None = None, network: dict | None = None, **extra) -> dict:
    """A model spec mapping: ``flexible``, ``forgetful`` (tiny NTA boxes) or ``descriptive``."""
    if variant == "descriptive":
        return {"name": "tiny-descriptive", "kind": "descriptive", **extra}
    params = {"flexible": FLEXIBLE_PARAMETERS, "forgetful": FORGETFUL_PARAMETERS}[variant]
    params = {k: dict(v) for k, v in params.items()}
    for name, changes in (parameters or {}).items():
        params.setdefault(name, {}).update(changes)
    return {"name": f"tiny-{variant}", "kind": "nta", "variant": variant, "parameters": params,
            "network": {**TINY_NETWORK, **(network or {})}, **extra}


def write_model(directory: Path, variant: str, **changes) -> Path:
    """Write :func:`model_dict` as ``directory/tiny-<variant>.toml``; return the path."""
    data = model_dict(variant, **changes)
    path = Path(directory) / f"{data['name']}.toml"
    path.write_text(toml_text(data))
    return path


def tiny_trials(*, participants: int = 2, sessions: int = 3, trials_per_session: int = 20, first_session: int = 3,
                seed: int = 1, error_rate: float = 0.15) -> TrialData:
    """A generated design with varied RTs and some errors (response != correct_response).

    RTs are drawn between 0.2 and 2.5 s; two trials per participant fall outside the fitting bounds
    (0.1 s and 3.4 s) so that cleaning has something to remove besides each session's first trial.
    """
    data = design_trials(Design(participants=participants, sessions=sessions, trials_per_session=trials_per_session,
                                first_session=first_session, seed=seed))
    df = data.trials.copy()
    rng = np.random.default_rng(seed + 100)
    n = len(df)
    df["rt"] = rng.uniform(0.2, 2.5, n)
    for pid in df["participant"].unique():
        rows = np.flatnonzero((df["participant"] == pid).to_numpy())
        df.loc[rows[5], "rt"] = 0.1
        df.loc[rows[9], "rt"] = 3.4
    wrong = rng.random(n) < error_rate
    dirs = np.array(["U", "D", "L", "R"])
    correct_idx = pd.Series(df["correct_response"].astype(str)).map({d: i for i, d in enumerate(dirs)}).to_numpy()
    shifted = dirs[(correct_idx + rng.integers(1, 4, n)) % 4]
    response = np.where(wrong, shifted, df["correct_response"].astype(str).to_numpy())
    df["response"] = pd.Categorical(response, categories=list(dirs))
    df["correct"] = pd.array(~wrong, dtype="boolean")
    return data.with_trials(derive(df))


def kept_mask(trials: pd.DataFrame, rt_min: float = 0.15, rt_max: float = 3.0) -> np.ndarray:
    """The fitting cleaning, re-derived: drop each session's first trial and RTs outside [rt_min, rt_max]."""
    key = trials["participant"].astype(str) + "/" + trials["session"].astype(str)
    first = ~key.duplicated().to_numpy()
    rt = trials["rt"].to_numpy(dtype=float)
    return ~first & (rt >= rt_min) & (rt <= rt_max)


# -- PyMC points -------------------------------------------------------------------------------------------------


def value_point(model, values: dict) -> dict:
    """The model's value-variable point (transformed space) for untransformed free-variable ``values``."""
    import pytensor.tensor as pt

    point = {}
    for rv in model.free_RVs:
        value = np.asarray(values[rv.name], dtype=float)
        transform = model.rvs_to_transforms.get(rv)
        if transform is not None:
            value = np.asarray(transform.forward(pt.as_tensor(value), *rv.owner.inputs).eval())
        point[model.rvs_to_values[rv].name] = value
    return point


def compile_values(model, outputs: list):
    """A function of the free variables' untransformed values (dict) returning ``outputs`` (graphs of the model's
    random or value variables). FAST_COMPILE: no C compilation (seconds saved per graph)."""
    replaced = model.replace_rvs_by_values(outputs)
    inputs = [model.rvs_to_values[rv] for rv in model.free_RVs]
    fn = model.compile_fn(replaced, inputs=inputs, point_fn=False, on_unused_input="ignore", mode="FAST_COMPILE")

    def call(values: dict) -> list[np.ndarray]:
        point = value_point(model, values)
        return [np.asarray(v) for v in fn(*[point[v.name] for v in inputs])]

    return call


def evaluate(model, expr, values: dict) -> np.ndarray:
    """``expr`` (a graph of the model's random variables) at free-variable ``values``, via the value variables."""
    return compile_values(model, [expr])(values)[0]


def likelihood_graph(model):
    """Model log density minus the priors' (Jacobians included in both): the likelihood potential.

    The priors include potentials other than ``likelihood`` (the group distributions of hierarchical fits
    sampled in location-spread coordinates, :func:`cogflex.fit.pymc_model._rt_location_spread`).
    """
    priors = [*model.free_RVs, *(p for p in model.potentials if p.name != "likelihood")]
    return model.logp() - model.logp(vars=priors)


def likelihood_part(model, values: dict) -> float:
    """:func:`likelihood_graph` at free-variable ``values``."""
    return float(compile_values(model, [likelihood_graph(model)])(values)[0])
