"""Simulate participants from a fitted model's generative process: synthetic RTs and choices.

Given parameters and a trial sequence (a real one, or one generated from a
:class:`Design`), every model produces responses and RTs in the trial schema the
same way: its network predictors at exactly the given parameters (NTA: the
network run on the participant's sequence, tutorial and unobserved practice
included) and the trial covariates go through the model's link formula, and
correctness and RT are drawn from the observation model
(:func:`cogflex.fit.link.draw_observations`) — the same formulas as the likelihood.

``rt_shift`` is a fraction of the fastest kept RT in the fitted model; the
simulator solves for the shift in seconds that makes it so
(:func:`rt_shift_seconds`). On an error the response is the
irrelevant task's answer on incongruent trials and another direction on
congruent ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cogflex.data.dataset import TrialData
from cogflex.data.schema import derive, ordered
from cogflex.errors import ConfigError
from cogflex.fit.link import draw_observations
from cogflex.fit.models import CognitiveModel
from cogflex.fit.prepare import covariates
from cogflex.fit.sequence import encode

__all__ = ["Design", "design_trials", "simulate_trials", "draw_parameters", "to_ebb_and_flow",
           "model_parameter_names", "simulate_participant", "rt_shift_seconds"]

_DIRS = ("U", "D", "L", "R")


@dataclass(frozen=True)
class Design:
    """A generated Ebb and Flow-like experiment.

    Parameters
    ----------
    participants
        Number of simulated players (ids ``sim01``, ``sim02``, ...).
    sessions, trials_per_session
        Games per player and trials per game.
    first_session
        Gameplay number of the first observed game (earlier games are the
        model's unobserved practice).
    switch_rate, congruent_rate
        Probability of a task switch between consecutive trials, and of a
        congruent stimulus (point = move).
    seed
        Seed of the sequence draws.
    session_switch_rates, session_congruent_rates
        Optional per-session rates, cycled over the sessions (session k uses entry k mod length), for
        designs whose blocks differ (e.g. low- and high-switch-rate games); they replace the single rates
        above, and the trials then carry ``cond_switch_rate`` / ``cond_congruent_rate`` columns.
    """

    participants: int = 4
    sessions: int = 30
    trials_per_session: int = 70
    first_session: int = 150
    switch_rate: float = 0.18
    congruent_rate: float = 0.25
    seed: int = 0
    session_switch_rates: tuple[float, ...] = ()
    session_congruent_rates: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("participants", "sessions", "trials_per_session", "first_session"):
            if getattr(self, name) < 1:
                raise ConfigError(f"design.{name}", "must be at least 1")
        for name in ("switch_rate", "congruent_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"design.{name}", "must be between 0 and 1")
        for name in ("session_switch_rates", "session_congruent_rates"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
            if not all(0 <= v <= 1 for v in getattr(self, name)):
                raise ConfigError(f"design.{name}", "every rate must be between 0 and 1")

    def rates(self, session: int) -> tuple[float, float]:
        """(switch rate, congruent rate) of the ``session``-th game (0-based)."""
        switch = self.session_switch_rates or (self.switch_rate,)
        congruent = self.session_congruent_rates or (self.congruent_rate,)
        return switch[session % len(switch)], congruent[session % len(congruent)]


def design_trials(design: Design) -> TrialData:
    """The stimulus/cue sequence of a :class:`Design` in the trial schema (responses not yet simulated)."""
    rng = np.random.default_rng(design.seed)
    rows = []
    for p in range(design.participants):
        pid = f"sim{p + 1:02d}"
        for s in range(design.sessions):
            switch_rate, congruent_rate = design.rates(s)
            task = int(rng.integers(0, 2))
            for t in range(design.trials_per_session):
                if t and rng.random() < switch_rate:
                    task = 1 - task
                point = int(rng.integers(0, 4))
                move = point if rng.random() < congruent_rate else int((point + rng.integers(1, 4)) % 4)
                rows.append((pid, design.first_session + s, t + 1, ("point", "move")[task], _DIRS[point],
                             _DIRS[move], switch_rate, congruent_rate))
    df = pd.DataFrame(rows, columns=["participant", "session", "trial", "task", "stim_point", "stim_move",
                                     "cond_switch_rate", "cond_congruent_rate"])
    df = df.drop(columns=[c for c, given in (("cond_switch_rate", design.session_switch_rates),
                                              ("cond_congruent_rate", design.session_congruent_rates))
                          if not given])
    df["correct_response"] = np.where(df["task"] == "point", df["stim_point"], df["stim_move"])
    df["response"] = df["correct_response"]
    df["correct"] = True
    df["rt"] = 0.5
    df["congruent"] = df["stim_point"] == df["stim_move"]
    return _as_trial_data(df, source=f"design(seed={design.seed})")


def _as_trial_data(df: pd.DataFrame, source: str) -> TrialData:
    df = df.copy()
    df["participant"] = df["participant"].astype(str).astype("category")
    for col in ("session", "trial"):
        df[col] = df[col].astype("Int64")
    for col in ("task", "stim_point", "stim_move", "response", "correct_response",
                *(c for c in df.columns if c.startswith("cond_"))):
        if col in df:
            df[col] = df[col].astype("category")
    df["correct"] = df["correct"].astype("boolean")
    df["congruent"] = df["congruent"].astype("boolean")
    df = derive(ordered(df))
    return TrialData(trials=df, source=source, format="ebb-and-flow")


def model_parameter_names(model: CognitiveModel) -> tuple[str, ...]:
    """Names of the parameters a simulation needs (coefficient blocks flattened: ``rt_<term>``/``acc_<term>``)."""
    return model.simulation_parameters()


def draw_parameters(model: CognitiveModel, rng: np.random.Generator) -> dict[str, float]:
    """One parameter set drawn from the model's priors."""
    return model.draw_parameters(rng)


def simulate_trials(spec: CognitiveModel, params: dict, trials: TrialData, *, seed: int = 0) -> TrialData:
    """Responses, correctness and RTs for every trial of ``trials`` under ``spec`` with ``params``.

    Parameters
    ----------
    params
        Parameter name -> value for everyone, or -> {participant: value}
        (names: :func:`model_parameter_names`).
    """
    needed = model_parameter_names(spec)
    missing = [n for n in needed if n not in params]
    if missing:
        raise ConfigError(f"params.{missing[0]}", f"missing (the {spec.name} model needs {', '.join(needed)})")
    unknown = sorted(set(params) - set(needed))
    if unknown:
        raise ConfigError(f"params.{unknown[0]}", f"not a parameter of {spec.name} (expected {', '.join(needed)})")
    rng = np.random.default_rng(seed)
    df = trials.trials.copy()
    seqs = encode(trials, np.ones(len(df), dtype=bool))
    correct = np.zeros(len(df), dtype=bool)
    rt = np.zeros(len(df))
    response = np.empty(len(df), dtype=object)
    for seq in seqs:
        p = {k: _value(k, v, seq.participant) for k, v in params.items()}
        ok, times, resp = simulate_participant(spec, p, seq, df.iloc[seq.rows], rng)
        correct[seq.rows], rt[seq.rows], response[seq.rows] = ok[0], times[0], resp[0]
    df["correct"] = pd.array(correct, dtype="boolean")
    df["rt"] = rt
    if "correct_response" in df and seqs[0].n_responses == 4:
        df["response"] = pd.Categorical(response, categories=list(_DIRS))
    df = derive(df)
    return trials.with_trials(df)


def _value(name: str, value, participant: str) -> np.ndarray:
    if isinstance(value, dict):
        if participant not in value:
            raise ConfigError(f"params.{name}", f"no value for participant {participant!r} "
                                                f"(given for: {', '.join(map(str, value))})")
        value = value[participant]
    try:
        out = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        raise ConfigError(f"params.{name}", f"not a number: {value!r}") from None
    if out.shape != (1,):
        raise ConfigError(f"params.{name}", f"expected one number, got {value!r}")
    if not np.isfinite(out).all():
        raise ConfigError(f"params.{name}", f"not a finite number: {value!r}")
    return out


def rt_shift_seconds(fraction: np.ndarray, decision: np.ndarray, kept: np.ndarray, *, rt_min: float = 0.15,
                     rt_max: float = 3.0, iterations: int = 8) -> np.ndarray:
    """The RT shift s that the fitted model would call ``fraction`` of the fastest kept RT.

    The likelihood's shift is ``rt_shift x`` the participant's fastest RT among the trials the fit keeps;
    with decision times X, the RTs are s + X and the fastest kept one depends on s through the RT
    bounds, so s = fraction x min{s + X : kept, rt_min <= s + X <= rt_max} is solved by fixed-point
    iteration. ``decision`` is ``(G, n)``, ``fraction`` ``(G,)``, ``kept`` ``(n,)`` (the trials the
    cleaning keeps regardless of RT: not a session's first trial).
    """
    x = np.where(kept[None, :], decision, np.inf)
    shift = fraction * x.min(1) / (1 - fraction)
    for _ in range(iterations):
        rt = shift[:, None] + x
        inside = (rt >= rt_min) & (rt <= rt_max)
        fastest = np.where(inside, rt, np.inf).min(1)
        fastest = np.where(np.isfinite(fastest), fastest, rt_min)
        shift = fraction * fastest
    return shift


def simulate_participant(spec: CognitiveModel, p: dict[str, np.ndarray], seq, rows: pd.DataFrame,
                         rng: np.random.Generator, *, fastest: float | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """G simulated replications of one participant's trials, one per parameter set.

    ``p`` maps parameter names to arrays of length G; ``seq`` is the encoded
    sequence with every trial observed; ``rows`` its trial-table rows.
    ``fastest``: the participant's fastest RT among the fitted trials, when replicating observed data
    (posterior predictive checks): the RT shift is then ``rt_shift x fastest``, exactly as in the
    likelihood. Without it (new synthetic data) the shift is solved from the simulated RTs
    (:func:`rt_shift_seconds`), which is ill-conditioned for ``rt_shift`` near 1 and many trials.
    Returns ``(correct, rt, response)``, each ``(G, n_trials)``; NTA networks
    for all G parameter sets run as one batch.
    """
    g = max(len(v) for v in p.values())
    p = {k: np.broadcast_to(v, (g,)) for k, v in p.items()}
    n = len(seq)
    log_session = np.log(rows["session"].to_numpy(dtype=float).clip(min=1))
    columns = covariates(pd.DataFrame({"switch": rows["switch"].fillna(False).to_numpy(dtype=bool),
                                       "congruent": seq.congruent, "run_position": rows["run_position"].to_numpy(),
                                       "log_practice": log_session - log_session.mean()}))
    columns = {k: v[None, :] for k, v in columns.items()}
    if spec.uses_network:
        pred = spec.compute_predictors(seq, {k: p[k] for k in spec.grid_names})
        columns.update({name: pred[..., k] for k, name in enumerate(spec.predictors)})
    theta = {k: p[k][:, None] for k in spec.priors}
    for name, block in spec.coefficients.items():
        theta[name] = np.stack([p[f] for f in block.flat_names()], axis=1)[:, None, :]  # (G, 1, terms)
    logit, mu = spec.formula.linear_predictors(theta, columns)
    logit, mu = np.broadcast_to(logit, (g, n)), np.broadcast_to(mu, (g, n))
    ok, decision = draw_observations(rng, logit, mu, p["rt_sigma"][:, None])
    not_first = np.r_[False, seq.session[1:] == seq.session[:-1]]
    if fastest is not None:
        shift = p["rt_shift"] * fastest
    else:
        shift = rt_shift_seconds(p["rt_shift"], decision, not_first)
    rt = shift[:, None] + decision
    target = seq.target
    irrelevant = seq.features[np.arange(n), 1 - seq.task]
    other = (target[None, :] + rng.integers(1, seq.n_responses, (g, n))) % seq.n_responses
    wrong = np.where(irrelevant != target, irrelevant[None, :], other)
    labels = np.array(_DIRS if seq.n_responses == 4 else [str(i) for i in range(seq.n_responses)], dtype=object)
    response = labels[np.where(ok, target[None, :], wrong)]
    return ok, rt, response


def to_ebb_and_flow(trials: TrialData, *, age: float = float("nan")) -> pd.DataFrame:
    """Trials in the Lumosity Ebb and Flow export layout (for writing CSVs that ``load_trials`` reads back)."""
    df = trials.trials
    game = df["participant"].astype(str) + "-" + df["session"].astype(str)
    out = pd.DataFrame({
        "user_id": df["participant"].astype(str),
        "age": df["age"] if "age" in df else age,
        "game_result_id": pd.factorize(game)[0] + 1,
        "nth_master": df["session"].astype(int),
        "timestamp_rel_days": (df["session"].astype(int) - df.groupby("participant", observed=True)["session"]
                               .transform("min").astype(int)) * 0.5,
        "trial": df["trial"].astype(int),
        "time_offset": (df.groupby(game)["rt"].cumsum() * 1000 + 200 * (df["trial"].astype(int) - 1)).round(),
        "task_cue": np.where(df["task"].astype(str) == "point", "P", "M"),
        "switch": np.where(df["switch"].fillna(False), "T", "F"),
        "point_dir": df["stim_point"].astype(str),
        "mv_dir": df["stim_move"].astype(str),
        "resp_dir": df["response"].astype(str),
        "correct": np.where(df["correct"].fillna(False), "T", "F"),
        "resp_time": (df["rt"] * 1000).round().astype(int),
    })
    return out
