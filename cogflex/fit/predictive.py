"""Posterior predictive simulation: replicate a participant's experiment under posterior draws.

Each replication re-runs the model's generative process (:func:`cogflex.fit.simulate.simulate_participant`)
on the participant's own trial sequence with one posterior draw of that participant's parameters; NTA
networks for all draws run as one batch. The replications are trial tables in the trial schema, so the
data layer's summaries (:func:`cogflex.data.summarize`) apply to them exactly as to the observed data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from cogflex.data.dataset import TrialData
from cogflex.data.schema import derive
from cogflex.fit.prepare import select_participants
from cogflex.fit.schema import model_of
from cogflex.fit.sequence import encode
from cogflex.fit.simulate import _DIRS, simulate_participant

__all__ = ["draw_parameter_sets", "replicate"]


def draw_parameter_sets(tree: xr.DataTree, n: int, *, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """``n`` posterior draws per participant: ``{participant: {parameter: (n,) values}}``.

    Draws are chosen uniformly (seeded) among all chains and draws.
    """
    model = model_of(tree)
    flat = {f: (name, block.term_dim(name), term) for name, block in model.coefficients.items()
            for f, term in zip(block.flat_names(), block.terms)}
    post = tree["posterior"].to_dataset()
    stacked = post.stack(sample=("chain", "draw"))
    rng = np.random.default_rng(seed)
    pick = rng.choice(stacked.sizes["sample"], size=n, replace=stacked.sizes["sample"] < n)
    out = {}
    for pid in post["participant"].values:
        values = {}
        for name in model.simulation_parameters():
            if name in flat:
                block, dim, term = flat[name]
                da = stacked[block].sel({"participant": pid, dim: term})
            else:
                da = stacked[name].sel(participant=pid)
            values[name] = np.asarray(da.values)[pick]
        out[str(pid)] = values
    return out


def replicate(tree: xr.DataTree, data: TrialData, *, draws: int = 20, seed: int = 0) -> list[TrialData]:
    """``draws`` simulated copies of ``data`` (the fitted participants), one per posterior draw.

    ``data`` must be the trial file the fit was made on (uncleaned; the replications contain every trial,
    cleaning is up to the summary that follows). The RT shift is ``rt_shift`` x the participant's fastest
    fitted RT, as in the likelihood.
    """
    spec = model_of(tree)
    params = draw_parameter_sets(tree, draws, seed=seed)
    data, _ = select_participants(data, list(params))
    trials = data.trials
    rng = np.random.default_rng(seed + 1)
    seqs = encode(data, np.ones(len(trials), dtype=bool))
    obs = tree["observed_data"].to_dataset()
    fastest = pd.Series(obs["rt"].values).groupby(obs["participant"].values.astype(str)).min()
    correct = np.zeros((draws, len(trials)), dtype=bool)
    rt = np.zeros((draws, len(trials)))
    response = np.empty((draws, len(trials)), dtype=object)
    for seq in seqs:
        ok, times, resp = simulate_participant(spec, params[seq.participant], seq, trials.iloc[seq.rows], rng,
                                               fastest=float(fastest[str(seq.participant)]))
        correct[:, seq.rows], rt[:, seq.rows], response[:, seq.rows] = ok, times, resp
    out = []
    for d in range(draws):
        df = trials.copy()
        df["correct"] = pd.array(correct[d], dtype="boolean")
        df["rt"] = rt[d]
        if "response" in df and seqs[0].n_responses == 4:
            df["response"] = pd.Categorical(response[d], categories=list(_DIRS))
        out.append(data.with_trials(derive(df), source=f"{data.source} (posterior draw {d})"))
    return out
