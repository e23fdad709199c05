"""Grid refinement: predictor tables fine enough where the posterior is.

A network model's first table covers its whole box on the model's own nodes (flexible-reconfig: 33 x 21).
That is fine enough to find the posterior, but not to be exact there: multilinear interpolation errs by the
node spacing squared times the surface's curvature, and on the shared players the exact network's
log-likelihood at the posterior was 3-70 units away from the interpolated one. For a per-participant fit
(``FitOptions.refine``, on by default) cogflex therefore puts the nodes where the posterior is:

1. a short **pilot** (2 chains, 200 tuning + 150 draws; fewer when the fit itself asks for fewer) on the current
   table, started at the mode search's best point;
2. the pilot's **interpolation error**: at its mean and 4 of its draws, the exact network's log-likelihood
   minus the interpolated one (:func:`cogflex.fit.checks.interpolation_check`, the check every fit records);
3. a pilot on the model's own grid, a pilot whose error exceeds ``refine_tolerance`` (1 log-likelihood unit), or one
   whose draws reach an edge of its window inside the box, is followed by a **new window**: the pilot's range
   of box positions, widened by as much again on each side, with ``refine_points`` nodes per axis (9), its
   table, and a mode search from the pilot's mean; a window that failed the tolerance but would not shrink gets
   twice the nodes;
4. refinement stops early when a window's pilot error is not below :data:`STALL` (0.7) times the best earlier
   window's while its draws stay inside it: the exact network's likelihood is rough at that scale (measured on
   the shared players: ridges of 10-25 log units between parameter values 0.5% apart, docs/fitting.md), and a
   finer grid would only chase them;
5. the fit samples on the last window when it met the tolerance; otherwise (at most ``refine_rounds`` = 3 new
   windows) on the refined window whose pilot stayed inside it with the smallest error (the last one when every
   pilot reached an edge). The prior stays the model's logit-normal prior on the box position, truncated to
   the window: the window holds the pilot's draws with a margin, so the truncation cuts prior mass the
   posterior does not have. A final posterior that reaches an
   inner edge of its window is refitted once on a window laid over its own draws (``recentred_from`` in the
   record); one that still reaches an edge is flagged with the box-bound check (``box_bounds``, bound
   ``"window lower"``/``"window upper"``), and keeps the fit from a decisive verdict.

Every round is recorded in the fit (``grid_refinement`` attribute): window (box positions and parameter
values), nodes, pilot error, whether the pilot reached the window's edge, and seconds. Hierarchical fits
keep the whole-box grid (their participants share one table layout).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import numpy as np

from cogflex.fit.checks import interpolation_check
from cogflex.fit.pymc_model import build_model
from cogflex.fit.start import find_mode
from cogflex.fit.tables import GridWindow, predictor_table

__all__ = ["PILOT", "MARGIN", "EDGE_ZONE", "EDGE_SHARE", "refine_grid", "next_window", "window_edges",
           "pilot_settings", "fitted_windows"]

#: Pilot run: chains, tuning steps, draws (each at most the fit's own).
PILOT = {"chains": 2, "tune": 200, "draws": 150}
#: A new window is the pilot's range widened by MARGIN of its width on each side ...
MARGIN = 1.0
#: ... and at least this wide on each side of the range (box position).
MIN_MARGIN = 1e-3
#: A posterior "reaches an edge" of its window when more than EDGE_SHARE of its draws lie within EDGE_ZONE (share
#: of the window's width) of an edge that is not the box's own.
EDGE_ZONE, EDGE_SHARE = 0.05, 0.01
#: Most nodes per axis of a refined window.
MAX_POINTS = 33
#: Refinement stops when a window's pilot error is above STALL times the best earlier window's (and its draws
#: stay inside it): the exact likelihood is rough at that scale, and a finer grid would only follow its ridges.
STALL = 0.7


def pilot_settings(options) -> dict:
    """The pilot's chains, tuning steps and draws: :data:`PILOT`, capped by the fit's own settings."""
    return {"chains": min(PILOT["chains"], options.chains), "tune": min(PILOT["tune"], max(options.tune, 50)),
            "draws": min(PILOT["draws"], max(options.draws, 50))}


def box_positions(model, posterior) -> list[np.ndarray]:
    """Every draw's box position per grid axis (one participant's posterior)."""
    return [np.asarray(gp.position(np.asarray(posterior[name].values, dtype=float).ravel()), dtype=float)
            for name, gp in model.grid.items()]


def window_edges(model, window: GridWindow, positions: list[np.ndarray]) -> list[dict]:
    """The inner edges of ``window`` that the draws reach (:data:`EDGE_ZONE`, :data:`EDGE_SHARE`)."""
    out = []
    for d, (name, x) in enumerate(zip(model.grid_names, positions)):
        lo, hi = window.lower[d], window.upper[d]
        zone = EDGE_ZONE * (hi - lo)
        for bound, edge, share in (("lower", lo, float(np.mean(x < lo + zone))),
                                   ("upper", hi, float(np.mean(x > hi - zone)))):
            if 0.0 < edge < 1.0 and share > EDGE_SHARE:
                out.append({"parameter": name, "bound": f"window {bound}", "edge": float(model.grid[name].value(edge)),
                            "share": share, "median": float(model.grid[name].value(float(np.median(x))))})
    return out


def next_window(window: GridWindow, positions: list[np.ndarray], points: int, *, grow: bool = False) -> GridWindow:
    """The window over the draws' range, widened by :data:`MARGIN` on each side (clipped to the box).

    ``grow`` (the last refined window failed the tolerance) doubles the nodes when the new window would not
    be narrower than the last one on every axis.
    """
    lower, upper = [], []
    for x in positions:
        a, b = float(np.min(x)), float(np.max(x))
        margin = max(MARGIN * (b - a), MIN_MARGIN)
        lower.append(max(0.0, a - margin))
        upper.append(min(1.0, b + margin))
    n = points
    if grow:
        shrinks = all(hi - lo < 0.7 * (window.upper[d] - window.lower[d])
                      for d, (lo, hi) in enumerate(zip(lower, upper)))
        if not shrinks:
            n = min(2 * max(window.points) - 1, MAX_POINTS)
    return GridWindow(tuple(lower), tuple(upper), (max(n, points),) * len(positions))


def refine_grid(model, fd, options, cache_dir, state: dict, sample: Callable, seed: int) -> dict:
    """Refine one participant's table around its posterior (module docstring); returns the final state.

    ``state`` holds the whole-box ``tables``, their ``pm_model`` and ``pointwise`` term and the mode search's
    best point ``start``; ``sample(pm_model, initvals, seed, chains=, tune=, draws=)`` runs NUTS and returns
    the posterior Dataset. Returns the same keys for the last window, with ``window`` and ``rounds`` (the
    record).
    """
    window = GridWindow.full(model)
    tables, pm_model, pointwise, start = state["tables"], state["pm_model"], state["pointwise"], state["start"]
    settings = pilot_settings(options)
    rounds: list[dict] = []
    states: list[dict] = []
    for r in range(options.refine_rounds + 1):
        states.append({"window": window, "tables": tables, "pm_model": pm_model, "pointwise": pointwise,
                       "start": start})
        t0 = time.perf_counter()
        pilot = sample(pm_model, start, int(np.random.SeedSequence([seed, 1, r]).generate_state(1)[0]), **settings)
        check = interpolation_check(model, fd, tables, pilot, windows=[window])[0]
        positions = box_positions(model, pilot)
        edges = window_edges(model, window, positions)
        error = float(check["difference"])
        rounds.append({"round": r, "window": window.record(model), "pilot_error": error,
                       "pilot_errors": check["differences"], "pilot_at_edge": [e["parameter"] for e in edges],
                       "pilot": settings})
        earlier = [abs(x["pilot_error"]) for x in rounds[1:-1]]  # the previous refined windows
        stop = None
        if r > 0 and not edges and abs(error) <= options.refine_tolerance:
            stop = "within tolerance"
        elif earlier and not edges and abs(error) > STALL * min(earlier):
            stop = "not improving"  # the exact surface is rough at this scale: more nodes would fit its ridges
        elif r == options.refine_rounds:
            stop = "rounds exhausted"
        rounds[-1]["stop"] = stop
        if options.progress:
            print(f"{model.name} {fd.participants[0]}: grid round {r} ({' x '.join(map(str, window.points))} nodes"
                  f"{'' if window.is_full_box() else ' over ' + _describe(window.record(model)['values'])}): pilot "
                  f"interpolation error {error:+.2f}{', at the window edge' if edges else ''}"
                  f"{'; stop: ' + stop if stop else ''}", file=sys.stderr,
                  flush=True)
        if stop is not None:
            rounds[-1]["seconds"] = time.perf_counter() - t0
            break
        grow = r > 0 and not edges and abs(error) > options.refine_tolerance
        window = next_window(window, positions, options.refine_points, grow=grow)
        tables, pm_model, pointwise, start = _on_window(model, fd, cache_dir, window, pilot)
        rounds[-1]["seconds"] = time.perf_counter() - t0
    chosen = _best_round(rounds)
    for k, record in enumerate(rounds):
        record["chosen"] = k == chosen
    return {**states[chosen], "rounds": rounds}


def _best_round(rounds: list[dict]) -> int:
    """The round whose window the fit samples on.

    The last one when it met the tolerance, else the refined window whose pilot stayed inside it with the
    smallest error (the last one when every pilot reached an edge).
    """
    if rounds[-1]["stop"] == "within tolerance" or len(rounds) == 1:
        return len(rounds) - 1
    inside = [k for k in range(1, len(rounds)) if not rounds[k]["pilot_at_edge"]]
    if not inside:  # every pilot reached its window's edge: the last window follows the posterior furthest
        return len(rounds) - 1
    return min(inside, key=lambda k: abs(rounds[k]["pilot_error"]))


def recentre(model, fd, cache_dir, options, window: GridWindow, posterior) -> tuple:
    """A window over a fit's own draws, which reached an inner edge of ``window``.

    Returns ``(window, tables, pm_model, pointwise, start)``: the new window (nodes as ``window``'s), its tables,
    model and mode.
    """
    new = next_window(window, box_positions(model, posterior), max(max(window.points), options.refine_points))
    return (new, *_on_window(model, fd, cache_dir, new, posterior))


def _on_window(model, fd, cache_dir, window: GridWindow, posterior) -> tuple:
    """``(tables, pm_model, pointwise, start)`` on ``window``: its tables, model, and mode from ``posterior``."""
    tables = [predictor_table(model, seq, cache_dir=cache_dir, window=window) for seq in fd.sequences]
    pm_model, pointwise = build_model(model, fd, tables=tables, window=window)
    return tables, pm_model, pointwise, _mode_in_window(pm_model, model, window, posterior)


def _mode_in_window(pm_model, model, window: GridWindow, pilot) -> dict:
    """The refined model's mode, searched from the pilot's mean (box positions clipped inside the window)."""
    start = {}
    for rv in pm_model.free_RVs:
        value = np.asarray(pilot[rv.name].mean(("chain", "draw")).values, dtype=float)
        start[rv.name] = value
    for d, name in enumerate(model.grid_names):
        lo, hi = window.lower[d], window.upper[d]
        pos = 1.0 / (1.0 + np.exp(-start[f"{name}_logit"]))
        pos = np.clip(pos, lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo))
        start[f"{name}_logit"] = np.log(pos / (1.0 - pos))
    best, _ = find_mode(pm_model, [start])
    return best if best is not None else start


def fitted_windows(tree) -> dict[str, GridWindow]:
    """Each refined participant's final grid window, from a fit's ``grid_refinement`` attribute (by participant)."""
    records = json.loads(tree.attrs.get("grid_refinement", "[]") or "[]")
    return {str(r["participant"]): GridWindow.from_record(r["window"]) for r in records}


def _describe(values: dict) -> str:
    return ", ".join(f"{name} {lo:.4g}-{hi:.4g}" for name, (lo, hi) in values.items())
