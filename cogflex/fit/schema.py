"""The fit file: one schema for writing, reading and checking saved fits (``<model>.nc``, an ArviZ DataTree).

Groups:

- ``posterior``: the model's free parameters (per participant along ``participant``) and deterministics
  (network parameters on their own scale); fixed parameters are attributes (``fixed_parameters``);
- ``sample_stats``: the sampler's statistics over ``(chain, draw)`` — one participant's fit or a
  hierarchical fit — or ``(participant, chain, draw)`` for independent per-participant fits;
- ``log_likelihood``: variable ``trial`` over ``(chain, draw, observation)``, float32: per observed trial,
  the **joint log density of correctness and RT in seconds**, ``log P(correct) + log p(RT)`` (the trials
  kept by :data:`cogflex.fit.prepare.FIT_CLEANING`, in the order of ``observed_data``); ``observation``
  carries a ``participant`` coordinate so that plain ArviZ can compute per-participant PSIS-LOO;
- ``observed_data``: the observed trials (rt in s, correct, session, switch, congruent, run_position, the
  row of the loaded trial file) with the same ``participant`` coordinate;
- ``posterior_predictive`` (optional): replications of rt and correct.

Attributes (:data:`FIT_ATTRS`): the model (``model``, ``model_family``, ``model_spec`` JSON, ``model_source``
for a model from a Python file), the data (``data_source``, ``data_digest``, ``trial_set``: hash of exactly
which trials enter the likelihood, ``participants``), the sampler and seeds, timings, the mode search and the
exact-vs-interpolated check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import xarray as xr

from cogflex import __version__
from cogflex.errors import CogflexError
from cogflex.io import atomic_path

__all__ = ["FIT_ATTRS", "OBSERVED_VARIABLES", "fit_tree", "save_tree", "load_fit", "check_fit", "trial_set_digest",
           "model_of", "fixed_parameters", "as_fit"]

#: Attributes every saved fit has (:func:`fit_tree`): ``str`` plain text, ``int`` an integer,
#: ``list``/``dict`` JSON text of that type; ``optional`` ones are checked when present.
FIT_ATTRS = {"model": str, "n_trials": int, "participants": list, "hierarchical": int, "seconds": dict,
              "sampler": str, "draws": int, "chains": int, "seed": int, "data_digest": str, "trial_set": str,
              "notes": list, "model_spec": dict}
OPTIONAL_FIT_ATTRS = {"interpolation_check": list, "box_bounds": list, "weak_parameters": list, "job_seeds": list,
                      "separate_modes": list,
                      "grid_refinement": list, "refine": dict,
                      "data_warnings": list,
                      "mode_search": list,
                      "tune": int}
OBSERVED_VARIABLES = ("rt", "correct", "participant", "session", "switch", "congruent", "run_position", "row")


def check_fit(tree: xr.DataTree, path) -> None:
    """Raise :class:`CogflexError` naming ``path`` and the problem unless ``tree`` is a complete cogflex fit.

    Checks what comparisons and reports read: the groups, the attributes (JSON ones parsed), the pointwise
    log-likelihood's dimensions, the observed trials and the participants.
    """
    def bad(what: str):
        raise CogflexError(f"{path}: {what} (not a complete cogflex fit)")

    for group in ("posterior", "log_likelihood", "observed_data", "sample_stats"):
        if group not in tree.children:
            bad(f"group {group!r} is missing")
    attrs = tree.attrs
    parsed = {}
    for key, kind in {**FIT_ATTRS, **OPTIONAL_FIT_ATTRS}.items():
        if key not in attrs:
            if key in FIT_ATTRS:
                bad(f"attribute {key!r} is missing")
            continue
        value = attrs[key]
        if kind is int:
            try:
                parsed[key] = int(value)
            except (TypeError, ValueError, OverflowError):
                bad(f"attribute {key!r} is not an integer: {value!r}")
        elif kind is str:
            if not isinstance(value, str) or not value:
                bad(f"attribute {key!r} is not a non-empty string: {value!r}")
        else:
            try:
                parsed[key] = json.loads(value) if isinstance(value, str) else None
            except ValueError:
                parsed[key] = None
            if not isinstance(parsed[key], kind):
                bad(f"attribute {key!r} is not a JSON {'list' if kind is list else 'object'}: {value!r}")
    participants = parsed["participants"]
    if not participants or not all(isinstance(p, str) for p in participants):
        bad(f"attribute 'participants' must list participant ids, got {attrs['participants']!r}")
    for check in parsed.get("interpolation_check", []):
        if not (isinstance(check, dict) and "participant" in check
                and isinstance(check.get("difference"), int | float)):
            bad("attribute 'interpolation_check' holds an entry without participant and difference")
    ll = tree["log_likelihood"].to_dataset()
    if "trial" not in ll.data_vars:
        bad("the log_likelihood group has no variable 'trial'")
    trial = ll["trial"]
    if set(trial.dims) != {"chain", "draw", "observation"} or trial.dtype.kind not in "fiu":
        bad(f"log_likelihood 'trial' must be numbers over (chain, draw, observation), has {trial.dims}")
    n = trial.sizes["observation"]
    if n == 0 or trial.sizes["draw"] == 0 or trial.sizes["chain"] == 0:
        bad(f"log_likelihood 'trial' is empty (shape {dict(trial.sizes)})")
    if np.isnan(trial.values).any() or np.isposinf(trial.values).any():
        bad("log_likelihood 'trial' holds NaN or +inf values")
    observed = tree["observed_data"].to_dataset()
    for name in OBSERVED_VARIABLES:
        if name not in observed.variables or observed[name].dims != ("observation",):
            bad(f"observed_data has no variable {name!r} over the observations")
    if observed.sizes["observation"] != n:
        bad(f"observed_data has {observed.sizes['observation']} trials, log_likelihood {n}")
    if "loo_pit" in tree.children and tree["loo_pit"].to_dataset().sizes.get("observation") != n:
        bad(f"loo_pit does not have the log_likelihood's {n} trials")
    seen = set(observed["participant"].values.astype(str))
    if seen != set(participants):
        bad(f"the observed trials' participants {sorted(seen)} are not the fit's participants {participants}")
    post = tree["posterior"].to_dataset()
    for dim in ("chain", "draw"):
        if post.sizes.get(dim) != trial.sizes[dim]:
            bad(f"posterior has {post.sizes.get(dim)} {dim}s, log_likelihood {trial.sizes[dim]}")
    if "participant" in post.dims and sorted(map(str, post["participant"].values)) != sorted(participants):
        bad(f"the posterior's participants are not the fit's participants {participants}")
    stats = tree["sample_stats"].to_dataset()
    for name, var in stats.data_vars.items():
        if not set(var.dims) <= {"chain", "draw", "participant"} or "chain" not in var.dims or "draw" not in var.dims:
            bad(f"sample_stats {name!r} has dimensions {var.dims}")



def fit_tree(model, fd, options, results: list[dict], *, hierarchical: bool) -> xr.DataTree:
    """The fit's DataTree from the sampled jobs' results (one per participant, or one hierarchical job).

    ``model`` is the fitted model object, ``fd`` the prepared data, ``options`` the
    :class:`~cogflex.fit.fitting.FitOptions`.
    """
    if len(results) == 1:
        post = results[0]["posterior"]
        stats = results[0]["sample_stats"]
        ll = results[0]["log_likelihood"]
    else:
        post = xr.concat([r["posterior"] for r in results], dim="participant", data_vars="minimal",
                         coords="minimal", compat="override", join="outer")
        stats = xr.concat([r["sample_stats"].expand_dims(participant=[fd.participants[i]])
                           for i, r in enumerate(results)], dim="participant")
        ll = np.concatenate([r["log_likelihood"] for r in results], axis=-1)
    post = post.assign_coords(participant=fd.participants)
    n = fd.n_trials
    tr = fd.trials
    trial_coords = {"observation": np.arange(n), "participant": ("observation", tr["participant"].to_numpy(dtype=str))}
    log_lik = xr.Dataset({"trial": (("chain", "draw", "observation"), ll)},
                         coords={"chain": post["chain"].values, "draw": post["draw"].values, **trial_coords})
    observed = xr.Dataset({
        "rt": ("observation", tr["rt"].to_numpy(dtype=float)),
        "correct": ("observation", tr["correct"].to_numpy(dtype=np.int8)),
        "session": ("observation", tr["session"].to_numpy()),
        "switch": ("observation", tr["switch"].to_numpy(dtype=np.int8)),
        "congruent": ("observation", tr["congruent"].to_numpy(dtype=np.int8)),
        "run_position": ("observation", tr["run_position"].to_numpy()),
        "row": ("observation", tr["row"].to_numpy()),
    }, coords=trial_coords)
    groups = {"posterior": post, "sample_stats": stats, "log_likelihood": log_lik, "observed_data": observed}
    if all(r.get("loo_pit") is not None for r in results):
        # LOO-PIT of each trial's RT (sampling.loo_pit); units saved before it existed have none
        pit = np.concatenate([r["loo_pit"] for r in results])
        groups["loo_pit"] = xr.Dataset({"rt": ("observation", pit)}, coords=trial_coords)
    tree = xr.DataTree.from_dict(groups)
    seconds = {k: float(sum(r["seconds"].get(k, 0.0) for r in results))
               for k in ("tables", "mode_search", "refinement", "sampling", "loo_pit", "total")}
    tree.attrs.update({
        "model": model.name,
        "model_family": model.family,
        "model_spec": json.dumps(model.to_dict()),
        "model_source": model.source,
        "fixed_parameters": json.dumps(model.fixed),
        "data_source": str(fd.source),
        "data_digest": fd.digest,
        "n_trials": n,
        "participants": json.dumps(fd.participants),
        "trial_set": trial_set_digest(fd),
        "hierarchical": int(hierarchical),
        "seed": options.seed,
        "job_seeds": json.dumps([r["seed"] for r in results]),
        "sampler": results[0]["sampler"],
        "draws": options.draws, "tune": options.tune, "chains": options.chains,
        "target_accept": options.target_accept,
        "refine": options.refine_record(),
        "seconds": json.dumps(seconds),
        "mode_search": json.dumps([r.get("mode_search") for r in results]),
        "interpolation_check": json.dumps([c for r in results for c in (r.get("interpolation_check") or [])]),
        "box_bounds": json.dumps([c for r in results for c in (r.get("box_bounds") or [])]),
        "weak_parameters": json.dumps([c for r in results for c in (r.get("weak_parameters") or [])]),
        "separate_modes": json.dumps([c for r in results for c in (r.get("separate_modes") or [])]),
        "grid_refinement": json.dumps([r["grid_refinement"] for r in results if r.get("grid_refinement")]),
        "notes": json.dumps(fd.notes),
        "data_warnings": json.dumps(list(getattr(fd, "warnings", []))),
        "cleaning": fd.cleaning.to_json(),
        "cogflex_version": __version__,
    })
    return tree


def trial_set_digest(fd) -> str:
    """Hash of exactly which trials (data file content, participants, rows) enter the likelihood."""
    h = hashlib.sha256(fd.digest.encode())
    h.update(fd.trials[["participant", "row"]].to_csv(index=False).encode())
    return h.hexdigest()


def save_tree(tree: xr.DataTree, path: str | Path) -> None:
    """Write a fit to netCDF atomically."""
    with atomic_path(path) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")


def load_fit(path: str | Path) -> xr.DataTree:
    """Open a saved fit, with a clear error for files that are not cogflex fits."""
    path = Path(path)
    if not path.exists():
        raise CogflexError(f"{path}: no such fit file")
    try:
        tree = xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as exc:  # noqa: BLE001 - any read failure means a damaged file
        raise CogflexError(f"{path}: not a readable netCDF fit ({type(exc).__name__}: {exc})") from None
    for group in ("posterior", "log_likelihood"):
        if group not in tree.children:
            raise CogflexError(f"{path}: group {group!r} is missing (not a complete cogflex fit)")
    return tree




def model_of(tree: xr.DataTree):
    """The model object a fit was made with (rebuilt from its ``model_spec``; user models re-import their file)."""
    from cogflex.fit.models import model_from_dict

    spec = json.loads(tree.attrs["model_spec"])
    return model_from_dict(spec, source=str(tree.attrs.get("model_source", "") or ""))


def fixed_parameters(tree: xr.DataTree) -> dict[str, float]:
    """The fit's fixed parameters (not in the posterior), by name."""
    return json.loads(tree.attrs.get("fixed_parameters", "{}"))


#: Attributes an outside fit takes from the cogflex fit of the same trials.
_TRIAL_ATTRS = ("data_source", "data_digest", "trial_set", "participants", "n_trials", "notes", "cleaning")


def as_fit(idata, *, like: xr.DataTree, model: str, description: str = "", variable: str | None = None
           ) -> xr.DataTree:
    """An outside model's InferenceData/DataTree as a cogflex fit of the same trials as ``like``.

    Parameters
    ----------
    idata
        Output of the outside fit (``arviz.InferenceData`` or ``xarray.DataTree``) with a ``posterior``
        and a ``log_likelihood`` group holding one value per trial over ``(chain, draw, <trial dim>)``:
        the joint log density of correctness and RT in seconds, on exactly the trials of ``like`` in the
        order of its ``observed_data``.
    like
        A cogflex fit of those trials (its trial set, data hash and observed trials are taken over).
    model
        The outside model's name in comparisons and reports.
    variable
        Name of the pointwise variable in ``log_likelihood`` (default: the only one).

    Raises
    ------
    CogflexError
        When the outside log-likelihood does not have one finite value per trial of ``like``.
    """
    groups = {name: _group(idata, name) for name in ("posterior", "log_likelihood", "sample_stats")}
    if groups["posterior"] is None or groups["log_likelihood"] is None:
        raise CogflexError(f"{model}: the outside fit needs posterior and log_likelihood groups")
    ll = groups["log_likelihood"]
    names = [variable] if variable else list(ll.data_vars)
    if len(names) != 1 or names[0] not in ll:
        raise CogflexError(f"{model}: name the pointwise variable of log_likelihood (variable=...; has "
                           f"{', '.join(ll.data_vars)})")
    trial = ll[names[0]]
    extra = [d for d in trial.dims if d not in ("chain", "draw")]
    n = int(like.attrs["n_trials"])
    if len(extra) != 1 or trial.sizes[extra[0]] != n:
        raise CogflexError(f"{model}: log_likelihood {names[0]!r} has dimensions {dict(trial.sizes)}; expected "
                           f"(chain, draw, one trial dimension of {n} trials: those of the cogflex fit)")
    values = trial.transpose("chain", "draw", extra[0]).values.astype(np.float32)
    if not np.isfinite(values).all():
        raise CogflexError(f"{model}: log_likelihood {names[0]!r} holds non-finite values")
    observed = like["observed_data"].to_dataset()
    post = groups["posterior"]
    chains, draws = values.shape[:2]
    log_lik = xr.Dataset({"trial": (("chain", "draw", "observation"), values)},
                         coords={"chain": np.arange(chains), "draw": np.arange(draws),
                                 "observation": observed["observation"].values,
                                 "participant": ("observation", observed["participant"].values)})
    stats = groups["sample_stats"]
    if stats is None or not {"chain", "draw"} <= set(stats.dims):
        stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool))})
    stats = stats[[v for v in stats.data_vars if set(stats[v].dims) <= {"chain", "draw"}]]
    tree = xr.DataTree.from_dict({"posterior": post.assign_coords(chain=np.arange(chains), draw=np.arange(draws)),
                                  "sample_stats": stats.assign_coords(chain=np.arange(chains), draw=np.arange(draws)),
                                  "log_likelihood": log_lik, "observed_data": observed})
    tree.attrs.update({k: like.attrs[k] for k in _TRIAL_ATTRS if k in like.attrs})
    tree.attrs.update({
        "model": model, "model_family": "external", "model_source": "", "fixed_parameters": "{}",
        "model_spec": json.dumps({"kind": "external", "name": model, "description": description}),
        "hierarchical": 0, "seed": -1, "job_seeds": "[]", "sampler": "external", "draws": draws, "tune": 0,
        "chains": chains, "target_accept": 0.0, "seconds": json.dumps({"tables": 0.0, "mode_search": 0.0,
                                                                         "sampling": 0.0, "total": 0.0}),
        "mode_search": "[]", "interpolation_check": "[]", "wall_seconds": 0.0, "cogflex_version": __version__})
    return tree


def _group(idata, name: str) -> xr.Dataset | None:
    """One group of an InferenceData or DataTree as a Dataset (None when absent)."""
    if isinstance(idata, xr.DataTree):
        return idata[name].to_dataset() if name in idata.children else None
    return getattr(idata, name, None)
