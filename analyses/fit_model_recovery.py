"""Model recovery among NTA models: simulate from each, fit every model, pick the model by PSIS-LOO.

Datasets are single synthetic participants on the same generated sequence as
fit_parameter_recovery.py (30 sessions x 70 trials from gameplay 20; the
predictor tables are shared through the same cache folder), parameters drawn
from each model's priors. Both models are fitted to every dataset
(per-participant fits); each dataset's pointwise log-likelihood (variable
``trial``) goes to ``az.loo`` and ``az.compare(method="stacking")``, and the
dataset is assigned to the model with the highest ELPD. ``--models`` picks the family (default
flexible and forgetful; the cue-driven reconfiguration models: ``--models flexible-reconfig
forgetful-reconfig fast-gates-unregularised``).

Writes ``model_recovery.csv`` (per dataset: ELPD of both models, difference
and its SE, stacking weight, Pareto k, fit diagnostics), ``confusion.csv`` and
the figure ``fit_model_recovery.png`` (docs/figures, or the output folder with
--quick). Usage::

    ./run python analyses/fit_model_recovery.py [--quick] [--out DIR] [--datasets 10] [--models A B ...]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from _common import out_dir
from fit_parameter_recovery import (DOCS_FIGURES, RECOVERY_CLEANING, TABLES_DEFAULT, fits_dir, git_state,
                                    plausible_participants, quick_spec, rhat_by_participant, shared_design)

from cogflex.fit.prepare import prepare

from cogflex.fit.tables import predictor_table
from cogflex.fit.fitting import FitOptions, fit
from cogflex.fit.simulate import Design
from cogflex.fit.models import load_model

MODELS = ["flexible", "forgetful"]  # --models replaces the list


def participant_tree(tree: xr.DataTree, pid: str) -> xr.DataTree:
    """One participant's posterior and pointwise log-likelihood out of a per-participant fit."""
    post = tree["posterior"].to_dataset()
    if "participant" in post.dims:
        post = post.sel(participant=pid)
    obs = np.flatnonzero(tree["observed_data"]["participant"].values == pid)
    ll = tree["log_likelihood"].to_dataset().isel(observation=obs)
    ll = ll.assign_coords(observation=np.arange(len(obs)))
    return xr.DataTree.from_dict({"posterior": post, "log_likelihood": ll})


def elpd_row(trees: dict[str, xr.DataTree]) -> dict:
    """az.loo for each model and az.compare (stacking) on one dataset."""
    import arviz as az

    row = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, t in trees.items():
            loo = az.loo(t, var_name="trial")
            row[f"elpd_{name}"] = float(loo.elpd)
            row[f"elpd_se_{name}"] = float(loo.se)
            row[f"p_loo_{name}"] = float(loo.p)
            row[f"pareto_k_max_{name}"] = float(np.nanmax(np.asarray(loo.pareto_k)))
        cmp = az.compare(trees, method="stacking", var_name="trial", round_to="none")
    # the winner's lead over the runner-up, and its SE
    row["assigned"] = str(cmp.index[0])
    row["elpd_margin"] = float(cmp["elpd"].iloc[0] - cmp["elpd"].iloc[1])
    row["elpd_diff_se"] = float(cmp["dse"].iloc[1])
    for name in trees:
        row[f"weight_{name}"] = float(cmp.loc[name, "weight"])
    return row


def plot(table: pd.DataFrame, confusion: pd.DataFrame, path: Path) -> None:
    """Confusion matrix (counts and row %) and per-dataset ELPD differences with SE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 2.2]})
    counts = confusion.to_numpy(dtype=float)
    pct = counts / counts.sum(1, keepdims=True).clip(min=1)
    ax0.imshow(pct, cmap="Blues", vmin=0, vmax=1)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax0.text(j, i, f"{int(counts[i, j])}\n{pct[i, j]:.0%}", ha="center", va="center",
                     color="white" if pct[i, j] > 0.5 else "black", fontsize=10)
    ax0.set_xticks(range(len(MODELS)), MODELS, rotation=20, fontsize=8)
    ax0.set_yticks(range(len(MODELS)), MODELS, fontsize=8)
    ax0.set_xlabel("assigned (higher ELPD-LOO)")
    ax0.set_ylabel("generating model")
    ax0.set_title("Confusion matrix", fontsize=10)
    # signed lead of the generating model: its ELPD minus the best other model's
    t = table.copy()
    others = [[m for m in MODELS if m != gen] for gen in t["generating"]]
    t["lead"] = [row[f"elpd_{row['generating']}"] - max(row[f"elpd_{m}"] for m in o)
                 for (_, row), o in zip(t.iterrows(), others)]
    t = t.sort_values(["generating", "lead"]).reset_index(drop=True)
    palette = dict(zip(MODELS, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")))
    colors = [palette.get(g, "0.4") for g in t["generating"]]
    x = np.arange(len(t))
    ax1.errorbar(x, t["lead"], yerr=t["elpd_diff_se"], fmt="none", ecolor="0.5", elinewidth=1)
    ax1.scatter(x, t["lead"], c=colors, s=22, zorder=3)
    ax1.axhline(0, color="0.3", lw=0.8)
    ax1.set_yscale("symlog", linthresh=10)
    lo = float((t["lead"] - t["elpd_diff_se"]).min())
    hi = float((t["lead"] + t["elpd_diff_se"]).max())
    ax1.set_ylim(min(lo * 2, -20), max(hi * 2, 20))
    ax1.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax1.set_xticks(x, t["dataset"], rotation=90, fontsize=7)
    ax1.set_ylabel("ELPD(generating) - best other +- SE")
    ax1.set_title("Per dataset, coloured by generating model:\n" + ", ".join(f"{m} {c[4:]}" for m, c in palette.items()
                                                                         if m in MODELS), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output folder (default analyses/out/fit_model_recovery)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke test (coarse grid, few trials and draws)")
    parser.add_argument("--datasets", type=int, default=10, help="datasets per generating model")
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--trials-per-session", type=int, default=70)
    parser.add_argument("--first-session", type=int, default=20)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--design-seed", type=int, default=1)
    parser.add_argument("--param-seed", type=int, default=4048)
    parser.add_argument("--sim-seed", type=int, default=17)
    parser.add_argument("--fit-seed", type=int, default=23)
    parser.add_argument("--tables", default=str(TABLES_DEFAULT), help="shared predictor-table cache")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the network")
    parser.add_argument("--replot", action="store_true", help="only redraw the figure from the files in --out")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="models to simulate from and fit (presets)")
    parser.add_argument("--tag", default="", help="names the run: output folder fit_model_recovery-TAG and figure "
                        "fit_model_recovery-TAG.png (e.g. reconfig), so that families do not overwrite each other")
    parser.add_argument("--no-refine", action="store_true",
                        help="sample on the models' own grids (default: refine each dataset's grid, as cogflex "
                        "fit does)")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.sessions, args.trials_per_session, args.first_session = 2, 6, 40, 3
        args.draws, args.tune, args.chains = 100, 100, 2
    import torch

    torch.set_num_threads(args.threads)
    MODELS[:] = args.models
    name = "fit_model_recovery" + (f"-{args.tag}" if args.tag else "")
    out = out_dir(name) if args.out is None else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = out if args.quick else DOCS_FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    if args.replot:
        table = pd.read_csv(out / "model_recovery.csv")
        plot(table, pd.read_csv(out / "confusion.csv", index_col=0), figures / f"{name}.png")
        print(f"redrew {figures}/{name}.png")
        return
    tables_dir = Path(args.tables)
    specs = {m: load_model(m) for m in MODELS}
    if args.quick:
        specs = {m: quick_spec(s) for m, s in specs.items()}
    design = Design(participants=1, sessions=args.sessions, trials_per_session=args.trials_per_session,
                    first_session=args.first_session, seed=args.design_seed)
    options = FitOptions(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.fit_seed, progress=False,
                         refine=not args.no_refine)
    t_start = time.perf_counter()
    git = git_state()  # the code the fits run on (others may commit while this runs)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    seconds: dict[str, float] = {}
    rows, true_rows = [], []
    for g, gen in enumerate(MODELS):
        ids = [f"{gen[:4]}{k + 1:02d}" for k in range(args.datasets)]
        rng = np.random.default_rng([args.param_seed, g])
        t0 = time.perf_counter()
        true, sim, redraws = plausible_participants(specs[gen], shared_design(design, ids), ids, rng,
                                                    args.sim_seed + g)
        seconds[f"redrawn_{gen}"] = redraws
        seconds[f"simulate_{gen}"] = time.perf_counter() - t0
        fd = prepare(sim, cleaning=RECOVERY_CLEANING)
        print(f"simulated {len(ids)} {gen} datasets ({fd.n_trials // len(ids)} trials each in the likelihood) in "
              f"{seconds[f'simulate_{gen}']:.0f} s", flush=True)
        for k, pid in enumerate(ids):
            true_rows.append({"dataset": pid, "generating": gen, **true.iloc[k].to_dict()})
        trees, diag = {}, {}
        for m in MODELS:
            t0 = time.perf_counter()
            predictor_table(specs[m], fd.sequences[0], cache_dir=tables_dir)  # shared sequence: computed once
            seconds[f"table_{m}_for_{gen}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = fit(fd, specs[m], options=options, out=fits_dir(out, f"fits-{gen}", tables_dir))
            seconds[f"fit_{m}_to_{gen}"] = time.perf_counter() - t0
            trees[m] = res.tree
            stats = res.tree["sample_stats"]["diverging"]
            div = stats.sum(("chain", "draw")).values if "participant" in stats.dims else np.array([int(stats.sum())])
            names = [n for n in specs[m].free_parameters() if n in res.tree["posterior"]]
            rhat = np.nanmax(np.stack([rhat_by_participant(res.tree, n, fd.participants) for n in names]), axis=0)
            diag[m] = {"divergences": div, "rhat": rhat}
            print(f"  fit {m} to the {gen} datasets: {seconds[f'fit_{m}_to_{gen}']:.0f} s, R-hat max "
                  f"{res.summary['rhat_max']:.3f}, {res.summary['divergences']} divergences", flush=True)
        for k, pid in enumerate(fd.participants):
            row = {"dataset": pid, "generating": gen, "n_trials": int((fd.trials["pidx"] == k).sum())}
            row.update(elpd_row({m: participant_tree(trees[m], pid) for m in MODELS}))
            row["correct"] = row["assigned"] == gen
            row["decisive_2se"] = row["elpd_margin"] > 2 * row["elpd_diff_se"]
            for m in MODELS:
                row[f"rhat_max_{m}"] = float(diag[m]["rhat"][k])
                row[f"divergences_{m}"] = int(diag[m]["divergences"][k])
            rows.append(row)
    wall = time.perf_counter() - t_start
    table = pd.DataFrame(rows)
    truth = pd.DataFrame(true_rows)
    confusion = pd.crosstab(table["generating"], table["assigned"]).reindex(index=list(MODELS), columns=list(MODELS),
                                                                            fill_value=0)
    confusion_pct = confusion.div(confusion.sum(axis=1).clip(lower=1), axis=0) * 100
    accuracy = float(table["correct"].mean())
    table.merge(truth, on=["dataset", "generating"]).to_csv(out / "model_recovery.csv", index=False)
    confusion.to_csv(out / "confusion.csv")
    confusion_pct.round(1).to_csv(out / "confusion_percent.csv")
    run_info = {"command": "analyses/fit_model_recovery.py" + (" --quick" if args.quick else ""), "args": vars(args),
                "git": git, "started": started, "seconds": {**seconds, "total": wall}, "accuracy": accuracy}
    (out / "run_info.json").write_text(json.dumps(run_info, indent=2, default=str))
    plot(table, confusion, figures / f"{name}.png")
    cols = ["dataset", "generating", *(f"elpd_{m}" for m in MODELS), "assigned", "elpd_margin", "elpd_diff_se",
            *(f"rhat_max_{m}" for m in MODELS), *(f"divergences_{m}" for m in MODELS)]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table[cols].round(2).to_string(index=False))
        print("\nconfusion (rows: generating, columns: assigned)")
        print(confusion.to_string())
        print(confusion_pct.round(1).to_string())
    print(f"\ncorrect assignment {accuracy:.0%}; wall time {wall:.0f} s; wrote {out} and "
          f"{figures}/{name}.png")


if __name__ == "__main__":
    main()
