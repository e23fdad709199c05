"""Model comparison: PSIS-LOO per model, per participant and pooled, with stacking weights.

Fits are compared only when they were made on exactly the same trials (same data file content, same
participants, same cleaned rows): every saved fit records a hash of that trial set (attribute
``trial_set``), and :func:`check_comparable` refuses anything else with a message naming the files.

Per participant, each model's pointwise log-likelihood is restricted to that participant's trials and
compared with :func:`arviz.compare` (PSIS-LOO, stacking weights, ELPD differences with their standard
errors); the pooled comparison uses all trials (for independent per-participant fits the pooled ELPD is
the sum of the participants').

Memory: the pointwise log-likelihood is stored as float32 (4 bytes x chains x draws x trials: 4 x 1,000
draws x 50,000 trials = 800 MB per model); ArviZ works on one participant at a time in float64, so peak
memory is about the fits' size plus 8 bytes x draws x one participant's trials. ``thin=k`` keeps every
k-th draw when that is still too much.

Large datasets are fitted in shards (``cogflex fit --shard K/N``: disjoint sets of participants, one output
folder each) and compared shard by shard (:func:`group_shards`, :func:`compare_shards`): only one shard's fits
are in memory at a time, and the pooled comparison is assembled from the participants' pointwise PSIS-LOO
values (:func:`pool_loos`), which is exactly what PSIS-LOO over all trials with each participant's own
smoothed weights gives.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from cogflex.errors import CogflexError
from cogflex.fit.checks import participants_diagnostics
from cogflex.fit.schema import check_fit, load_fit
from cogflex.fit.verdict import (
    NO_QUALITY,
    PARETO_K_BAD,
    VERDICT_RULES,
    fit_quality,
    pool_quality,
    verdict_caveats,
    verdict_phrase,
)
from cogflex.io import atomic_path

__all__ = ["Comparison", "FitSet", "compare_fits", "check_comparable", "load_fits", "find_fit_files",
           "PARETO_K_BAD", "COMPARISON_COLUMNS", "PAIRWISE_COLUMNS", "VERDICT_RULES", "verdict_phrase", "MIN_DRAWS",
           "check_fit", "group_shards", "compare_shards", "pool_loos"]

#: Fewest draws (chains x draws) PSIS-LOO can smooth: ArviZ fits the Pareto tail to S / 5 >= 5 draws.
MIN_DRAWS = 25

#: Columns of ``comparison.csv`` (one row per scope x model; scope "pooled" has participant "all").
#: ``rhat_max`` .. ``interpolation_error`` are the fit's diagnostics over the scope's participants;
#: ``caveat`` (winner's row) says in words why a lead is not decisive.
COMPARISON_COLUMNS = ["scope", "participant", "model", "rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse",
                      "weight", "n_trials", "pareto_k_max", "n_pareto_k_bad", "share_pareto_k_bad", "winner",
                      "decisive", "rhat_max", "ess_bulk_min", "divergences", "ebfmi_min", "interpolation_error",
                      "caveat"]

#: Columns of ``<name>_pairwise.csv``: ELPD(model_a) - ELPD(model_b), its SE and z, and each fit's
#: interpolation error over the scope (largest |exact - interpolated| log-likelihood, summed over participants).
PAIRWISE_COLUMNS = ["scope", "participant", "model_a", "model_b", "elpd_diff", "se", "z", "interpolation_error_a",
                    "interpolation_error_b"]



@dataclass
class FitSet:
    """Fits of several models to the same trials: ``{model name: DataTree}`` and their files."""

    trees: dict[str, xr.DataTree]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        """Model names, in the order given."""
        return list(self.trees)

    @property
    def participants(self) -> list[str]:
        """Participants of the fits (the same in all of them)."""
        first = next(iter(self.trees.values()))
        return [str(p) for p in json.loads(first.attrs["participants"])]

    @property
    def attrs(self) -> dict:
        """Attributes of the first fit (data source, hashes, cleaning)."""
        return dict(next(iter(self.trees.values())).attrs)


def find_fit_files(paths) -> list[Path]:
    """``*.nc`` fit files from a mix of files and directories (directories: every ``*.nc`` directly inside)."""
    files: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.glob("*.nc") if not f.name.startswith("."))
            if not found:
                raise CogflexError(f"{p}: no fit files (*.nc) in this directory")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise CogflexError(f"{p}: no such file or directory")
    seen: dict[Path, Path] = {}
    for f in files:
        if f.resolve() in seen:
            raise CogflexError(f"{f}: the same fit file given twice (also as {seen[f.resolve()]}): a comparison needs "
                               "fits of different models")
        seen[f.resolve()] = f
    return files


def _load_fit(path: Path) -> xr.DataTree:
    """:func:`load_fit` without a stray traceback after its one-line error.

    h5netcdf leaves a half-built ``File`` behind when a damaged file fails to open (e.g. a bad metadata checksum);
    its ``__del__`` then raises AttributeError ('_writable'), which Python prints as "Exception ignored in ...
    Traceback" on stderr whenever the object is freed, next to cogflex's error line. The failed attempt is freed
    here with that one message silenced.
    """
    import gc
    import sys

    try:
        return load_fit(path)
    except CogflexError as exc:
        error = exc
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if not (isinstance(unraisable.exc_value, AttributeError)
                and getattr(unraisable.object, "__module__", "").startswith("h5netcdf")):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        error.__context__ = error.__cause__ = None  # the open attempt's frames hold the half-built File
        gc.collect()
    finally:
        sys.unraisablehook = previous
    raise error.with_traceback(None)


def load_fits(paths) -> FitSet:
    """Load the fits in ``paths`` (files or directories) and check that they can be compared."""
    files = find_fit_files(paths)
    trees: dict[str, xr.DataTree] = {}
    where: dict[str, Path] = {}
    for f in files:
        tree = _load_fit(f)
        check_fit(tree, f)
        name = str(tree.attrs.get("model", f.stem))
        if name in trees:
            raise CogflexError(f"two fits of model {name!r}: {where[name]} and {f} (compare fits of different "
                               "models made on the same trials)")
        trees[name] = tree
        where[name] = f
    fits = FitSet(trees, where)
    check_comparable(fits)
    return fits


def check_comparable(fits: FitSet) -> None:
    """Raise :class:`CogflexError` unless there are fits of two or more models, all on the same trials.

    The fits must also be of one kind: all hierarchical or all per participant.
    """
    if len(fits.trees) < 1:
        raise CogflexError("no fits to compare")
    if len(fits.trees) < 2:
        name = next(iter(fits.trees))
        raise CogflexError(f"only one model to compare ({name}, {fits.paths.get(name, 'in memory')}): a comparison "
                           "needs fits of at least two different models to the same trials")
    names = list(fits.trees)
    ref = fits.trees[names[0]]
    ref_where = fits.paths.get(names[0], names[0])
    for name in names[1:]:
        tree = fits.trees[name]
        where = fits.paths.get(name, name)
        p1, p2 = json.loads(tree.attrs["participants"]), json.loads(ref.attrs["participants"])
        if p1 != p2:  # before the data hash, which covers the selected participants' trials only
            raise CogflexError(f"{where} and {ref_where} were fitted to different participants ({p1} vs {p2}; data "
                               f"{tree.attrs.get('data_source')} vs {ref.attrs.get('data_source')}): models can only "
                               "be compared on the same trials")
        if tree.attrs.get("data_digest") != ref.attrs.get("data_digest"):
            raise CogflexError(
                f"{where} and {ref_where} were fitted to different data ({tree.attrs.get('data_source')} vs "
                f"{ref.attrs.get('data_source')}; data hashes {str(tree.attrs.get('data_digest'))[:12]} vs "
                f"{str(ref.attrs.get('data_digest'))[:12]}): models can only be compared on the same trials")
        if tree.attrs.get("trial_set") != ref.attrs.get("trial_set"):
            p1, p2 = json.loads(tree.attrs["participants"]), json.loads(ref.attrs["participants"])
            detail = (f"participants {p1} vs {p2}" if p1 != p2 else
                      f"{tree.attrs['n_trials']} vs {ref.attrs['n_trials']} trials after cleaning")
            raise CogflexError(f"{where} and {ref_where} were fitted to different trial sets of the same data "
                               f"({detail}): models can only be compared on the same trials")
        h1, h2 = (bool(int(t.attrs.get("hierarchical", 0))) for t in (tree, ref))
        if h1 != h2:
            kind = {True: "a hierarchical fit", False: "per-participant fits"}
            raise CogflexError(f"{where} is {kind[h1]} and {ref_where} {kind[h2]}: compare fits of one kind (refit "
                               "one model with --hierarchical or --per-participant)")
        n1, n2 = tree["log_likelihood"]["trial"].sizes["observation"], ref["log_likelihood"]["trial"].sizes[
            "observation"]
        if n1 != n2:
            raise CogflexError(f"{where} has {n1} pointwise log-likelihood values, {ref_where} {n2}: damaged fit")


@dataclass
class Comparison:
    """PSIS-LOO comparison of several models.

    Attributes
    ----------
    table
        One row per scope (``pooled`` or ``participant``) x model, columns :data:`COMPARISON_COLUMNS`.
        ``elpd_diff``/``dse``: difference to the best model of that scope and its standard error;
        ``weight``: stacking weight; ``decisive``: on the winner's row, whether it beats the runner-up by more
        than 2 standard errors of the difference *and* both fits pass :data:`VERDICT_RULES` (R-hat, ESS,
        divergences, E-BFMI, Pareto k, interpolation error); ``caveat``: why not, in words.
    wins
        Per model: participants won, won decisively, and the share of participants.
    pairwise
        Every pair of models per scope: ``elpd_diff`` = ELPD(model_a) - ELPD(model_b) and its standard error
        ``se`` (sqrt(n) x SD of the pointwise differences), ``z`` = elpd_diff / se. One sign convention
        everywhere: ``model_a`` is the model ranked higher in the pooled comparison, so pooled differences are
        >= 0 and a participant's negative difference means that participant goes the other way; the same
        fits give the same table whatever order they were given in.
    """

    table: pd.DataFrame
    wins: pd.DataFrame
    thin: int = 1
    pairwise: pd.DataFrame | None = None

    def pooled(self) -> pd.DataFrame:
        """Rows of the pooled comparison."""
        return self.table[self.table["scope"] == "pooled"].reset_index(drop=True)

    def per_participant(self) -> pd.DataFrame:
        """Rows of the per-participant comparisons."""
        return self.table[self.table["scope"] == "participant"].reset_index(drop=True)

    def winners(self) -> dict[str, dict]:
        """``{participant or "all": {"model", "runner_up", "elpd_diff", "dse", "decisive", "caveat"}}``."""
        out = {}
        for pid, grp in self.table.groupby("participant", sort=False):
            grp = grp.sort_values("rank")
            best = grp.iloc[0]
            second = grp.iloc[1] if len(grp) > 1 else None
            out[str(pid)] = {"model": best["model"], "runner_up": None if second is None else second["model"],
                             "elpd_diff": None if second is None else float(-second["elpd_diff"]),
                             "dse": None if second is None else float(second["dse"]),
                             "decisive": bool(best["decisive"]), "caveat": str(best["caveat"] or "")}
        return out

    def to_csv(self, path: str | Path) -> None:
        """Write :attr:`table` atomically, and :attr:`pairwise` next to it (``<name>_pairwise.csv``)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            self.table.to_csv(tmp, index=False, float_format="%.6g")
        if self.pairwise is not None:
            with atomic_path(path.with_name(f"{path.stem}_pairwise{path.suffix or '.csv'}")) as tmp:
                self.pairwise.to_csv(tmp, index=False, float_format="%.6g")


def _restricted(tree: xr.DataTree, participant: str | None, thin: int) -> xr.DataTree:
    post = tree["posterior"].to_dataset()
    ll = tree["log_likelihood"].to_dataset()[["trial"]]
    if participant is not None:
        obs = tree["observed_data"].to_dataset()
        rows = np.flatnonzero(obs["participant"].values.astype(str) == participant)
        ll = ll.isel(observation=rows)
        if "participant" in post.dims:
            post = post.sel(participant=participant)
    if thin > 1:
        post, ll = post.isel(draw=slice(None, None, thin)), ll.isel(draw=slice(None, None, thin))
    return xr.DataTree.from_dict({"posterior": post, "log_likelihood": ll})


def _loo(tree: xr.DataTree):
    """PSIS-LOO of ``tree`` (``trial`` log-likelihood), pointwise."""
    import arviz as az

    with warnings.catch_warnings():
        # the Pareto-k share is reported in the table instead of ArviZ's generic warning
        warnings.filterwarnings("ignore", message=".*shape parameter of Pareto.*")
        warnings.simplefilter("ignore", RuntimeWarning)
        return az.loo(tree, var_name="trial", pointwise=True)


def pool_loos(parts: list):
    """One PSIS-LOO result over the trials of several participants' results (``parts``, pointwise).

    Each trial keeps its own participant's smoothed importance weights (their relative efficiencies
    differ), so ELPD and p_loo are the sums of the parts' and the standard error is sqrt(n) x SD (ddof 1)
    of all pointwise values, as :func:`arviz.loo` computes it. Only the pointwise values are needed, not
    the log-likelihoods: this is how shards of a large dataset are pooled.
    """
    from arviz_stats.utils import ELPDDataLOO

    if not parts:
        raise CogflexError("no PSIS-LOO results to pool")
    elpd_i = xr.concat([p.elpd_i for p in parts], dim="observation")
    pareto_k = xr.concat([p.pareto_k for p in parts], dim="observation")
    values = np.asarray(elpd_i, dtype=float).ravel()
    se = float(np.sqrt(values.size * values.var(ddof=1))) if values.size > 1 else 0.0
    return ELPDDataLOO(elpd=float(values.sum()), se=se,
                       p=float(sum(p.p for p in parts)), n_samples=min(p.n_samples for p in parts),
                       n_data_points=int(values.size), scale=parts[0].scale,
                       warning=any(p.warning for p in parts), good_k=min(p.good_k for p in parts),
                       elpd_i=elpd_i, pareto_k=pareto_k)


def _scope_rows(loos: dict, scope: str, participant: str, quality: dict | None = None) -> list[dict]:
    """Table rows of one scope; ``quality`` maps each model to its fit's diagnostics over the scope."""
    import arviz as az

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        cmp = az.compare(loos, method="stacking", round_to="none") if len(loos) > 1 else None
    for name, loo in loos.items():
        k = np.asarray(loo.pareto_k, dtype=float).ravel()
        n_bad = int((k > PARETO_K_BAD).sum())
        row = {"scope": scope, "participant": participant, "model": name, "elpd_loo": float(loo.elpd),
               "se": float(loo.se), "p_loo": float(loo.p), "n_trials": int(k.size),
               "pareto_k_max": float(np.nanmax(k)) if k.size else float("nan"), "n_pareto_k_bad": n_bad,
               "share_pareto_k_bad": n_bad / max(k.size, 1)}
        row.update((quality or {}).get(name) or NO_QUALITY)
        if cmp is not None:
            row.update(rank=int(cmp.loc[name, "rank"]), elpd_diff=float(cmp.loc[name, "elpd_diff"]),
                       dse=float(cmp.loc[name, "dse"]), weight=float(cmp.loc[name, "weight"]))
        else:
            row.update(rank=0, elpd_diff=0.0, dse=0.0, weight=1.0)
        rows.append(row)
    rows.sort(key=lambda r: r["rank"])
    for r in rows:
        r["winner"] = r["rank"] == 0
        r["decisive"], r["caveat"] = False, ""
    if len(rows) > 1:
        reasons = verdict_caveats(rows[0], rows[1])
        rows[0]["decisive"], rows[0]["caveat"] = not reasons, "; ".join(reasons)
    return rows


def _pairs(loos: dict, scope: str, participant: str, quality: dict | None = None) -> list[dict]:
    names = list(loos)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            d = np.asarray(loos[a].elpd_i, dtype=float).ravel() - np.asarray(loos[b].elpd_i, dtype=float).ravel()
            se = float(np.sqrt(d.size * d.var())) if d.size > 1 else float("nan")  # as ArviZ's dse
            diff = float(d.sum())
            err = {m: ((quality or {}).get(m) or NO_QUALITY)["interpolation_error"] for m in (a, b)}
            rows.append({"scope": scope, "participant": participant, "model_a": a, "model_b": b, "elpd_diff": diff,
                         "se": se, "z": diff / se if se > 0 else float("nan"), "interpolation_error_a": err[a],
                         "interpolation_error_b": err[b]})
    return rows


def _oriented(pair: dict, rank: dict) -> dict:
    """``pair`` with model_a the higher-ranked model of the pooled comparison (difference and z negated)."""
    if rank[pair["model_a"]] <= rank[pair["model_b"]]:
        return pair
    return dict(pair, model_a=pair["model_b"], model_b=pair["model_a"], elpd_diff=-pair["elpd_diff"], z=-pair["z"],
                interpolation_error_a=pair["interpolation_error_b"],
                interpolation_error_b=pair["interpolation_error_a"])


def _check_draws(fits: FitSet, thin: int) -> None:
    for name, tree in fits.trees.items():
        sizes = tree["log_likelihood"]["trial"].sizes
        kept = sizes.get("chain", 1) * len(range(0, sizes.get("draw", 0), thin))
        if kept < MIN_DRAWS:
            where = fits.paths.get(name, name)
            raise CogflexError(f"{where}: {kept} posterior draws{' after --thin ' + str(thin) if thin > 1 else ''}; "
                               f"PSIS-LOO needs at least {MIN_DRAWS} (fit with more --draws or --chains)")


def _check_thin(thin) -> None:
    if not isinstance(thin, int) or isinstance(thin, bool) or thin < 1:
        raise CogflexError(f"thin must be a positive integer, got {thin!r}")


def compare_fits(fits: FitSet, *, thin: int = 1, progress: bool = False) -> Comparison:
    """PSIS-LOO and stacking comparison of ``fits``, pooled and per participant.

    Parameters
    ----------
    thin
        Use every ``thin``-th draw (memory; see the module docstring).
    progress
        Show a progress bar over participants.
    """
    check_comparable(fits)
    _check_thin(thin)
    _check_draws(fits, thin)
    return _assemble([_participant_loos(fits, thin, progress=progress)], fits.models, thin=thin)


def group_shards(paths) -> list[dict[str, Path]]:
    """Fit files (from files and directories) grouped into shards: ``[{model: file}, ...]``.

    A shard is the fits of every model to one set of participants. Fits of the same models to disjoint
    sets of participants (``cogflex fit --shard K/N`` into one folder per shard) are several shards;
    one file per model is one shard. Raises :class:`CogflexError` naming the files when a model is
    missing from a shard or when two shards share a participant.
    """
    files = find_fit_files(paths)
    heads: dict[Path, tuple[str, tuple[str, ...]]] = {}
    for f in files:
        heads[f] = _fit_head(f)
    models = list(dict.fromkeys(model for model, _ in heads.values()))
    shards: dict[tuple[str, ...], dict[str, Path]] = {}
    for f, (model, participants) in heads.items():
        shard = shards.setdefault(participants, {})
        if model in shard:
            raise CogflexError(f"two fits of model {model!r} to the same participants: {shard[model]} and {f} "
                               "(compare fits of different models, or shards of different participants)")
        shard[model] = f
    if len(shards) == 1:
        return list(shards.values())
    owner: dict[str, Path] = {}
    for participants, shard in shards.items():
        missing = [m for m in models if m not in shard]
        if missing:
            raise CogflexError(f"the fits of participants {_ids(participants)} ({', '.join(map(str, shard.values()))})"
                               f" have no fit of model(s) {', '.join(missing)}: every model must be fitted to the "
                               "same participants (shards are compared model by model on the same trials)")
        for pid in participants:
            first = next(iter(shard.values()))
            if pid in owner:
                raise CogflexError(f"participant {pid!r} is in two shards ({owner[pid]} and {first}): shards must "
                                   "hold disjoint participants")
            owner[pid] = first
    return [{m: shard[m] for m in models} for shard in shards.values()]


def _ids(participants) -> str:
    shown = ", ".join(participants[:5])
    return f"[{shown}{f', ... ({len(participants)} in all)' if len(participants) > 5 else ''}]"


def _fit_head(path: Path) -> tuple[str, tuple[str, ...]]:
    """(model name, participants) of a fit file, read from its attributes without loading its arrays."""
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            attrs = dict(tree.attrs)
    except Exception:  # noqa: BLE001 - the full load reports a damaged file with its one-line error
        _load_fit(path)
        raise
    try:
        participants = json.loads(attrs["participants"])
    except (KeyError, TypeError, ValueError):
        participants = None
    if not isinstance(participants, list) or not participants:
        check_fit(_load_fit(path), path)  # names exactly what is wrong
        raise CogflexError(f"{path}: attribute 'participants' is missing or not a JSON list of ids (not a "
                           "complete cogflex fit)")
    return str(attrs.get("model", path.stem)), tuple(str(p) for p in participants)


def compare_shards(shards: list[dict[str, Path]], *, thin: int = 1, progress: bool = False,
                   executor=None) -> Comparison:
    """PSIS-LOO comparison over shards of participants (:func:`group_shards`), one shard in memory at a time.

    Within each shard the fits are checked as :func:`load_fits` does (same trials); the per-participant rows
    are those :func:`compare_fits` gives, and the pooled row is built from all participants' pointwise values
    (:func:`pool_loos`).

    Parameters
    ----------
    executor
        Runs the shards (a :mod:`cogflex.executors` executor: a local pool or Ray); default one after the
        other in this process. Each worker holds one shard's fits; only the table rows and the pointwise
        ELPD and Pareto k values (16 bytes per trial and model) come back.
    """
    _check_thin(thin)
    if not shards:
        raise CogflexError("no fits to compare")
    models = list(shards[0])
    jobs = [([str(shard[m]) for m in models], thin) for shard in shards]
    if executor is None:
        from tqdm.auto import tqdm

        results = [_shard_loos(*job) for job in tqdm(jobs, desc="PSIS-LOO", unit="shard",
                                                      disable=not progress or len(jobs) == 1)]
    else:
        results = executor.run(_shard_loos, jobs)
    return _assemble(results, models, thin=thin)


def _shard_loos(files: list[str], thin: int) -> dict:
    """The unit of :func:`compare_shards`: load one shard's fits (checked) and run :func:`_participant_loos`."""
    fits = load_fits(files)
    _check_draws(fits, thin)
    return _participant_loos(fits, thin)


def _participant_loos(fits: FitSet, thin: int, progress: bool = False) -> dict:
    """Per-participant PSIS-LOO of ``fits``: table rows, pairwise rows and pointwise results per model.

    The smoothed importance weights (draws x trials) are dropped from the returned results: pooling needs
    only the pointwise values.
    """
    from tqdm.auto import tqdm

    models = fits.models
    out = {"rows": [], "pairs": [], "pointwise": {m: [] for m in models}, "participants": fits.participants,
           "quality": {m: fit_quality(fits.trees[m]) for m in models}}  # the whole fits', for the pooled scope
    diagnosed = {m: participants_diagnostics(fits.trees[m]) for m in models}
    for pid in tqdm(fits.participants, desc="PSIS-LOO", unit="participant", disable=not progress):
        loos = {m: _loo(_restricted(fits.trees[m], pid, thin)) for m in models}
        quality = {m: fit_quality(fits.trees[m], pid, diagnosed=diagnosed[m].get(pid)) for m in models}
        out["rows"].extend(_scope_rows(loos, "participant", pid, quality))
        out["pairs"].extend(_pairs(loos, "participant", pid, quality))
        for m, loo in loos.items():
            out["pointwise"][m].append(dataclasses.replace(loo, log_weights=None))
    return out


def _assemble(results: list[dict], models: list[str], *, thin: int) -> Comparison:
    """The comparison from the shards' per-participant results: their rows, then pooled and wins."""
    rows = [r for res in results for r in res["rows"]]
    pairs = [r for res in results for r in res["pairs"]]
    n_participants = sum(len(res["participants"]) for res in results)
    if n_participants > 1:
        loos = {m: pool_loos([loo for res in results for loo in res["pointwise"][m]]) for m in models}
        quality = {m: pool_quality([res["quality"][m] for res in results]) for m in models}
        rows = _scope_rows(loos, "pooled", "all", quality) + rows
        pairs = _pairs(loos, "pooled", "all", quality) + pairs
    else:
        rows = [dict(r, scope="pooled", participant="all") for r in rows] + rows
        pairs = [dict(r, scope="pooled", participant="all") for r in pairs] + pairs
    rank = {r["model"]: r["rank"] for r in rows if r["scope"] == "pooled"}
    pairs = [_oriented(r, rank) for r in pairs]
    table = pd.DataFrame(rows)[COMPARISON_COLUMNS]
    per = table[table["scope"] == "participant"]
    n = max(n_participants, 1)
    wins = pd.DataFrame([{"model": m,
                          "participants_won": int(((per["model"] == m) & per["winner"]).sum()),
                          "won_decisively": int(((per["model"] == m) & per["decisive"]).sum()),
                          "share_won": float(((per["model"] == m) & per["winner"]).sum() / n)}
                         for m in models])
    pairwise = pd.DataFrame(pairs, columns=PAIRWISE_COLUMNS)
    return Comparison(table=table, wins=wins, thin=thin, pairwise=pairwise)
