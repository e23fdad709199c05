"""How far each posterior moved from its prior: prior densities on the parameter's own scale, and the figure.

A model's priors are defined where the sampler works: scalar parameters have a univariate
:class:`~cogflex.fit.models.parameters.Prior` (normal, halfnormal, lognormal, beta) on their value; a grid
(network) parameter has a normal prior on the *logit of its position* in its box
(:class:`~cogflex.fit.models.parameters.GridParameter`), so that its value
``v = lower + (upper - lower) * u`` (linear box) or ``v = exp(log lower + (log upper - log lower) * u)``
(log box), with ``u = sigmoid(L)`` and ``L ~ normal(prior_mu, prior_sigma)``, has the density

    p(v) = normal_pdf(logit u) / (u (1 - u)) * du/dv,    du/dv = 1 / (upper - lower)  or  1 / (v log(upper / lower)).

:func:`prior_density` is that density (scipy.stats for the scalar priors), per unit of the parameter's
value; :func:`axis_density` re-expresses it per unit of the figure's axis (per unit of log10 of the value
on a log axis, where areas must still read as probabilities). :func:`plot_prior_posterior` overlays, per
parameter and participant, the prior and a histogram of the posterior draws, and marks the parameters
:func:`cogflex.fit.checks.weakly_identified` flags (the fit's ``weak_parameters``).
"""

from __future__ import annotations

import json

import numpy as np
from scipy import stats

from cogflex.fit.models.parameters import GridParameter, Prior

__all__ = ["MAX_PARTICIPANTS", "prior_density", "axis_density", "prior_range", "on_log_axis", "weak_parameters",
           "plot_prior_posterior"]

#: Participants the figure shows at most (the first ones of the fit).
MAX_PARTICIPANTS = 12
#: Share of the prior's mass that the x range of a scalar parameter's panel covers at least.
PRIOR_MASS = 0.998
#: Colours: prior, posterior, a posterior that barely moved from its prior.
PRIOR_COLOR, POSTERIOR_COLOR, WEAK_COLOR = "#9aa3ad", "#1f77b4", "#d62728"


def _scipy(prior: Prior):
    if prior.dist == "normal":
        return stats.norm(prior.mu, prior.sigma)
    if prior.dist == "halfnormal":
        return stats.halfnorm(scale=prior.sigma)
    if prior.dist == "lognormal":
        return stats.lognorm(s=prior.sigma, scale=np.exp(prior.mu))
    return stats.beta(prior.alpha, prior.beta)


def prior_density(prior: Prior | GridParameter, x) -> np.ndarray:
    """Prior density of a parameter's value ``x`` (per unit of the value); 0 outside the support."""
    x = np.asarray(x, dtype=float)
    if isinstance(prior, Prior):
        return _scipy(prior).pdf(x)
    inside = (x > prior.lower) & (x < prior.upper)
    xs = np.where(inside, x, 0.5 * (prior.lower + prior.upper))  # any point inside: masked below
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = np.clip(prior.position(xs), 1e-300, 1 - 1e-16)
        logit = np.log(u) - np.log1p(-u)
        if prior.scale == "log":
            log_du_dv = -np.log(xs) - np.log(np.log(prior.upper / prior.lower))
        else:
            log_du_dv = -np.log(prior.upper - prior.lower)
        log_p = (stats.norm.logpdf(logit, prior.prior_mu, prior.prior_sigma) - np.log(u) - np.log1p(-u)
                 + log_du_dv)
        return np.where(inside, np.exp(log_p), 0.0)


def axis_density(prior: Prior | GridParameter, x, *, log_axis: bool) -> np.ndarray:
    """:func:`prior_density` per unit of the figure's axis: of log10(x) on a log axis, of x otherwise."""
    x = np.asarray(x, dtype=float)
    density = prior_density(prior, x)
    return density * x * np.log(10.0) if log_axis else density


def prior_range(prior: Prior | GridParameter, mass: float = PRIOR_MASS) -> tuple[float, float]:
    """The x range that shows a prior.

    A grid parameter's whole box, a bounded prior's support, else the central ``mass`` (halfnormal: from 0).
    """
    if isinstance(prior, GridParameter):
        return float(prior.lower), float(prior.upper)
    if prior.dist == "beta":
        return 0.0, 1.0
    dist = _scipy(prior)
    if prior.dist == "halfnormal":
        return 0.0, float(dist.ppf(mass))
    return float(dist.ppf((1 - mass) / 2)), float(dist.ppf((1 + mass) / 2))


def on_log_axis(prior: Prior | GridParameter) -> bool:
    """Log boxes and lognormal priors are drawn on a log axis (the scale their prior is defined on)."""
    return prior.scale == "log" if isinstance(prior, GridParameter) else prior.dist == "lognormal"


def _axis_points(prior, lo: float, hi: float, log_axis: bool, n: int = 400) -> np.ndarray:
    """Points at which to draw the prior.

    Even along the axis, plus (grid) even in the logit of the position, which resolves the steep ends a wide
    logit-normal prior has near its box's bounds (and, beta, the ends where alpha or beta < 1 diverges).
    """
    if log_axis:
        x = np.geomspace(lo, hi, n)
    else:
        x = np.linspace(lo, hi, n)
    if isinstance(prior, GridParameter):
        logit = np.linspace(prior.prior_mu - 8 * prior.prior_sigma, prior.prior_mu + 8 * prior.prior_sigma, n)
        x = np.concatenate([x, prior.value(1 / (1 + np.exp(-logit)))])
    elif prior.dist == "beta":
        x = np.concatenate([x, np.geomspace(1e-6, 1e-2, 40), 1 - np.geomspace(1e-6, 1e-2, 40)])
    x = np.unique(x[(x >= lo) & (x <= hi)])
    return x


def prior_curve(prior: Prior | GridParameter, lo: float, hi: float, *, log_axis: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(x, density per axis unit)`` of a prior between ``lo`` and ``hi``: the curve the figure draws."""
    x = _axis_points(prior, lo, hi, log_axis)
    return x, axis_density(prior, x, log_axis=log_axis)


def weak_parameters(tree) -> list[dict]:
    """The fit's weakly identified parameters (its ``weak_parameters`` attribute; computed for older fits)."""
    if "weak_parameters" in tree.attrs:
        return json.loads(tree.attrs["weak_parameters"])
    from cogflex.fit.checks import weakly_identified
    from cogflex.fit.schema import model_of

    return weakly_identified(model_of(tree), tree["posterior"].to_dataset())


def _panels(tree) -> list[tuple[str, Prior | GridParameter]]:
    """The parameters drawn (grid parameters, then scalars), each with its prior."""
    from cogflex.fit.schema import model_of

    model = model_of(tree)
    post = tree["posterior"]
    out = []
    for name, prior in (*model.grid.items(), *model.priors.items()):
        if name in post and not set(post[name].dims) - {"chain", "draw", "participant"}:
            out.append((name, prior))
    return out


def _draws(da, pid) -> np.ndarray:
    sub = da.sel(participant=pid) if "participant" in da.dims else da
    return np.asarray(sub.values, dtype=float).ravel()


def _histogram(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Density histogram of draws ``t`` (axis units) over their central 99.8%: ``(density, edges)``."""
    t = t[np.isfinite(t)]
    lo, hi = np.quantile(t, [0.001, 0.999])
    if not hi > lo:
        lo, hi = lo - 1e-6 * max(1.0, abs(lo)), hi + 1e-6 * max(1.0, abs(hi))
    bins = int(np.clip(np.sqrt(len(t)), 10, 40))
    counts, edges = np.histogram(t, bins=bins, range=(lo, hi))
    return counts / (len(t) * np.diff(edges)), edges


def _x_range(prior, draws: list[np.ndarray], log_axis: bool) -> tuple[float, float]:
    lo, hi = prior_range(prior)
    if isinstance(prior, GridParameter):
        return lo, hi  # the whole box: where the posterior sits in it is the point
    values = np.concatenate([d[np.isfinite(d)] for d in draws]) if draws else np.array([])
    if values.size:
        lo, hi = min(lo, float(np.quantile(values, 0.001))), max(hi, float(np.quantile(values, 0.999)))
    if prior.dist == "beta":
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    if prior.dist == "halfnormal":
        lo = max(lo, 0.0)
    if log_axis:
        lo = max(lo, hi * 1e-12)
    return lo, hi


def plot_prior_posterior(tree, *, title: str = "", weak: list[dict] | None = None,
                         max_participants: int = MAX_PARTICIPANTS):
    """Prior vs posterior per parameter (one panel each) and participant (one row each): a matplotlib figure.

    Each row draws a participant's posterior (histogram of all draws) over the prior (grey), both per unit of
    the panel's axis and scaled together so that the taller fills the row; a log axis (log boxes, lognormal
    priors) shows densities per unit of log10 of the value. Posteriors in ``weak`` (default: the fit's
    ``weak_parameters``) are red, and so are their participant's label and the panel's title. Coefficient
    blocks are not drawn. ``None`` when the model has no parameter with a known prior (outside fits).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from cogflex.fit.checks import WEAK_SD_RATIO
    from cogflex.fit.schema import model_of

    panels = _panels(tree)
    if not panels:
        return None
    model = model_of(tree)
    post = tree["posterior"]
    weak = weak_parameters(tree) if weak is None else weak
    flagged = {(str(e["participant"]), e["parameter"]) for e in weak}
    participants = ([str(p) for p in post["participant"].values] if "participant" in post.dims else ["-"])
    shown = participants[:max_participants]
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    row_height = 0.42 if len(shown) > 1 else 1.3
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, nrows * (0.95 + row_height * len(shown))),
                             squeeze=False, layout="constrained")
    for ax, (name, prior) in zip(axes.ravel(), panels):
        log_axis = on_log_axis(prior)
        draws = [_draws(post[name], pid) for pid in shown]
        lo, hi = _x_range(prior, draws, log_axis)
        px, pd_axis = prior_curve(prior, lo, hi, log_axis=log_axis)
        n_weak = 0
        for i, (pid, values) in enumerate(zip(shown, draws)):
            base = -float(i)
            t = np.log10(values[values > 0]) if log_axis else values
            density, edges = _histogram(t)
            edges = 10.0 ** edges if log_axis else edges
            finite_prior = pd_axis[np.isfinite(pd_axis)]
            top = max(float(density.max()), float(np.max(finite_prior)) if finite_prior.size else 0.0)
            scale = 0.85 / top if top > 0 else 1.0
            ax.fill_between(px, base, base + scale * np.nan_to_num(pd_axis, posinf=top), facecolor=PRIOR_COLOR,
                            alpha=0.45, lw=0.8, edgecolor=PRIOR_COLOR)
            is_weak = (pid, name) in flagged
            n_weak += is_weak
            color = WEAK_COLOR if is_weak else POSTERIOR_COLOR
            ax.stairs(base + scale * density, edges, baseline=base, fill=True, color=color, alpha=0.55, lw=0)
            ax.stairs(base + scale * density, edges, baseline=None, color=color, lw=0.9)
        ax.set_yticks([-float(i) + 0.3 for i in range(len(shown))], shown if len(shown) > 1 else [""], fontsize=7)
        for label, pid in zip(ax.get_yticklabels(), shown):
            if (pid, name) in flagged:
                label.set_color(WEAK_COLOR)
                label.set_fontweight("bold")
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-len(shown) + 0.9, 1.0)
        ax.set_xlim(lo, hi)
        _format_x(ax, lo, hi, log_axis)
        label = model.label(name)
        if n_weak:
            who = "" if len(shown) == 1 else f" ({n_weak} of {len(shown)})"
            ax.set_title(f"{label}\nbarely moved from prior{who}", fontsize=9, color=WEAK_COLOR)
        else:
            ax.set_title(label, fontsize=9)
        ax.spines[["top", "right", "left"]].set_visible(False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    handles = [Patch(color=PRIOR_COLOR, alpha=0.6, label="prior"),
               Patch(color=POSTERIOR_COLOR, alpha=0.6, label="posterior"),
               Patch(color=WEAK_COLOR, alpha=0.6,
                     label=f"posterior that barely moved from its prior (SD > {WEAK_SD_RATIO:.0%} of the prior's)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    capped = f" (first {len(shown)} of {len(participants)} participants)" if len(shown) < len(participants) else ""
    fig.suptitle(f"{title or model.name}: prior vs posterior{capped}", fontsize=10)
    return fig


def _format_x(ax, lo: float, hi: float, log_axis: bool) -> None:
    """Few, plainly written ticks: log axes label 1-2-5 (short ranges) or the decades (long ones)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    if log_axis:
        ax.set_xscale("log")
        decades = np.log10(hi / lo)
        subs = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0)
        within = [m * 10.0 ** k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
                  for m in subs if lo <= m * 10.0 ** k <= hi]
        if len(within) < 2:  # a range shorter than from one 1-2-5 value to the next
            subs = tuple(float(m) for m in range(1, 10))
        ax.xaxis.set_major_locator(LogLocator(subs=subs))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.tick_params(axis="x", labelsize=7)
