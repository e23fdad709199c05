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
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from cogflex.errors import CogflexError
from cogflex.fit.fitting import load_fit
from cogflex.io import atomic_path

__all__ = ["Comparison", "FitSet", "compare_fits", "check_comparable", "load_fits", "find_fit_files",
           "PARETO_K_BAD", "COMPARISON_COLUMNS"]

#: Pareto k above this value makes a trial's PSIS estimate unreliable (Vehtari et al. 2024: 0.7 for S > 2,200).
PARETO_K_BAD = 0.7

#: Columns of ``comparison.csv`` (one row per scope x model; scope "pooled" has participant "all").
COMPARISON_COLUMNS = ["scope", "participant", "model", "rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse",
                      "weight", "n_trials", "pareto_k_max", "n_pareto_k_bad", "share_pareto_k_bad", "winner",
                      "decisive"]


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
    return files


def load_fits(paths) -> FitSet:
    """Load the fits in ``paths`` (files or directories) and check that they can be compared."""
    files = find_fit_files(paths)
    trees: dict[str, xr.DataTree] = {}
    where: dict[str, Path] = {}
    for f in files:
        tree = load_fit(f)
        if "trial" not in tree["log_likelihood"].data_vars:
            raise CogflexError(f"{f}: the log_likelihood group has no variable 'trial' (not a cogflex fit)")
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
    """Raise :class:`CogflexError` unless all fits were made on the same trials of the same data."""
    if len(fits.trees) < 1:
        raise CogflexError("no fits to compare")
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
        than 2 standard errors of the difference.
    wins
        Per model: participants won, won decisively, and the share of participants.
    pairwise
        Every pair of models per scope: ``elpd_diff`` = ELPD(model_a) - ELPD(model_b) and its standard error
        ``se`` (sqrt(n) x SD of the pointwise differences), ``z`` = elpd_diff / se; e.g. flexible vs forgetful
        whichever model wins overall.
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
        """``{participant or "all": {"model", "elpd_diff", "dse", "decisive"}}`` against the runner-up."""
        out = {}
        for pid, grp in self.table.groupby("participant", sort=False):
            grp = grp.sort_values("rank")
            best = grp.iloc[0]
            second = grp.iloc[1] if len(grp) > 1 else None
            out[str(pid)] = {"model": best["model"], "runner_up": None if second is None else second["model"],
                             "elpd_diff": None if second is None else float(-second["elpd_diff"]),
                             "dse": None if second is None else float(second["dse"]),
                             "decisive": bool(best["decisive"])}
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


def _loo(tree: xr.DataTree, parts=None):
    """PSIS-LOO of ``tree`` (``trial`` log-likelihood).

    With ``parts`` (the per-participant LOOs of the same fit), their smoothed weights are reused, so that each
    trial keeps its own participant's relative efficiency and the pooled ELPD is exactly their sum.
    """
    import arviz as az

    kwargs = {}
    if parts:
        kwargs = {"log_weights": xr.concat([p.log_weights for p in parts], dim="observation").sortby("observation"),
                  "pareto_k": xr.concat([p.pareto_k for p in parts], dim="observation").sortby("observation")}
    with warnings.catch_warnings():
        # the Pareto-k share is reported in the table instead of ArviZ's generic warning
        warnings.filterwarnings("ignore", message=".*shape parameter of Pareto.*")
        warnings.simplefilter("ignore", RuntimeWarning)
        return az.loo(tree, var_name="trial", pointwise=True, **kwargs)


def _scope_rows(loos: dict, scope: str, participant: str) -> list[dict]:
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
        if cmp is not None:
            row.update(rank=int(cmp.loc[name, "rank"]), elpd_diff=float(cmp.loc[name, "elpd_diff"]),
                       dse=float(cmp.loc[name, "dse"]), weight=float(cmp.loc[name, "weight"]))
        else:
            row.update(rank=0, elpd_diff=0.0, dse=0.0, weight=1.0)
        rows.append(row)
    rows.sort(key=lambda r: r["rank"])
    for r in rows:
        r["winner"] = r["rank"] == 0
        r["decisive"] = bool(r["winner"] and (len(rows) == 1 or -rows[1]["elpd_diff"] > 2 * rows[1]["dse"]))
    return rows


def _pairs(loos: dict, scope: str, participant: str) -> list[dict]:
    names = list(loos)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            d = np.asarray(loos[a].elpd_i, dtype=float).ravel() - np.asarray(loos[b].elpd_i, dtype=float).ravel()
            se = float(np.sqrt(d.size * d.var())) if d.size > 1 else float("nan")  # as ArviZ's dse
            diff = float(d.sum())
            rows.append({"scope": scope, "participant": participant, "model_a": a, "model_b": b, "elpd_diff": diff,
                         "se": se, "z": diff / se if se > 0 else float("nan")})
    return rows


def compare_fits(fits: FitSet, *, thin: int = 1, progress: bool = False) -> Comparison:
    """PSIS-LOO and stacking comparison of ``fits``, pooled and per participant.

    Parameters
    ----------
    thin
        Use every ``thin``-th draw (memory; see the module docstring).
    progress
        Show a progress bar over participants.
    """
    from tqdm.auto import tqdm

    check_comparable(fits)
    if not isinstance(thin, int) or thin < 1:
        raise CogflexError(f"thin must be a positive integer, got {thin!r}")
    participants = fits.participants
    rows: list[dict] = []
    pairs: list[dict] = []
    by_model: dict[str, list] = {m: [] for m in fits.trees}
    for pid in tqdm(participants, desc="PSIS-LOO", unit="participant", disable=not progress):
        loos = {m: _loo(_restricted(t, pid, thin)) for m, t in fits.trees.items()}
        for m, loo in loos.items():
            by_model[m].append(loo)
        rows.extend(_scope_rows(loos, "participant", pid))
        pairs.extend(_pairs(loos, "participant", pid))
    if len(participants) > 1:
        loos = {m: _loo(_restricted(t, None, thin), by_model[m]) for m, t in fits.trees.items()}
        rows = _scope_rows(loos, "pooled", "all") + rows
        pairs = _pairs(loos, "pooled", "all") + pairs
    else:
        rows = [dict(r, scope="pooled", participant="all") for r in rows] + rows
        pairs = [dict(r, scope="pooled", participant="all") for r in pairs] + pairs
    table = pd.DataFrame(rows)[COMPARISON_COLUMNS]
    per = table[table["scope"] == "participant"]
    n = max(len(participants), 1)
    wins = pd.DataFrame([{"model": m,
                          "participants_won": int(((per["model"] == m) & per["winner"]).sum()),
                          "won_decisively": int(((per["model"] == m) & per["decisive"]).sum()),
                          "share_won": float(((per["model"] == m) & per["winner"]).sum() / n)}
                         for m in fits.models])
    pairwise = pd.DataFrame(pairs, columns=["scope", "participant", "model_a", "model_b", "elpd_diff", "se", "z"])
    return Comparison(table=table, wins=wins, thin=thin, pairwise=pairwise)
