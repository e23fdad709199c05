"""Fig. 4: the mechanism -- a symmetric two-variable reduction, its conserved quantity, and block length.

Three experiments (the reduction and its exactness conditions are derived in
:mod:`cogflex.nta.mechanism`):

1. **Exact symmetric case.** Tasks +-(W*_A - W*_B)/2 (the authors' +1 / -1
   toy), mirror-symmetric weights, opposite gates c_2 = -c_1 and lambda = 0:
   the two-variable system (specialisation w_bar, gate contrast c_bar) is an
   invariant subspace of the 6-variable reduced model and of the full
   network. The full network (``simulate`` in float64, expected mode, run in
   chunks to read its weights out) and the reduced model are mapped to
   (w_bar, c_bar) and compared with the two-variable integration; the
   conserved quantity Q_bar = 2 S tau_W w_bar^2 - tau_c c_bar^2 is followed
   along the full network. Its drift is the Euler error (shown by halving dt).
2. **Flexible NTA regime** (fig2-flexible settings: orthogonal tasks A / B,
   non-negative gates on the L1 manifold, lambda = 0.1), started mirror
   symmetric and weakly specialised. The reduction is approximate here (the
   shared mode m breaks the mirror symmetry); the reduced model still equals
   the full network. Panels: the virtuous cycle (specialisation grows block
   by block while the bounded gate contrast flips, crossing the level sets
   of Q_bar: the gate bound breaks the conservation law in the direction of
   specialisation), a switch from a specialised state at several tau_c against
   the level-set prediction (fast gates protect the weights), and the gates'
   switch time falling as the weights specialise.
3. **Block length.** fig2-flexible in expected mode swept over tau_B at a
   fixed total time: the time until the total alignment exceeds 0.9.
   Fixed total time, not a fixed number of blocks, because the mechanism
   is a rate per unit time (a block's specialisation gain grows ~ tau_B^2
   while the gates lead, so the gain per unit time ~ tau_B); with a fixed
   number of blocks longer blocks would also simply train longer.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from cogflex.io import save_figure  # noqa: E402
from cogflex.nta import load_config, simulate  # noqa: E402
from cogflex.nta import mechanism as mech  # noqa: E402
from cogflex.nta.config import Composition, Recording, Regularizer, SimulationConfig, Sweep  # noqa: E402
from cogflex.nta.reduced import project, teacher_norm  # noqa: E402
from cogflex.nta.simulation import InitialState, initial_state  # noqa: E402
from cogflex.reproduce.base import Figure, Quantity, Scale  # noqa: E402

__all__ = ["FIGURE", "run", "SETTINGS", "full_network_trajectory", "plot_phase_portraits",
           "plot_reduced_vs_full", "plot_block_length"]

PRESET = "fig2-flexible"
#: Per-scale settings; "quick" runs the same code on fewer blocks, seeds and block lengths.
SETTINGS = {
    "paper": dict(exact_blocks=6, exact_dt=5e-5, exact_chunk=0.02, flexible_blocks=8, flexible_chunk=0.02,
                  switch_gate_timescales=(0.03, 0.1, 0.3, 1.0), sweep_seeds=10, sweep_duration=40.0,
                  block_lengths=(0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 4.0)),
    "quick": dict(exact_blocks=3, exact_dt=5e-5, exact_chunk=0.05, flexible_blocks=4, flexible_chunk=0.05,
                  switch_gate_timescales=(0.03, 0.3, 1.0), sweep_seeds=3, sweep_duration=20.0,
                  block_lengths=(0.2, 0.5, 1.0, 2.0, 4.0)),
}
#: Initial specialisation of the exact and the flexible run.
EXACT_SPECIALIZATION, FLEXIBLE_SPECIALIZATION = 0.5, 0.2
#: Block lengths up to this one are claimed to specialise faster when longer.
CLAIMED_UP_TO = 2.0
THRESHOLD = 0.9
ANTICORRELATED = Composition(kind="mixture", start_block=0, tasks=((0.5, -0.5), (-0.5, 0.5)))


@dataclasses.dataclass(frozen=True)
class _Run:
    """Reduced coordinates over time of one network: ``time`` (T,), ``weights`` (T, 2, 2), ``gates`` (T, 2)."""

    time: np.ndarray
    weights: np.ndarray
    gates: np.ndarray

    @property
    def modes(self) -> mech.MirrorModes:
        return mech.mirror_modes(self.weights, self.gates)


def full_network_trajectory(config: SimulationConfig, initial: InitialState, task_sequence: np.ndarray,
                            chunk_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the full network (``simulate``, float64, uncompressed) in chunks, reading its state after each.

    Returns the times ``(T,)``, the reduced weights ``(T, P, M)`` (projection
    on the teachers) and the gates ``(T, P)`` of the first seed, T = chunks + 1.
    """
    weights, gates = [project(initial.weights, initial.teachers)[0].numpy()], [initial.gates[0, 0].numpy()]
    state, n_steps = initial, len(task_sequence)
    for start in range(0, n_steps, chunk_steps):
        ds = simulate(config, initial=state, task_sequence=task_sequence[start:start + chunk_steps],
                      dtype=torch.float64, compress=False).dataset
        final_w = torch.as_tensor(ds["final_weights"].values)
        final_c = torch.as_tensor(ds["final_gates"].values)
        state = InitialState(final_w, initial.teachers, final_c)
        weights.append(project(final_w, initial.teachers)[0].numpy())
        gates.append(final_c[0, 0].numpy())
    steps = np.minimum(np.arange(len(weights)) * chunk_steps, n_steps)
    return steps * config.learning.dt, np.array(weights), np.array(gates)


def _symmetric_initial(config: SimulationConfig, specialization: float, gate_contrast: float, *, common: float,
                       gate_sum: float) -> tuple[InitialState, float, np.ndarray, np.ndarray]:
    init = initial_state(config, dtype=torch.float64)
    norm = float(teacher_norm(init.teachers)[0])
    w0, c0 = mech.mirror_state(specialization, gate_contrast, common=common, gate_sum=gate_sum)
    weights = torch.einsum("pm,smij->spij", torch.as_tensor(w0), init.teachers)
    gates = torch.as_tensor(c0).reshape(1, 1, 2).expand(config.seeds, 1, 2).contiguous()
    return InitialState(weights, init.teachers, gates), norm, w0, c0


def _base(scale: Scale, blocks: int) -> SimulationConfig:
    config = load_config(PRESET).with_learning(mode="expected")
    return dataclasses.replace(config, seeds=1, curriculum=dataclasses.replace(
        config.curriculum, duration=blocks * config.curriculum.block_length), recording=Recording(log_every=10))


# -- experiment 1: the exact symmetric case --------------------------------------------------


def _exact_case(scale: Scale) -> dict:
    opts = SETTINGS[scale]
    dt = opts["exact_dt"]
    base = _base(scale, opts["exact_blocks"])
    config = dataclasses.replace(base.with_learning(dt=dt, regularization=0.0, regularizer=Regularizer()),
                                 composition=ANTICORRELATED, recording=Recording(log_every=100))
    learning, block = config.learning, config.curriculum.block_length
    tau_w, tau_c = learning.weight_timescale, learning.gate_timescale
    initial, norm, w0, c0 = _symmetric_initial(config, EXACT_SPECIALIZATION, 0.0, common=0.0, gate_sum=0.0)
    n_steps, per_block = config.n_steps, round(block / dt)
    chunk = round(opts["exact_chunk"] / dt)
    first_task = (np.arange(n_steps) // per_block) % 2 == 0
    time_full, w_full, c_full = full_network_trajectory(config, initial, np.where(first_task, 2, 3), chunk)
    full = _Run(time_full, w_full, c_full)
    mixtures = np.where(first_task[:, None], [0.5, -0.5], [-0.5, 0.5])
    red = mech.integrate_reduced(w0[None], c0[None], mixtures, dt=dt, weight_timescale=tau_w, gate_timescale=tau_c,
                                 norm=norm, record_every=chunk)
    reduced = _Run(red.time, red.weights[0], red.gates[0])
    signs = mech.block_task_signs(n_steps, per_block)
    fine = max(1, chunk // 10)
    kw = dict(weight_timescale=tau_w, gate_timescale=tau_c, norm=norm, gate_sum=0.0)
    two = mech.simulate_two_variable(EXACT_SPECIALIZATION, 0.0, signs, dt=dt, record_every=fine, **kw)
    coarse = mech.simulate_two_variable(EXACT_SPECIALIZATION, 0.0, mech.block_task_signs(n_steps // 2, per_block // 2),
                                        dt=2 * dt, record_every=max(1, fine // 2), **kw)
    return dict(config=config, norm=norm, full=full, reduced=reduced, two=two, two_coarse=coarse, dt=dt,
                sampled=slice(None, None, chunk // fine))


# -- experiment 2: the flexible regime -----------------------------------------------------


def _flexible_case(scale: Scale) -> dict:
    opts = SETTINGS[scale]
    config = _base(scale, opts["flexible_blocks"])
    learning, block, dt = config.learning, config.curriculum.block_length, config.learning.dt
    tau_w, tau_c, lam = learning.weight_timescale, learning.gate_timescale, learning.regularization
    initial, norm, w0, c0 = _symmetric_initial(config, FLEXIBLE_SPECIALIZATION, 0.0, common=1.0, gate_sum=1.0)
    n_steps, per_block = config.n_steps, round(block / dt)
    chunk = round(opts["flexible_chunk"] / dt)
    task = (np.arange(n_steps) // per_block) % 2
    full = _Run(*full_network_trajectory(config, initial, task, chunk))
    red = mech.integrate_reduced(w0[None], c0[None], np.eye(2)[task], dt=dt, weight_timescale=tau_w,
                                 gate_timescale=tau_c, norm=norm, regularization=lam,
                                 regularizer=learning.regularizer, record_every=chunk)
    reduced = _Run(red.time, red.weights[0], red.gates[0])
    two = mech.simulate_two_variable(FLEXIBLE_SPECIALIZATION, 0.0, mech.block_task_signs(n_steps, per_block), dt=dt,
                                     weight_timescale=tau_w, gate_timescale=tau_c, norm=norm, gate_sum=1.0,
                                     regularization=lam, regularizer=learning.regularizer, record_every=1)
    # Switch from a specialised state (end of an A block: c = (1, 0)) into B at several tau_c.
    gate_timescales = np.asarray(opts["switch_gate_timescales"])
    ws, cs = mech.mirror_state(1.0, 1.0, common=1.0, gate_sum=1.0)
    switch_steps = round(2.0 * block / dt)
    batch = len(gate_timescales)
    switch = mech.integrate_reduced(np.repeat(ws[None], batch, 0), np.repeat(cs[None], batch, 0),
                                    np.tile([0.0, 1.0], (switch_steps, 1)), dt=dt, weight_timescale=tau_w,
                                    gate_timescale=gate_timescales, norm=norm, regularization=lam,
                                    regularizer=learning.regularizer, record_every=5)
    switch_two = mech.simulate_two_variable(1.0, 1.0, -np.ones(switch_steps), dt=dt, weight_timescale=tau_w,
                                            gate_timescale=gate_timescales, norm=norm, gate_sum=1.0,
                                            regularization=lam, regularizer=learning.regularizer, record_every=5)
    return dict(config=config, norm=norm, full=full, reduced=reduced, two=two, switch=switch,
                switch_two=switch_two, gate_timescales=gate_timescales, per_block=per_block)


def _switch_times(time_, gate_contrast, block: float, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Per switch k >= 1: time after the switch at which c_bar crosses 0 towards the new task sign, and its index."""
    out, at = [], []
    for k in range(1, blocks):
        start = k * block
        sign = 1.0 if k % 2 == 0 else -1.0
        sel = np.flatnonzero((time_ >= start - 1e-12) & (time_ < start + block - 1e-12))
        value = sign * gate_contrast[sel]
        cross = np.flatnonzero((value[:-1] <= 0) & (value[1:] > 0))
        if cross.size == 0:
            out.append(np.nan)
        else:
            i = cross[0]
            t0, t1, v0, v1 = time_[sel[i]], time_[sel[i + 1]], value[i], value[i + 1]
            out.append(t0 + (t1 - t0) * (-v0) / (v1 - v0) - start)
        at.append(sel[0])
    return np.array(out), np.array(at)


# -- experiment 3: block length ------------------------------------------------------------


def _block_length_sweep(scale: Scale) -> dict:
    opts = SETTINGS[scale]
    config = load_config(PRESET).with_learning(mode="expected")
    lengths = tuple(opts["block_lengths"])
    config = dataclasses.replace(config, seeds=opts["sweep_seeds"], sweep=Sweep(axes=(("block_length", lengths),)),
                                 curriculum=dataclasses.replace(config.curriculum, duration=opts["sweep_duration"]))
    ds = simulate(config).dataset
    times = ds["time"].values
    align = ds["total_alignment"].values
    grid = ds["grid_point"].values
    duration = opts["sweep_duration"]
    per_length = [align[grid == g] for g in range(len(lengths))]  # (seeds, T) each
    spec = [np.nan_to_num(mech.specialization_time(a, times, threshold=THRESHOLD), nan=duration) for a in per_length]
    return dict(config=config, lengths=np.array(lengths), times=times, alignment=per_length,
                specialization=np.array(spec), duration=duration)


# -- plots ------------------------------------------------------------------------------------


def _level_sets(ax, norm, tau_w, tau_c, c_range, w_range, levels=12):
    c = np.linspace(*c_range, 300)
    w = np.linspace(*w_range, 300)
    cc, ww = np.meshgrid(c, w)
    q = mech.conserved_quantity(ww, cc, norm=norm, weight_timescale=tau_w, gate_timescale=tau_c)
    ax.contour(cc, ww, q, levels=levels, colors="0.75", linewidths=0.7, zorder=0)


def plot_phase_portraits(exact: dict, flexible: dict, path: str | Path | None = None) -> plt.Figure:
    """Phase portraits and time courses of (w_bar, c_bar): exact case (top), flexible regime (bottom)."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 9.5))
    # (a) exact phase plane
    ax = axes[0, 0]
    cfg = exact["config"].learning
    norm, tau_w, tau_c = exact["norm"], cfg.weight_timescale, cfg.gate_timescale
    fm, two = exact["full"].modes, exact["two"]
    cmax = 1.15 * np.abs(two.gate_contrast).max()
    _level_sets(ax, norm, tau_w, tau_c, (-cmax, cmax), (0.47, 0.6), levels=np.linspace(0.1, 0.5, 21))
    ax.plot(two.gate_contrast[0], two.specialization[0], color="#1b6ca8", lw=2, label="two-variable model")
    ax.plot(fm.gate_contrast, fm.specialization, "o", ms=3, color="#d1495b", label="full network (simulate)")
    q0 = mech.conserved_quantity(EXACT_SPECIALIZATION, 0.0, norm=norm, weight_timescale=tau_w, gate_timescale=tau_c)
    c_line = np.linspace(-cmax, cmax, 200)
    ax.plot(c_line, mech.level_set(c_line, q0, norm=norm, weight_timescale=tau_w, gate_timescale=tau_c), "k--",
            lw=1, label=r"level set $\bar Q=\bar Q(0)$")
    ax.set(xlabel=r"gate contrast $\bar c = c_1 - c_2$", ylabel=r"specialisation $\bar w$", ylim=(0.47, 0.6),
           title="(a) exact symmetric case: flow on a level set")
    ax.legend(fontsize=8, loc="lower center")
    # (b) exact time courses
    ax = axes[0, 1]
    ax.plot(two.time, two.specialization[0], color="#1b6ca8", lw=2, label=r"$\bar w$ two-variable")
    every = max(1, len(exact["full"].time) // 100)  # thin the markers to ~100 points
    ax.plot(exact["full"].time[::every], fm.specialization[::every], "o", ms=3, color="#d1495b",
            label=r"$\bar w$ full network")
    ax2 = ax.twinx()
    ax2.plot(two.time, two.gate_contrast[0], color="#edae49", lw=1.5, label=r"$\bar c$ two-variable")
    ax2.plot(exact["full"].time[::every], fm.gate_contrast[::every], "s", ms=2.5, color="#6a4c93",
             label=r"$\bar c$ full network")
    w_top = 1.03 * fm.specialization.max()
    w_bottom = EXACT_SPECIALIZATION - 0.45 * (w_top - EXACT_SPECIALIZATION)
    ax.set(xlabel="time", ylabel=r"$\bar w$", ylim=(w_bottom, w_top),
           title=r"(b) exact case: tasks $\pm(W^*_A-W^*_B)/2$, $c_2=-c_1$, $\lambda=0$")
    c_top = 1.1 * np.abs(fm.gate_contrast).max()
    ax2.set(ylabel=r"$\bar c$", ylim=(-1.9 * c_top, c_top))
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7.5, loc="lower center", ncol=2,
              columnspacing=0.8, handlelength=1.5, framealpha=0.95)
    # (c) conservation
    ax = axes[0, 2]
    for run_, label, color in ((exact["two"], f"two-variable, dt = {exact['dt']:g}", "#1b6ca8"),
                               (exact["two_coarse"], f"two-variable, dt = {2 * exact['dt']:g}", "#8fb8de")):
        q = mech.conserved_quantity(run_.specialization[0], run_.gate_contrast[0], norm=norm,
                                    weight_timescale=tau_w, gate_timescale=tau_c)
        ax.plot(run_.time[1:], np.abs(q[1:] - q[0]) / abs(q[0]), color=color, lw=1.5, label=label)
    q = mech.conserved_quantity(fm.specialization, fm.gate_contrast, norm=norm, weight_timescale=tau_w,
                                gate_timescale=tau_c)
    ax.plot(exact["full"].time[1:], np.abs(q[1:] - q[0]) / abs(q[0]), "o", ms=2.5, color="#d1495b",
            label="full network")
    ax.axhline(1e-3, color="k", ls=":", lw=1, label="acceptance 1e-3")
    ax.set(yscale="log", xlabel="time", ylabel=r"$|\bar Q(t)-\bar Q(0)|\,/\,|\bar Q(0)|$",
           title=r"(c) $\bar Q = 2S\tau_W\bar w^2-\tau_c\bar c^2$: Euler drift only ($\propto dt$)")
    ax.legend(fontsize=8, loc="lower right")
    _plot_flexible_row(axes[1], flexible)
    fig.suptitle("Fig. 4 mechanism: specialisation $\\bar w$ and gate contrast $\\bar c$ "
                 "(top: exact invariant subspace; bottom: NTA flexible regime, approximate)", fontsize=13)
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_flexible_row(axes, flexible: dict) -> None:
    cfg = flexible["config"].learning
    norm, tau_w, tau_c = flexible["norm"], cfg.weight_timescale, cfg.gate_timescale
    fm, two = flexible["full"].modes, flexible["two"]
    # (d) virtuous cycle in the phase plane
    ax = axes[0]
    _level_sets(ax, norm, tau_w, tau_c, (-1.15, 1.15), (0.0, 1.05), levels=np.linspace(-0.05, 1.4, 30))
    ax.plot(two.gate_contrast[0], two.specialization[0], color="#1b6ca8", lw=1.2, label="two-variable model")
    ax.plot(fm.gate_contrast, fm.specialization, "o-", ms=2, lw=0.6, color="#d1495b", label="full network")
    ax.set(xlabel=r"gate contrast $\bar c$", ylabel=r"specialisation $\bar w$", xlim=(-1.15, 1.15), ylim=(0, 1.05),
           title=f"(d) flexible regime ($\\tau_c$={tau_c:g}, $\\lambda$={cfg.regularization:g}): the virtuous cycle")
    ax.text(0.02, 0.02, r"gates bounded ($|\bar c|\leq 1$): $\bar w$ climbs across the level sets of $\bar Q$",
            transform=ax.transAxes, fontsize=8)
    ax.legend(fontsize=8, loc="upper center")
    # (e) one switch at several tau_c
    ax = axes[1]
    switch, switch_two = flexible["switch"], flexible["switch_two"]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(flexible["gate_timescales"])))
    c_line = np.linspace(-1, 1, 200)
    for i, tc in enumerate(flexible["gate_timescales"]):
        modes = mech.mirror_modes(switch.weights[i], switch.gates[i])
        ax.plot(modes.gate_contrast, modes.specialization, color=colors[i], lw=2.2,
                label=f"$\\tau_c$ = {tc:g} (6-variable)")
        ax.plot(switch_two.gate_contrast[i], switch_two.specialization[i], ":", color=colors[i], lw=1.5)
        q0 = mech.conserved_quantity(1.0, 1.0, norm=norm, weight_timescale=tau_w, gate_timescale=tc)
        ax.plot(c_line, mech.level_set(c_line, q0, norm=norm, weight_timescale=tau_w, gate_timescale=tc), "k--",
                lw=0.8)
    slow = int(np.argmax(flexible["gate_timescales"]))
    modes = mech.mirror_modes(switch.weights[slow], switch.gates[slow])
    ax.annotate(f"$\\tau_c$ = {flexible['gate_timescales'][slow]:g}: gates too slow, the shared\nmode m (both paths "
                "learn B) takes over", (modes.gate_contrast[-1], modes.specialization[-1]), xytext=(-0.45, 0.7),
                fontsize=8, arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.plot([], [], "k--", lw=0.8, label="level set (analytical)")
    ax.plot([], [], "k:", lw=1.5, label="two-variable model")
    ax.set(xlabel=r"gate contrast $\bar c$", ylabel=r"specialisation $\bar w$", xlim=(-1.05, 1.05),
           title="(e) a switch A -> B: fast gates protect the weights")
    ax.legend(fontsize=8, loc="lower left")
    # (f) switch time vs specialisation
    ax = axes[2]
    block, blocks = flexible["config"].curriculum.block_length, flexible["config"].curriculum.duration
    n_blocks = round(blocks / block)
    t_full, at_full = _switch_times(flexible["full"].time, fm.gate_contrast, block, n_blocks)
    t_two, at_two = _switch_times(two.time, two.gate_contrast[0], block, n_blocks)
    ax.plot(two.specialization[0, at_two], t_two, "s-", color="#1b6ca8", label="two-variable model")
    ax.plot(fm.specialization[at_full], t_full, "o", color="#d1495b", ms=6, label="full network")
    for k, (x, y) in enumerate(zip(fm.specialization[at_full], t_full, strict=True), start=1):
        ax.annotate(f"{k}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8, color="#d1495b")
    ax.set(xlabel=r"specialisation $\bar w$ at the switch", ylabel=r"time until $\bar c$ crosses 0",
           title=r"(f) gate speed grows with specialisation ($\tau_c\dot{\bar c}=S\bar w\epsilon$)")
    ax.legend(fontsize=8)
    ax.text(0.98, 0.75, "labels: switch number", transform=ax.transAxes, ha="right", fontsize=8, color="#d1495b")


def plot_reduced_vs_full(exact: dict, flexible: dict, path: str | Path | None = None) -> plt.Figure:
    """Differences between the full network, the 6-variable reduced model and the two-variable model over time."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    for ax, case, title in ((axes[0], exact, f"exact symmetric case (dt = {exact['dt']:g})"),
                            (axes[1], flexible, "flexible regime (fig2-flexible settings)")):
        full, reduced = case["full"], case["reduced"]
        fm = full.modes
        two_w, two_c = _two_at(case, full.time)
        tiny = 1e-17
        red_err = np.maximum(np.abs(reduced.weights - full.weights).max(axis=(1, 2)),
                             np.abs(reduced.gates - full.gates).max(axis=1))
        ax.semilogy(full.time, red_err + tiny, color="#2e8b57", lw=1.5, label="6-variable reduced vs full network")
        ax.semilogy(full.time, np.abs(two_w - fm.specialization) + tiny, color="#1b6ca8", lw=1.5,
                    label=r"two-variable vs full: $|\Delta\bar w|$")
        ax.semilogy(full.time, np.abs(two_c - fm.gate_contrast) + tiny, color="#edae49", lw=1.5,
                    label=r"two-variable vs full: $|\Delta\bar c|$")
        ax.semilogy(full.time, np.abs(fm.shared) + tiny, color="0.5", lw=1, ls="--",
                    label=r"mirror breaking $|m|$ (full network)")
        ax.set(xlabel="time", ylabel="absolute difference", title=title, ylim=(1e-17, 3))
        ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return save_figure(fig, path)


def _two_at(case: dict, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    two = case["two"]
    index = np.searchsorted(two.time, times - 1e-12)
    return two.specialization[0, index], two.gate_contrast[0, index]


def plot_block_length(sweep: dict, path: str | Path | None = None) -> plt.Figure:
    """Total alignment over time per tau_B and the specialisation time vs tau_B."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    lengths, times = sweep["lengths"], sweep["times"]
    colors = plt.cm.plasma(np.linspace(0, 0.85, len(lengths)))
    ax = axes[0]
    for i, length in enumerate(lengths):
        ax.plot(times, sweep["alignment"][i].mean(axis=0), color=colors[i], lw=1.6, label=f"$\\tau_B$ = {length:g}")
    ax.axhline(THRESHOLD, color="k", ls=":", lw=1)
    ax.set(xlabel="time", ylabel="total alignment (mean over seeds)", ylim=(0.4, 1.01),
           title="fig2-flexible, expected gradient, fixed total time")
    ax.legend(fontsize=8, ncol=2, loc="lower right")
    ax = axes[1]
    spec = sweep["specialization"]
    tau_w = sweep["config"].learning.weight_timescale
    for i, length in enumerate(lengths):
        ax.plot(np.full(spec.shape[1], length), spec[i], "o", color=colors[i], alpha=0.45, ms=5)
    ax.plot(lengths, np.median(spec, axis=1), "k-", lw=1.8, label="median over seeds")
    ax.axhline(sweep["duration"], color="0.5", ls=":", lw=1, label=f"not reached by t = {sweep['duration']:g}")
    ax.axvline(tau_w, color="#d1495b", ls="--", lw=1, label=r"$\tau_B=\tau_W$")
    ax.set(xscale="log", xlabel=r"block length $\tau_B$", ylabel=f"time until total alignment > {THRESHOLD}",
           title="longer blocks specialise faster ... until $\\tau_B$ exceeds ~$\\tau_W$")
    ax.set_xticks(lengths, [f"{v:g}" for v in lengths])
    ax.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    return save_figure(fig, path)


# -- the figure -----------------------------------------------------------------------------------


def _non_increasing(values: np.ndarray) -> bool:
    return bool(np.all(np.diff(values) <= 1e-12))


def run(scale: Scale, out: Path) -> list[Quantity]:
    """Run the three experiments; write the ``fig4_*.png`` panel groups and return the key numbers.

    Files: ``fig4_phase_portrait.png``, ``fig4_reduced_vs_full.png``, ``fig4_block_length.png``.
    """
    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny steps: a second OpenMP thread only adds overhead
    try:
        exact = _exact_case(scale)
        flexible = _flexible_case(scale)
        sweep = _block_length_sweep(scale)
    finally:
        torch.set_num_threads(threads)
    out = Path(out)
    plot_phase_portraits(exact, flexible, out / "fig4_phase_portrait.png")
    plot_reduced_vs_full(exact, flexible, out / "fig4_reduced_vs_full.png")
    plot_block_length(sweep, out / "fig4_block_length.png")
    plt.close("all")
    return _quantities(exact, flexible, sweep, time.perf_counter() - started)


def _quantities(exact: dict, flexible: dict, sweep: dict, seconds: float) -> list[Quantity]:
    learning = exact["config"].learning
    norm, tau_w, tau_c = exact["norm"], learning.weight_timescale, learning.gate_timescale
    fm = exact["full"].modes
    q_full = mech.conserved_quantity(fm.specialization, fm.gate_contrast, norm=norm, weight_timescale=tau_w,
                                     gate_timescale=tau_c)
    drift = float(np.abs(q_full - q_full[0]).max() / abs(q_full[0]))
    drifts = []
    for run_ in (exact["two"], exact["two_coarse"]):
        q = mech.conserved_quantity(run_.specialization[0], run_.gate_contrast[0], norm=norm,
                                    weight_timescale=tau_w, gate_timescale=tau_c)
        drifts.append(float(np.abs(q - q[0]).max() / abs(q[0])))
    two_w, two_c = _two_at(exact, exact["full"].time)
    two_err = float(max(np.abs(two_w - fm.specialization).max(), np.abs(two_c - fm.gate_contrast).max()))

    def reduced_err(case):
        full, red = case["full"], case["reduced"]
        return float(max(np.abs(red.weights - full.weights).max(), np.abs(red.gates - full.gates).max()))

    flex_modes = flexible["full"].modes
    fw, fc = _two_at(flexible, flexible["full"].time)
    flex_err = float(np.abs(fw - flex_modes.specialization).max())
    flex_q = mech.conserved_quantity(flex_modes.specialization, flex_modes.gate_contrast, norm=flexible["norm"],
                                     weight_timescale=tau_w, gate_timescale=flexible["config"].learning.gate_timescale)
    # one switch at several tau_c: the dip of w_bar against the level set
    switch, f_norm = flexible["switch"], flexible["norm"]
    dips, predicted, completed = [], [], []
    for i, tc in enumerate(flexible["gate_timescales"]):
        modes = mech.mirror_modes(switch.weights[i], switch.gates[i])
        dips.append(float(modes.specialization.min()))
        predicted.append(float(np.sqrt(max(0.0, 1.0 - tc / (2 * f_norm * tau_w)))))
        completed.append(bool(modes.gate_contrast.min() < 0))  # the gate contrast flips: the gates switch
    done = np.asarray(completed)
    dip_err = np.abs(np.asarray(dips) - np.asarray(predicted))
    block = flexible["config"].curriculum.block_length
    n_blocks = round(flexible["config"].curriculum.duration / block)
    t_switch, at = _switch_times(flexible["full"].time, flex_modes.gate_contrast, block, n_blocks)
    w_switch = flex_modes.specialization[at]
    lengths, spec = sweep["lengths"], np.median(sweep["specialization"], axis=1)
    claimed = lengths <= CLAIMED_UP_TO
    longest = int(np.argmax(lengths))
    at_claim = int(np.flatnonzero(lengths == lengths[claimed].max())[0])
    return [
        Quantity("conserved_quantity_relative_drift", drift,
                 "exact symmetric case: max |Q_bar(t) - Q_bar(0)| / |Q_bar(0)| along the full network "
                 f"(dt = {exact['dt']:g})", reference="<= 1e-3", passed=bool(drift <= 1e-3)),
        Quantity("conserved_quantity_drift_dt_ratio", drifts[1] / drifts[0],
                 "exact case: Q_bar drift at 2 dt over drift at dt (two-variable model; ~2 for Euler error)",
                 reference="~2 (first-order Euler error)", passed=bool(1.6 <= drifts[1] / drifts[0] <= 2.4)),
        Quantity("two_variable_vs_full_max_abs", two_err,
                 "exact case: max |(w_bar, c_bar) two-variable - full network|", reference="round-off (<= 1e-9)",
                 passed=bool(two_err <= 1e-9)),
        Quantity("reduced_vs_full_max_abs_exact", reduced_err(exact),
                 "exact case: max |6-variable reduced - full network| over weights and gates",
                 reference="round-off (<= 1e-9)", passed=bool(reduced_err(exact) <= 1e-9)),
        Quantity("reduced_vs_full_max_abs_flexible", reduced_err(flexible),
                 "flexible regime: max |6-variable reduced - full network| over weights and gates",
                 reference="round-off (<= 1e-9)", passed=bool(reduced_err(flexible) <= 1e-9)),
        Quantity("two_variable_vs_full_flexible_max_abs", flex_err,
                 "flexible regime: max |w_bar two-variable - full network| (approximate: shared mode m)",
                 reference=f"approximate; mirror breaking max |m| = {float(np.abs(flex_modes.shared).max()):.3g}"),
        Quantity("conserved_quantity_flexible_start_end", [float(flex_q[0]), float(flex_q[-1])],
                 "flexible regime: Q_bar at start and end (the gate bound breaks it towards specialisation)",
                 reference="not conserved (lambda > 0, |c_bar| <= 1)"),
        Quantity("switch_min_specialization", dips,
                 "switch A -> B from w_bar = 1 (6-variable model): min w_bar for tau_c = "
                 + ", ".join(f"{v:g}" for v in flexible["gate_timescales"]) + "; gate contrast flips sign: "
                 + ", ".join("yes" if c else "no (the shared mode m takes over: forgetting)" for c in completed),
                 reference="level set sqrt(1 - tau_c / (2 S tau_W)): " + ", ".join(f"{v:.3f}" for v in predicted)
                 + " (within 0.01 where the gate contrast flips)",
                 passed=bool(done[:2].all() and np.all(dip_err[done] <= 0.01))),
        Quantity("gate_switch_time_per_switch", t_switch.tolist(),
                 "flexible regime, full network: time for c_bar to cross 0 after switch k = 1, 2, ... "
                 f"(w_bar at the switches: {', '.join(f'{v:.2f}' for v in w_switch)})", unit="time",
                 reference="decreasing as w_bar grows", passed=bool(_non_increasing(t_switch))),
        Quantity("specialization_time_per_block_length", spec.tolist(),
                 f"time until total alignment > {THRESHOLD} (median over seeds, censored at t = "
                 f"{sweep['duration']:g}) for tau_B = {', '.join(f'{v:g}' for v in lengths)}",
                 unit="time", reference=f"decreasing in tau_B up to tau_B = {CLAIMED_UP_TO:g}",
                 passed=bool(_non_increasing(spec[claimed]) and spec[at_claim] < spec[claimed][0])),
        Quantity("block_length_benefit_stops", float(spec[longest] / spec[at_claim]),
                 f"specialisation time at tau_B = {lengths[longest]:g} over that at tau_B = {lengths[at_claim]:g}",
                 reference="> 1: longer blocks stop helping once tau_B >~ tau_W"),
        Quantity("wall_seconds", seconds, "wall time of the figure (all three experiments and plots)", unit="s"),
    ]


FIGURE = Figure(key="fig4", title="Fig. 4: mechanism -- symmetric two-variable reduction and block length", run=run)
