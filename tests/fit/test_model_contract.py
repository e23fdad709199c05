"""One contract over every registered model: the bundled presets and the shipped example of a user's own model.

Each model (shrunk to a tiny grid and network so that the suite stays fast) must

1. give the PyMC pointwise log-likelihood that an independent numpy reference gives (the network written
   from its definition in tests/fit/reference.py, covariates re-derived from the raw trials, the link
   summed term by term here);
2. recover its observation parameters from data simulated with its own simulator;
3. give posterior predictive replications that summarise like the observed data;
4. render in a comparison report next to the other models.

A model added to ``models/fitting`` (or a new example) enters this test by itself; a model family whose
predictors have no reference below makes the test fail with a message saying what to add.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from cogflex.fit import FitOptions, fit
from cogflex.fit.models import builtin_models, load_model
from cogflex.fit.network import full_sequence
from cogflex.fit.prepare import prepare
from cogflex.fit.pymc_model import build_model
from cogflex.fit.simulate import Design, design_trials, simulate_trials
from cogflex.fit.tables import grid_points, predictor_table
from tests.fit.helpers import TINY_NETWORK, evaluate, kept_mask
from tests.fit.reference import interpolant, pointwise_loglik, reference_covariates, reference_moment, run_reference

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "gate_change_model.py"
REGISTERED = [*builtin_models(), str(EXAMPLE)]


def tiny(name: str):
    """The registered model with 3 grid points per parameter and the short history of the other tests."""
    model = load_model(name)
    data = model.to_dict()
    data.pop("kind")
    for p in data.get("parameters", {}).values():
        p["points"] = 3
    if "network" in data:  # the model's own sub-steps: its box is stable with them
        data["network"].update({k: v for k, v in TINY_NETWORK.items() if k != "substeps"})
    if "reconfiguration" in data:  # the tiny network seldom reaches the criterion: a short horizon keeps RTs sane
        data["reconfiguration"].update(horizon=2.0, flow_steps=10)
    small = type(model).from_dict(data)
    object.__setattr__(small, "source", model.source)
    return small


def _prior_value(prior) -> float:
    return {"normal": prior.mu + 0.3 * prior.sigma, "halfnormal": 0.5 * prior.sigma,
            "lognormal": float(np.exp(prior.mu)), "beta": prior.alpha / (prior.alpha + prior.beta)}[prior.dist]


# -- 1. the likelihood against an independent reference -------------------------------------------------------


def reference_columns(model, seq) -> dict[str, np.ndarray]:
    """Every predictor the model asks for, ``(*grid, n_obs)``, from the numpy reference network."""
    import torch

    s = model.network
    w0 = torch.randn(1, s.paths, seq.n_responses, 2 * seq.n_responses, dtype=torch.float64,
                     generator=torch.Generator().manual_seed(s.seed))[0].numpy() * s.weight_init_std
    task, feat, observed = full_sequence(seq, s)
    tau_c, tau_w, lam = model.network_values(grid_points(model))
    flow = getattr(model, "reconfiguration", None)
    runs = run_reference(task, feat, observed, seq.target[seq.observed], seq.n_responses, w0,
                         s.gate_init, tau_c, tau_w, lam, substeps=s.substeps,
                         nonnegative=s.regularizer_nonnegative, l1=s.regularizer_l1,
                         reconfiguration=None if flow is None else (flow.horizon, flow.flow_steps, flow.criterion,
                                                                    reference_moment(seq.features, seq.n_responses),
                                                                    flow.criterion_spread))
    loss, margin, gates = runs[:3]
    change = np.zeros_like(loss)
    change[:, 1:] = np.abs(np.diff(gates, axis=1)).sum(-1)
    known = {"loss": loss, "margin": margin, "gate_change": change}
    if flow is not None:
        known.update(reconfig=runs[3], margin_mixed=runs[4])
    shape = tuple(p.points for p in model.grid.values())
    out = {}
    for name in model.predictors:
        if name not in known:
            pytest.fail(f"no reference for predictor {name!r} of the {model.family} family: add one to "
                        "tests/fit/test_model_contract.py")
        out[name] = known[name].reshape(*shape, -1)
    return out


#: Derived link columns (:class:`cogflex.fit.link.Derived`), from their definitions in the model docstrings.
DERIVED = {
    "margin_eff": lambda th, c: (1 - th["residue"]) * c["margin"] + th["residue"] * c["margin_mixed"],
    "evidence_deficit": lambda th, c: 1 - c["margin_eff"],
}


@pytest.mark.parametrize("name", REGISTERED, ids=lambda n: Path(n).stem)
def test_likelihood_matches_reference(name, trials):
    model = tiny(name)
    fd = prepare(trials)
    tables = [predictor_table(model, seq) for seq in fd.sequences] if model.uses_network else None
    pm_model, pointwise = build_model(model, fd, tables=tables)
    rng = np.random.default_rng(3)
    values = {k: np.array([_prior_value(p), _prior_value(p) * 0.8]) for k, p in model.priors.items()}
    logits = {k: np.array([0.0, rng.normal(0, 0.7)]) for k in model.grid}  # participant 0 on the middle node
    values.update({f"{k}_logit": v for k, v in logits.items()})
    for k, block in model.coefficients.items():
        values[k] = rng.normal(0, 0.3, (2, len(block.terms)))
    got = evaluate(pm_model, pointwise, values)

    df = trials.trials
    kept = kept_mask(df)
    pidx = (df["participant"].astype(str) == "sim02").to_numpy()[kept].astype(int)
    rt = df["rt"].to_numpy()[kept]
    correct = (df["response"].astype(str) == df["correct_response"].astype(str)).to_numpy()[kept]
    columns = reference_covariates(trials)
    if model.uses_network:
        per = [reference_columns(model, seq) for seq in fd.sequences]
        for col in model.predictors:
            columns[col] = np.empty(len(rt))
            for i in range(2):
                position = expit(np.array([logits[k][i] for k in model.grid]))
                columns[col][pidx == i] = interpolant(model.interpolation)(per[i][col][..., None], position)[:, 0]
    theta = {k: np.asarray(v)[pidx] for k, v in values.items() if not k.endswith("_logit")}
    for derived in model.formula.derived:  # written out here from the models' documented definitions
        if derived.name not in DERIVED:
            pytest.fail(f"no reference for derived column {derived.name!r}: add one to DERIVED in this file")
        columns[derived.name] = DERIVED[derived.name](theta, columns)
    sums = {}
    for side, intercept in (("acc", "acc_intercept"), ("rt", "rt_intercept")):
        total = theta[intercept].copy()
        for term in getattr(model.formula, side):
            coef = theta[term.parameter]
            x = np.column_stack([columns[c] for c in term.columns])
            total += (x * coef.reshape(len(rt), -1)).sum(1)
        sums[side] = total
    min_rt = np.array([rt[pidx == i].min() for i in range(2)])
    want = pointwise_loglik(rt, correct, sums["acc"], sums["rt"], theta["rt_sigma"], theta["rt_shift"] * min_rt[pidx])
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8)


# -- 2-4. simulate, fit, replicate, report ------------------------------------------------------------------------

OPTIONS = FitOptions(draws=150, tune=150, chains=2, seed=5, progress=False)


def _truth(model) -> dict:
    truth = {k: _prior_value(p) for k, p in model.priors.items()}
    truth.update(rt_intercept=-0.7, rt_sigma=0.25)
    truth.update({k: float(gp.value(0.5)) for k, gp in model.grid.items()})
    for block in model.coefficients.values():
        truth.update({f: 0.0 for f in block.flat_names()})
    return truth


@pytest.fixture(scope="module")
def design():
    return design_trials(Design(participants=1, sessions=4, trials_per_session=60, first_session=3, seed=2))


@pytest.fixture(scope="module")
def recovered(design, tmp_path_factory):
    out = {}
    for name in REGISTERED:
        model = tiny(name)
        data = simulate_trials(model, _truth(model), design, seed=11)
        result = fit(data, model, options=OPTIONS, out=tmp_path_factory.mktemp(model.name))
        out[name] = (model, data, result)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", REGISTERED, ids=lambda n: Path(n).stem)
def test_simulate_then_fit_recovers_observation_parameters(name, recovered):
    model, _, result = recovered[name]
    post = result.tree["posterior"]
    truth = _truth(model)
    for param in ("rt_intercept", "rt_sigma"):
        draws = post[param].values.ravel()
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo <= truth[param] <= hi, (param, truth[param], lo, hi)
    assert set(result.summary["parameters"]) == set((*model.grid, *model.priors, *model.coefficients))
    assert result.summary["fixed_parameters"] == model.fixed


@pytest.mark.slow
@pytest.mark.parametrize("name", REGISTERED, ids=lambda n: Path(n).stem)
def test_posterior_predictive_summarises_like_observed(name, recovered):
    from cogflex.fit.ppc import PPC_COLUMNS, posterior_predictive_check

    _, data, result = recovered[name]
    ppc = posterior_predictive_check(result.tree, data, draws=4, seed=1)
    assert list(ppc.columns) == PPC_COLUMNS and len(ppc)
    defined = ppc[np.isfinite(ppc["observed"]) & ppc["measure"].isin(["accuracy", "rt_median_ms"])]
    assert len(defined) and np.isfinite(defined["mean"]).all()
    assert ((defined["low"] <= defined["mean"]) & (defined["mean"] <= defined["high"])).all()


@pytest.mark.slow
def test_every_model_renders_in_one_report(design, tmp_path):
    from cogflex.fit.compare import compare_fits, load_fits
    from cogflex.report import write_report

    truth_model = tiny(REGISTERED[0])
    data = simulate_trials(truth_model, _truth(truth_model), design, seed=12)
    models = [tiny(n) for n in REGISTERED]
    for model in models:
        fit(data, model, options=OPTIONS, out=tmp_path / "fits")
    fits = load_fits([tmp_path / "fits"])
    assert set(fits.models) == {m.name for m in models}
    write_report(fits, compare_fits(fits), tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    for model in models:
        assert model.name in html
