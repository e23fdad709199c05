"""Parameter recovery of an NTA model (default flexible): simulate participants from the priors, fit, compare.

Every synthetic participant plays the same generated Ebb and Flow-like sequence
(``Design``: 30 observed sessions of 70 trials from gameplay 20, 2,030 trials in
the likelihood after the first-trial rule), so the network's predictor table is
computed once and shared by all fits (the table depends on the sequence, not
on the responses). Parameters are drawn from the model's priors
(``draw_parameters``), responses and RTs simulated with ``simulate_trials``, and
each participant is fitted separately (``fit``: one job per participant).

Writes ``parameter_recovery.csv`` (per parameter: Pearson r between true value
and posterior mean, coverage of the 94% intervals, posterior contraction,
R-hat max), ``participants.csv`` (true values, posterior means and intervals),
``identifiability.csv`` (profile log-likelihood along each network parameter)
and the figures ``fit_parameter_recovery.png`` and
``fit_parameter_identifiability.png`` (in docs/figures, or the output folder
with --quick). Usage::

    ./run python analyses/fit_parameter_recovery.py [--quick] [--out DIR] [--participants 20] [--model NAME]

``--model flexible-reconfig`` (or any network model preset) recovers that model instead; its outputs go to
``analyses/out/fit_parameter_recovery-<model>`` and ``docs/figures/fit_parameter_recovery-<model>.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from _common import ROOT, out_dir

from cogflex.data.dataset import TrialData
from cogflex.fit.prepare import FIT_CLEANING, prepare
from cogflex.fit.start import node_profile, profile_columns
from cogflex.fit.tables import predictor_table
from cogflex.fit.fitting import FitOptions, FitResult, fit, load_fit, summarize_fit
from cogflex.fit.interpolate import interpolate_table
from cogflex.fit.link import NUMPY
from cogflex.fit.simulate import Design, design_trials, draw_parameters, simulate_trials
from cogflex.fit.models import load_model
from cogflex.fit.models.nta import NTAModel

try:  # simulators before commit 01b3e39 shifted RTs by rt_shift x 0.15 s (RT_FLOOR)
    from cogflex.fit.simulate import RT_FLOOR
except ImportError:  # since then by rt_shift x the fastest RT that FIT_CLEANING keeps, as the fitted model does
    RT_FLOOR = None

#: FIT_CLEANING without the RT bounds: the simulator's RTs are not truncated, so the bounds would only add an
#: unmodelled truncation, and identical observed-trial masks let every fit share one predictor table.
RECOVERY_CLEANING = replace(FIT_CLEANING, rt_min=None, rt_max=None)

#: (row label, posterior variable, transform) in table order; rt_shift is compared in seconds (see shift_seconds).
ROWS = (("log_tau_c", "gate_timescale", np.log), ("log_tau_W", "weight_timescale", np.log),
        ("lambda", "regularization", None), ("acc_intercept", "acc_intercept", None),
        ("acc_slope", "acc_slope", None), ("rt_intercept", "rt_intercept", None), ("rt_slope", "rt_slope", None),
        ("rt_sigma", "rt_sigma", None), ("rt_shift_s", "rt_shift", None))

DOCS_FIGURES = ROOT / "docs" / "figures"
TABLES_DEFAULT = ROOT / "analyses" / "out" / "fit_recovery_tables"


def quick_spec(spec: NTAModel) -> NTAModel:
    """A coarse version of ``spec`` for smoke tests (3 grid points per parameter, one history, short tutorial)."""
    params = {k: replace(v, points=min(v.points, 3)) for k, v in spec.parameters.items()}
    return replace(spec, parameters=params,
                   network=replace(spec.network, histories=1, tutorial_blocks=2, tutorial_block_trials=100))


#: Simulated participants count as plausible with a median RT in this range (s) and accuracy at least 0.6.
PLAUSIBLE_MEDIAN_RT = (0.3, 3.0)


def plausible_participants(spec, trials: TrialData, ids: list[str], rng: np.random.Generator, seed: int, *,
                           rounds: int = 50) -> tuple[pd.DataFrame, TrialData, int]:
    """Parameters drawn from the priors, redrawn for participants whose simulated data are implausible.

    A prior draw can give data no participant produces (for the reconfiguration models: a network that never
    reaches the criterion times a large rt_slope gives median RTs of minutes). Participants with a median RT
    outside :data:`PLAUSIBLE_MEDIAN_RT` or accuracy below 0.6 are drawn again (at most ``rounds`` times), so
    that recovery is measured where data can come from; returns the parameters, the simulated trials and the
    number of redraws (reported in run_info.json).
    """
    true = pd.DataFrame([draw_parameters(spec, rng) for _ in ids], index=ids)
    redraws = 0
    for _ in range(rounds):
        sim = simulate_trials(spec, {k: true[k].to_dict() for k in true.columns}, trials, seed=seed)
        by = sim.trials.groupby("participant", observed=True)
        med, acc = by["rt"].median().reindex(ids), by["correct"].mean().reindex(ids)
        bad = [i for i in ids if not (PLAUSIBLE_MEDIAN_RT[0] <= med[i] <= PLAUSIBLE_MEDIAN_RT[1] and acc[i] >= 0.6)]
        if not bad:
            return true, sim, redraws
        redraws += len(bad)
        for i in bad:
            true.loc[i] = pd.Series(draw_parameters(spec, rng))
    raise SystemExit(f"no plausible parameters for {len(bad)} participants after {rounds} rounds of redraws")


def shared_design(design: Design, ids: list[str]) -> TrialData:
    """``design``'s first participant's trial sequence, copied for every id in ``ids``."""
    base = design_trials(replace(design, participants=1))
    df = pd.concat([base.trials.assign(participant=pid) for pid in ids], ignore_index=True)
    df["participant"] = pd.Categorical(df["participant"], categories=list(ids))
    return base.with_trials(df, source=f"{base.source} x{len(ids)}")


def fits_dir(out: Path, name: str, tables: Path) -> Path:
    """``out/name`` for fit files, its ``.cache`` linked to the shared predictor-table folder ``tables``."""
    path = out / name
    path.mkdir(parents=True, exist_ok=True)
    tables.mkdir(parents=True, exist_ok=True)
    link = path / ".cache"
    if not link.exists():
        link.symlink_to(tables.resolve(), target_is_directory=True)
    return path


def git_state() -> str:
    """Commit and whether cogflex/ or models/ had uncommitted changes (the fits ran on the working tree)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "cogflex", "models"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in cogflex/ or models/" if dirty else "")


def true_shift_seconds(true_fraction: np.ndarray, fd) -> np.ndarray:
    """The simulated RT shift in seconds, per participant (see the RT_FLOOR import above)."""
    if RT_FLOOR is not None:
        return true_fraction * RT_FLOOR
    rt = fd.trials["rt"].where(fd.trials["rt"].between(FIT_CLEANING.rt_min, FIT_CLEANING.rt_max))
    return true_fraction * rt.groupby(fd.trials["pidx"]).min().to_numpy()


def draws_by_participant(tree, name: str, participants: list[str]) -> np.ndarray:
    """``(participant, sample)`` array of a posterior variable."""
    da = tree["posterior"][name]
    if "participant" not in da.dims:
        da = da.expand_dims(participant=participants)
    return da.stack(sample=("chain", "draw")).transpose("participant", "sample").values


def rhat_by_participant(tree, name: str, participants: list[str]) -> np.ndarray:
    """Rank-normalised split R-hat of a posterior variable, per participant."""
    import warnings

    import arviz as az

    da = tree["posterior"][name]
    if "participant" not in da.dims:
        da = da.expand_dims(participant=participants)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = az.rhat(da.to_dataset(name=name))
    return np.atleast_1d(np.asarray(r[name].values, dtype=float))


#: Row labels of network parameters on the log scale (others: log_<name>).
LOG_LABELS = {"gate_timescale": "log_tau_c", "weight_timescale": "log_tau_W", "timescale": "log_tau"}


def active_rows(spec: NTAModel | None = None):
    """The table rows of the parameters the model infers: (label, posterior variable, transform)."""
    spec = spec or load_model("flexible")
    if spec.family == "nta":  # the original table order
        return tuple(row for row in ROWS if row[1] in spec.free_parameters())
    rows = []
    for name in spec.grid_names:
        log = name in spec.log_scale
        rows.append((LOG_LABELS.get(name, f"log_{name}") if log else name, name, np.log if log else None))
    for name in spec.priors:
        rows.append(("rt_shift_s" if name == "rt_shift" else name, name, None))
    return tuple(rows)


def prior_variances(spec: NTAModel, n: int = 20000, seed: int = 1) -> dict[str, float]:
    """Prior variance of every table row's quantity (Monte Carlo from ``draw_parameters``); rt_shift as a fraction."""
    rng = np.random.default_rng(seed)
    draws = pd.DataFrame([draw_parameters(spec, rng) for _ in range(n)])
    out = {}
    for label, name, transform in active_rows(spec):
        v = draws[name].to_numpy()
        out[label] = float(np.var(transform(v) if transform else v))
    return out


def recovery_table(true: pd.DataFrame, tree, participants: list[str], min_rt: np.ndarray, true_shift: np.ndarray,
                   prior_var: dict[str, float], spec: NTAModel | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-parameter recovery statistics and the per-participant long table.

    ``min_rt``: each participant's fastest RT in the likelihood (the fitted shift is ``rt_shift * min_rt``);
    ``true_shift``: the simulated shift in seconds.
    """
    rows, long = [], []
    for label, name, transform in active_rows(spec):
        d = draws_by_participant(tree, name, participants)
        t = true[name].to_numpy(dtype=float)
        if label == "rt_shift_s":
            # compared in seconds: the fitted model's shift is rt_shift * fastest RT in the likelihood
            t_cmp, d_cmp = true_shift, d * min_rt[:, None]
            contraction_d, contraction_prior = d, prior_var[label]
        else:
            t_cmp = transform(t) if transform else t
            d_cmp = transform(d) if transform else d
            contraction_d, contraction_prior = d_cmp, prior_var[label]
        mean = d_cmp.mean(1)
        lo, hi = np.quantile(d_cmp, [0.03, 0.97], axis=1)
        inside = (t_cmp >= lo) & (t_cmp <= hi)
        rhat = rhat_by_participant(tree, name, participants)
        contraction = 1.0 - contraction_d.var(1) / contraction_prior
        r = float(np.corrcoef(t_cmp, mean)[0, 1]) if len(t_cmp) > 2 and np.std(mean) > 0 else float("nan")
        rows.append({"parameter": label, "pearson_r": r,
                     "spearman_r": float(pd.Series(t_cmp).corr(pd.Series(mean), method="spearman")),
                     "coverage_94": float(inside.mean()), "contraction_median": float(np.median(contraction)),
                     "bias_mean": float((mean - t_cmp).mean()), "rmse": float(np.sqrt(((mean - t_cmp) ** 2).mean())),
                     "rhat_max": float(np.nanmax(rhat)), "rhat_median": float(np.nanmedian(rhat)),
                     "target_met": bool(r >= 0.8)})
        for i, p in enumerate(participants):
            long.append({"participant": p, "parameter": label, "true": t_cmp[i], "mean": mean[i], "low_94": lo[i],
                         "high_94": hi[i], "covered": bool(inside[i]), "contraction": contraction[i],
                         "rhat": rhat[i]})
    return pd.DataFrame(rows), pd.DataFrame(long)


def profile_curves(spec: NTAModel, fd, tables_dir: Path) -> dict[str, np.ndarray]:
    """Profile log-likelihood along each network parameter's grid nodes: ``name -> (participant, nodes)``.

    For every grid node the link parameters are maximised (``node_profile``); the curve of a parameter is the
    maximum over the other network parameters, relative to the participant's best node.
    """
    shape = tuple(spec.parameters[n].points for n in spec.grid_names)
    curves = {n: [] for n in spec.grid_names}
    tr = fd.trials
    for i, seq in enumerate(fd.sequences):
        table = predictor_table(spec, seq, cache_dir=tables_dir)
        rows = (tr["pidx"] == i).to_numpy()
        rt_col, acc_col = profile_columns(spec)[:2]
        ll = node_profile(table, tr["rt"].to_numpy(dtype=float)[rows], tr["correct"].to_numpy(dtype=bool)[rows],
                          rt_column=rt_col, acc_column=acc_col)["loglik"].reshape(shape)
        ll = ll - ll.max()
        for d, name in enumerate(spec.grid_names):
            others = tuple(a for a in range(len(shape)) if a != d)
            curves[name].append(ll.max(axis=others))
    return {k: np.array(v) for k, v in curves.items()}


def sensitivity_table(spec: NTAModel, fd, tables_dir: Path, true: pd.DataFrame) -> pd.DataFrame:
    """How much the predictors move along each network parameter, at each participant's true parameters.

    For each network parameter, the predictors (L_t, m_t) are read at the grid nodes nearest the true values of
    the other parameters while this one runs over its box; reported: the RMS over trials of the change in the
    RT location ``rt_slope * dL_t`` from the box's lower to upper end, in units of ``rt_sigma``, and
    ``sqrt(n)`` times it (a z-like score of how well all trials together can tell the two ends apart).
    """
    names = spec.grid_names
    nodes = {n: spec.parameters[n].nodes() for n in names}
    rows = []
    for i, seq in enumerate(fd.sequences):
        table = predictor_table(spec, seq, cache_dir=tables_dir)
        n = table.shape[-2]
        near = [int(np.argmin(np.abs(spec.parameters[nm].position(nodes[nm]) -
                                     spec.parameters[nm].position(true[nm].iloc[i])))) for nm in names]
        for d, name in enumerate(names):
            lo_idx, hi_idx = list(near), list(near)
            lo_idx[d], hi_idx[d] = 0, len(nodes[name]) - 1
            d_loss = table[tuple(hi_idx)][:, 0] - table[tuple(lo_idx)][:, 0]
            d_margin = table[tuple(hi_idx)][:, 1] - table[tuple(lo_idx)][:, 1]
            rms_rt = float(np.sqrt(np.mean((true["rt_slope"].iloc[i] * d_loss) ** 2)) / true["rt_sigma"].iloc[i])
            rms_acc = float(np.sqrt(np.mean((true["acc_slope"].iloc[i] * d_margin) ** 2)))
            rows.append({"participant": fd.participants[i], "parameter": name, "rms_rt_shift_sd": rms_rt,
                         "rt_z": rms_rt * np.sqrt(n), "rms_logit_change": rms_acc,
                         "rt_loss_sd_over_trials": float(table[tuple(near)][:, 0].std())})
    return pd.DataFrame(rows)


def interpolation_check(spec: NTAModel, fd, true: pd.DataFrame, true_shift: np.ndarray,
                        tables_dir: Path) -> pd.DataFrame:
    """Exact network predictors at the true parameters vs the fit's grid interpolation of them.

    Per participant: RMS over trials of the interpolation error of the RT location and of the accuracy logit
    (the model's own link, :mod:`cogflex.fit.link`; RT in units of ``rt_sigma``), and the log-likelihood of the
    data at the true parameters with exact minus with interpolated predictors.
    """
    seq = fd.sequences[0]
    if any(not np.array_equal(s.observed, seq.observed) for s in fd.sequences):
        raise ValueError("interpolation_check needs every participant on the same observed trials")
    exact = spec.compute_predictors(seq, {n: true[n].to_numpy(dtype=float) for n in spec.grid_names})
    table = predictor_table(spec, seq, cache_dir=tables_dir)
    tr = fd.trials
    rows = []
    for i, pid in enumerate(fd.participants):
        p = true.iloc[i]
        positions = [float(spec.parameters[n].position(p[n])) for n in spec.grid_names]
        interp = interpolate_table(table, positions, spec.interpolation)
        sub = tr[tr["pidx"] == i]
        rt, correct = sub["rt"].to_numpy(dtype=float), sub["correct"].to_numpy(dtype=bool)
        theta = {k: float(p[k]) for k in spec.priors} | {"rt_shift": 1.0}  # the shift in seconds, below
        parts = {}
        for label, values in (("exact", exact[i]), ("interpolated", interp)):
            columns = {name: values[:, k] for k, name in enumerate(spec.predictors)}
            eta, mu = spec.formula.linear_predictors(theta, columns)
            ll = spec.formula.loglik(NUMPY, theta, columns, rt, correct, true_shift[i])
            parts[label] = (np.broadcast_to(eta, rt.shape), np.broadcast_to(mu, rt.shape), float(ll.sum()))
        rows.append({"participant": pid,
                     "rms_rt_error_sd": float(np.sqrt(np.mean((parts["exact"][1] - parts["interpolated"][1]) ** 2))
                                              / p["rt_sigma"]),
                     "rms_logit_error": float(np.sqrt(np.mean((parts["exact"][0] - parts["interpolated"][0]) ** 2))),
                     "loglik_exact": parts["exact"][2], "loglik_interpolated": parts["interpolated"][2],
                     "loglik_exact_minus_interpolated": parts["exact"][2] - parts["interpolated"][2]})
    return pd.DataFrame(rows)


def posterior_correlations(tree, participants: list[str]) -> pd.DataFrame:
    """Per participant, posterior correlations between parameters that can trade off against each other."""
    pairs = (("gate_timescale_logit", "regularization_logit"), ("gate_timescale_logit", "weight_timescale_logit"),
             ("weight_timescale_logit", "regularization_logit"), ("regularization_logit", "rt_slope"),
             ("rt_shift", "rt_intercept"), ("rt_intercept", "rt_slope"))
    names = set(tree["posterior"].data_vars)
    pairs = tuple((a, b) for a, b in pairs if a in names and b in names)
    rows = []
    d = {n: draws_by_participant(tree, n, participants) for pair in pairs for n in pair}
    for i, pid in enumerate(participants):
        row = {"participant": pid}
        for a, b in pairs:
            row[f"corr({a},{b})"] = float(np.corrcoef(d[a][i], d[b][i])[0, 1])
        rows.append(row)
    return pd.DataFrame(rows)


def plot_recovery(long: pd.DataFrame, table: pd.DataFrame, path: Path, model: str = "flexible") -> None:
    """True vs posterior mean with 94% intervals, one panel per parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"log_tau_c": "log tau_c (trials)", "log_tau_W": "log tau_W (trials)", "lambda": "lambda",
              "rt_shift_s": "RT shift (s)"}
    rows = -(-len(table) // 3)
    fig, axes = plt.subplots(rows, 3, figsize=(10, 3.2 * rows))
    for ax, (_, row) in zip(axes.flat, table.iterrows()):
        sub = long[long["parameter"] == row["parameter"]]
        color = np.where(sub["covered"], "tab:blue", "tab:red")
        ax.vlines(sub["true"], sub["low_94"], sub["high_94"], colors=color, alpha=0.45, lw=1.2)
        ax.scatter(sub["true"], sub["mean"], c=color, s=14, zorder=3)
        lo = float(np.nanmin([sub["true"].min(), sub["low_94"].min()]))
        hi = float(np.nanmax([sub["true"].max(), sub["high_94"].max()]))
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
        ax.set_title(f"{labels.get(row['parameter'], row['parameter'])}\nr = {row['pearson_r']:.2f}, "
                     f"coverage {row['coverage_94']:.0%}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("true", fontsize=8)
        ax.set_ylabel("posterior mean (94% interval)", fontsize=8)
    for ax in list(axes.flat)[len(table):]:
        ax.set_visible(False)
    fig.suptitle(f"{model}: parameter recovery (red: true value outside the 94% interval)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_identifiability(spec: NTAModel, curves: dict[str, np.ndarray], true: pd.DataFrame,
                         post_long: pd.DataFrame, sens: pd.DataFrame, path: Path) -> None:
    """Profile log-likelihood along each network parameter (one line per participant), and posterior width
    against how much the predictors move with the parameter (``sensitivity_table``'s ``rt_z``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = spec.grid_names
    fig, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 7), squeeze=False)
    row_of = {"gate_timescale": "log_tau_c", "weight_timescale": "log_tau_W", "regularization": "lambda"}
    for d, name in enumerate(names):
        gp = spec.parameters[name]
        label = row_of.get(name, name)
        x = np.log(gp.nodes()) if gp.scale == "log" else gp.nodes()
        x_true = np.log(true[name].to_numpy()) if gp.scale == "log" else true[name].to_numpy()
        ax = axes[0, d]
        for i, curve in enumerate(curves[name]):
            color = plt.cm.viridis(float(gp.position(true[name].iloc[i])))
            ax.plot(x, np.maximum(curve, -60), color=color, lw=1, alpha=0.8)
            ax.plot([x_true[i]], [2], marker="v", color=color, ms=5)
        ax.axhline(-2, color="0.4", ls=":", lw=0.8)
        ax.set_ylim(-62, 4)
        ax.set_xlabel(f"{label} (grid nodes; triangles: true values)", fontsize=8)
        ax.set_ylabel("profile log-lik - max (clipped at -60)", fontsize=8)
        ax.set_title(f"{label}: profile log-likelihood per participant", fontsize=9)
        ax.tick_params(labelsize=7)
        ax = axes[1, d]
        sub = post_long[post_long["parameter"] == label].set_index("participant")
        width = (sub["high_94"] - sub["low_94"]) / (x[-1] - x[0])
        z = sens[sens["parameter"] == name].set_index("participant")["rt_z"].reindex(width.index)
        ax.scatter(z.clip(lower=0.1), width, s=14)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel(f"sensitivity of the RT predictor to {label} (z, log scale)", fontsize=8)
        ax.set_ylabel("94% interval width / box width", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{spec.name}: how much the data constrain each network parameter\n(dotted: 2 log-lik units "
                 "below the best node)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def replot(out: Path, figures: Path, spec: NTAModel) -> None:
    """Redraw both figures from a finished run's files in ``out``."""
    table = pd.read_csv(out / "parameter_recovery.csv")
    long = pd.read_csv(out / "participants_long.csv")
    true = pd.read_csv(out / "participants.csv", index_col="participant")
    true = true[[c for c in true.columns if c.startswith("true_")]].rename(columns=lambda c: c[len("true_"):])
    with np.load(out / "profiles.npz") as z:
        curves = {k: z[k] for k in z.files}
    suffix = "" if spec.name == "flexible" else f"-{spec.name}"
    plot_recovery(long, table, figures / f"fit_parameter_recovery{suffix}.png", spec.name)
    sens = pd.read_csv(out / "sensitivity.csv")
    plot_identifiability(spec, curves, true, long, sens, figures / f"fit_parameter_identifiability{suffix}.png")
    print(f"redrew {figures}/fit_parameter_recovery{suffix}.png, fit_parameter_identifiability{suffix}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output folder (default analyses/out/fit_parameter_recovery)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke test (coarse grid, few trials and draws)")
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--trials-per-session", type=int, default=70)
    parser.add_argument("--first-session", type=int, default=20)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--design-seed", type=int, default=1)
    parser.add_argument("--param-seed", type=int, default=2024)
    parser.add_argument("--sim-seed", type=int, default=7)
    parser.add_argument("--fit-seed", type=int, default=11)
    parser.add_argument("--tables", default=str(TABLES_DEFAULT),
                        help="shared predictor-table cache (also used by fit_model_recovery.py)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the network")
    parser.add_argument("--model", default="flexible", help="network model preset to recover (default flexible)")
    parser.add_argument("--replot", action="store_true", help="only redraw the figures from the files in --out")
    parser.add_argument("--reuse-fits", action="store_true",
                        help="re-simulate (deterministic) but load the fits saved in --out instead of sampling again")
    args = parser.parse_args()
    if args.quick:
        args.participants, args.sessions, args.trials_per_session, args.first_session = 3, 6, 40, 3
        args.draws, args.tune, args.chains = 100, 100, 2
    import torch

    torch.set_num_threads(args.threads)
    suffix = "" if args.model == "flexible" else f"-{args.model}"
    out = out_dir(f"fit_parameter_recovery{suffix}") if args.out is None else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = out if args.quick else DOCS_FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    tables_dir = Path(args.tables)
    spec = load_model(args.model)
    if args.quick:
        spec = quick_spec(spec)
    if args.replot:
        replot(out, figures, spec)
        return
    t_start = time.perf_counter()
    git = git_state()  # the code the fits run on (others may commit while this runs)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")

    ids = [f"rec{i + 1:02d}" for i in range(args.participants)]
    design = Design(participants=1, sessions=args.sessions, trials_per_session=args.trials_per_session,
                    first_session=args.first_session, seed=args.design_seed)
    trials = shared_design(design, ids)
    rng = np.random.default_rng(args.param_seed)
    t0 = time.perf_counter()
    true, sim, redraws = plausible_participants(spec, trials, ids, rng, args.sim_seed)
    t_sim = time.perf_counter() - t0
    fd = prepare(sim, cleaning=RECOVERY_CLEANING)
    acc = sim.trials.groupby("participant", observed=True)["correct"].mean()
    print(f"simulated {len(ids)} participants x {len(sim.trials) // len(ids)} trials "
          f"({fd.n_trials // len(ids)} in the likelihood, {redraws} implausible prior draws redrawn) in "
          f"{t_sim:.0f} s; accuracy "
          f"{acc.min():.2f}-{acc.max():.2f}, median RT {sim.trials['rt'].median():.3f} s", flush=True)

    t0 = time.perf_counter()
    predictor_table(spec, fd.sequences[0], cache_dir=tables_dir)  # once: every participant shares the sequence
    t_tables = time.perf_counter() - t0
    print(f"predictor table: {t_tables:.0f} s", flush=True)
    options = FitOptions(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.fit_seed, progress=False)
    t0 = time.perf_counter()
    if args.reuse_fits:
        tree = load_fit(out / "fits" / f"{spec.name}.nc")
        if tree.attrs["data_digest"] != fd.digest:
            raise SystemExit("--reuse-fits: the saved fits are of other data (digest differs); fit again")
        result = FitResult(tree=tree, summary=summarize_fit(tree))
        previous = json.loads((out / "run_info.json").read_text())
        previous = previous.get("fit_run", previous)  # the run that sampled the fits
        t_fit = previous["seconds"]["fits"]
    else:
        result = fit(fd, spec, options=options, out=fits_dir(out, "fits", tables_dir))
        t_fit = time.perf_counter() - t0
    summary = result.summary
    print(f"fits: {t_fit:.0f} s ({t_fit / len(ids):.0f} s per participant); R-hat max {summary['rhat_max']:.3f}, "
          f"{summary['divergences']} divergences, bulk ESS min {summary['ess_bulk_min']:.0f}", flush=True)

    min_rt = fd.trials.groupby("pidx")["rt"].min().to_numpy()
    true_shift = true_shift_seconds(true["rt_shift"].to_numpy(), fd)
    table, long = recovery_table(true, result.tree, fd.participants, min_rt, true_shift, prior_variances(spec), spec)
    div = result.tree["sample_stats"]["diverging"]
    per_div = (div.sum(("chain", "draw")).values if "participant" in div.dims else np.array([int(div.sum())]))
    true_out = true.add_prefix("true_").assign(min_rt=min_rt, divergences=per_div,
                                               accuracy=acc.reindex(ids).to_numpy())
    # raw rt_shift (the fraction as each side parameterises it) for the record
    d_shift = draws_by_participant(result.tree, "rt_shift", fd.participants)
    true_out["posterior_rt_shift_fraction"] = d_shift.mean(1)
    true_out["true_rt_shift_as_fraction_of_min_rt"] = true_shift / min_rt

    t0 = time.perf_counter()
    curves = profile_curves(spec, fd, tables_dir)
    sens = sensitivity_table(spec, fd, tables_dir, true)
    ident = []
    for name, c in curves.items():
        drop_lo, drop_hi = -c[:, 0], -c[:, -1]
        best = np.argmax(c, axis=1)
        ident.append({"parameter": name, "median_drop_at_lower_end": float(np.median(drop_lo)),
                      "median_drop_at_upper_end": float(np.median(drop_hi)),
                      "participants_flat_within_2": int(((c > -2).all(axis=1)).sum()),
                      "median_nodes_within_2_of_best": float(np.median((c > -2).sum(axis=1))),
                      "nodes": len(c[0]), "best_node_at_box_edge": int(((best == 0) | (best == len(c[0]) - 1)).sum()),
                      **{f"median_{k}": float(v) for k, v in sens[sens["parameter"] == name]
                         [["rms_rt_shift_sd", "rt_z", "rms_logit_change"]].median().items()}})
    ident = pd.DataFrame(ident)
    interp = interpolation_check(spec, fd, true, true_shift, tables_dir)
    corr = posterior_correlations(result.tree, fd.participants)
    t_ident = time.perf_counter() - t0
    wall = time.perf_counter() - t_start

    table.to_csv(out / "parameter_recovery.csv", index=False)
    long.to_csv(out / "participants_long.csv", index=False)
    true_out.to_csv(out / "participants.csv", index_label="participant")
    ident.to_csv(out / "identifiability.csv", index=False)
    sens.to_csv(out / "sensitivity.csv", index=False)
    np.savez(out / "profiles.npz", **curves)
    interp.to_csv(out / "interpolation_check.csv", index=False)
    corr.to_csv(out / "posterior_correlations.csv", index=False)
    run_info = {"command": "analyses/fit_parameter_recovery.py" + (" --quick" if args.quick else "")
                + (" --reuse-fits" if args.reuse_fits else ""),
                "args": vars(args), "design": {"sessions": args.sessions, "trials_per_session": args.trials_per_session,
                                               "first_session": args.first_session, "seed": args.design_seed},
                "trials_in_likelihood_per_participant": int(fd.n_trials // len(ids)),
                "implausible_prior_draws_redrawn": redraws, "plausible_median_rt_s": PLAUSIBLE_MEDIAN_RT,
                "git": git, "started": started, "sampler": summary["sampler"],
                "seconds": {"simulate": t_sim, "tables": t_tables, "fits": t_fit, "identifiability": t_ident,
                            "total": wall},
                "fit_summary": {k: summary[k] for k in ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences",
                                                        "ebfmi_min", "warnings")}}
    if args.reuse_fits:
        run_info["fit_run"] = previous
    (out / "run_info.json").write_text(json.dumps(run_info, indent=2, default=str))
    plot_recovery(long, table, figures / f"fit_parameter_recovery{suffix}.png", spec.name)
    plot_identifiability(spec, curves, true, long, sens, figures / f"fit_parameter_identifiability{suffix}.png")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(3).to_string(index=False))
        print()
        print(ident.round(2).to_string(index=False))
        print()
        print(interp.round(3).to_string(index=False))
        print()
        print(corr.median(numeric_only=True).round(2).to_string())
    print(f"\nwall time {wall:.0f} s (simulate {t_sim:.0f}, table {t_tables:.0f}, fits {t_fit:.0f}); wrote {out} and "
          f"{figures}/fit_parameter_recovery{suffix}.png, fit_parameter_identifiability{suffix}.png")


if __name__ == "__main__":
    main()
