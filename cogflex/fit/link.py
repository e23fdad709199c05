"""The observation model, written once for numpy and PyTensor: from per-trial predictors to (correct, RT).

Every model in cogflex links its per-trial quantities to behaviour the same way:

    P(correct_t) = logistic(eta_t),   eta_t = acc_intercept + sum_k a_k z_tk
    RT_t = shift + LogNormal(mu_t, rt_sigma),   mu_t = rt_intercept + sum_j b_j x_tj

where the columns x, z are the model's predictors (the network's squared error and output margin for the
NTA models) or trial covariates (switch, congruency, practice: the descriptive regression), and
``shift = rt_shift x`` the participant's fastest kept RT. The pointwise log-likelihood of a trial is the
joint log density of its correctness and its RT **in seconds**: ``log P(correct_t) + log p(RT_t)``.

The formulas below take an *array namespace* ``xp`` (:data:`NUMPY` or :func:`pytensor_namespace`), so the
PyMC likelihood, the start-value search, the exact-vs-interpolated check and the simulator all evaluate the
same expressions (arviz-stats' idea of a numpy core under other layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

__all__ = ["Term", "Derived", "LinearLink", "NUMPY", "pytensor_namespace", "observation_loglik", "draw_observations",
           "OBSERVATION_PARAMETERS"]

#: Per-participant parameters of the observation model that every model has.
OBSERVATION_PARAMETERS = ("acc_intercept", "rt_intercept", "rt_sigma", "rt_shift")

_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


def _np_softplus(x):
    return np.logaddexp(0.0, x)


def _np_normal_cdf(x):
    from scipy.special import ndtr

    return ndtr(x)


#: numpy as an array namespace of the link formulas.
NUMPY = SimpleNamespace(name="numpy", log=np.log, where=np.where, softplus=_np_softplus, floor=np.floor,
                        clip=np.clip, as_index=lambda a: np.asarray(a).astype(np.int64), take=np.take,
                        stack=np.stack, tensordot=np.tensordot, constant=np.asarray, normal_cdf=_np_normal_cdf)


def pytensor_namespace() -> SimpleNamespace:
    """PyTensor as an array namespace (imported lazily: the numpy side never needs PyTensor)."""
    import pytensor.tensor as pt

    return SimpleNamespace(name="pytensor", log=pt.log, where=pt.switch, softplus=pt.softplus, floor=pt.floor,
                           clip=pt.clip, as_index=lambda a: pt.cast(a, "int64"), take=pt.take,
                           stack=pt.stack, tensordot=pt.tensordot, constant=pt.constant,
                           normal_cdf=lambda x: 0.5 * pt.erfc(-x / np.sqrt(2.0)))


@dataclass(frozen=True)
class Term:
    """One additive term of a linear predictor: a parameter times a column.

    ``parameter`` names a per-participant scalar parameter times one column, or (``block=True``) a block of
    coefficients over terms, one column per coefficient in the block's order (the descriptive regression).
    Columns are the model's predictors or the trial covariates of :func:`cogflex.fit.prepare.covariates`.
    """

    parameter: str
    columns: tuple[str, ...]
    block: bool = False

    def __post_init__(self) -> None:
        if not self.block and len(self.columns) != 1:
            raise ValueError(f"term {self.parameter!r}: a scalar parameter multiplies exactly one column")

    def value(self, theta: dict, columns: dict):
        """The term's contribution per trial (numpy or PyTensor arrays, broadcasting)."""
        coef = theta[self.parameter]
        if not self.block:
            return coef * columns[self.columns[0]]
        return (_stack([columns[c] for c in self.columns], symbolic=not isinstance(coef, np.ndarray)) * coef).sum(-1)


def _stack(arrays: list, *, symbolic: bool):
    """Columns side by side (trials x terms); symbolic when any part of the expression is PyTensor."""
    if all(isinstance(a, np.ndarray) for a in arrays):
        stacked = np.stack(arrays, axis=-1)
        if not symbolic:
            return stacked
        import pytensor.tensor as pt

        return pt.as_tensor(stacked)
    import pytensor.tensor as pt

    return pt.stack([pt.as_tensor(a) for a in arrays], axis=-1)


@dataclass(frozen=True)
class Derived:
    """A column computed from other columns and parameters before the terms are summed.

    ``value(theta, columns)`` must use only arithmetic (it runs on numpy and PyTensor arrays alike);
    ``inputs`` are the columns it reads; ``base`` names the column it equals at the parameters' start values,
    which the profile start search (:mod:`cogflex.fit.start`) uses in its place (``None``: no profile).
    Example: the reconfiguration models' effective margin ``margin + residue (margin_mixed - margin)``.
    """

    name: str
    value: object  # callable(theta, columns) -> array
    inputs: tuple[str, ...]
    base: str | None = None


@dataclass(frozen=True)
class LinearLink:
    """The linear predictors of accuracy (``acc``) and RT location (``rt``), each an intercept plus terms.

    ``derived`` columns are computed first, in order, and terms may read them like any other column.
    """

    rt: tuple[Term, ...] = ()
    acc: tuple[Term, ...] = ()
    derived: tuple[Derived, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the link reads from outside (predictors, covariates), in order of first use."""
        made = {d.name for d in self.derived}
        used = [c for d in self.derived for c in d.inputs] + [c for t in (*self.rt, *self.acc) for c in t.columns]
        return tuple(c for c in dict.fromkeys(used) if c not in made)

    def profile_column(self, column: str) -> str | None:
        """The outside column that stands in for ``column`` in the profile search (itself when not derived)."""
        for d in self.derived:
            if d.name == column:
                return d.base
        return column

    def linear_predictors(self, theta: dict, columns: dict):
        """``(eta, mu)``: the accuracy logit and the RT log-location per trial."""
        if self.derived:
            columns = dict(columns)
            for d in self.derived:
                columns[d.name] = d.value(theta, columns)
        eta = theta["acc_intercept"]
        for term in self.acc:
            eta = eta + term.value(theta, columns)
        mu = theta["rt_intercept"]
        for term in self.rt:
            mu = mu + term.value(theta, columns)
        return eta, mu

    def loglik(self, xp, theta: dict, columns: dict, rt, correct, fastest):
        """Pointwise joint log density of (correct, RT in s); ``fastest`` is the participant's fastest kept RT."""
        eta, mu = self.linear_predictors(theta, columns)
        return observation_loglik(xp, rt, correct, eta, mu, theta["rt_sigma"], theta["rt_shift"] * fastest)

    def rt_cdf(self, xp, theta: dict, columns: dict, rt, fastest):
        """P(RT <= rt) per trial under the model: the shifted log-normal's CDF.

        RT does not depend on correctness given the parameters, so this is also the RT's CDF given the trial's
        correctness.
        """
        _, mu = self.linear_predictors(theta, columns)
        return xp.normal_cdf((xp.log(rt - theta["rt_shift"] * fastest) - mu) / theta["rt_sigma"])


def observation_loglik(xp, rt, correct, eta, mu, sigma, shift):
    """Log Bernoulli(correct | logistic(eta)) + log ShiftedLogNormal(rt | shift, mu, sigma), per trial."""
    log_y = xp.log(rt - shift)
    ll_rt = -log_y - xp.log(sigma) - _HALF_LOG_2PI - 0.5 * ((log_y - mu) / sigma) ** 2
    ll_acc = xp.where(correct, -xp.softplus(-eta), -xp.softplus(eta))
    return ll_rt + ll_acc


def draw_observations(rng: np.random.Generator, eta: np.ndarray, mu: np.ndarray, sigma: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Correctness and decision times (RT minus shift) drawn from the observation model (numpy, ``(G, n)``)."""
    ok = rng.random(eta.shape) < 1.0 / (1.0 + np.exp(-eta))
    decision = np.exp(mu + sigma * rng.standard_normal(mu.shape))
    return ok, decision
