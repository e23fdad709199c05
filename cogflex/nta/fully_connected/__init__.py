"""Emergent gating in a fully connected two-layer linear network (Sandbrink et al., 2024, Fig. 6).

The network y = W2 W1 x (d_in -> d_hidden -> d_out) has no gates at all. The
gate regulariser R of the NTA network (:class:`~cogflex.nta.regularizers.GateRegularizer`)
is put on the *second* layer W2 instead, and W2 learns faster than W1
(tau_W2 < tau_W1). On a blocked two-task student-teacher curriculum single
hidden units then become task gates: each unit's outgoing weights W2[:, j]
are on during one task and off during the other, so the hidden units sorted
by task preference make W2 block-diagonal. Without the regulariser they do
not.

Learning is gradient flow on L = 1/2 ||W2 W1 - W*_m||_F^2 + lambda R(W2)
(expected loss for inputs x ~ N(0, I)), integrated by Euler steps
W <- W - (dt / tau) dL/dW with tau_W1 for W1 and tau_W2 for W2 (both layers
updated from the gradients at the same point). ``mode = "sampled"`` replaces
the identity input covariance by X^T X / n of a fresh Gaussian batch each
step (:func:`~cogflex.nta.dynamics.sample_input_covariance`), as the authors do.

Settings and where they come from (the authors' public code,
``aproca/neural_task_abstraction``):

- Network 20 -> 20 -> 10: ``fig6_A5_A6_gating_FC.ipynb`` sets ``input_size=20,
  output_size=10, hidden_size=10, num_paths=2, control='deep_mono',
  num_layers=2``; ``lcs/configs.py`` makes the hidden layer
  ``num_paths * hidden_size = 20`` units wide for ``deep_mono``.
- Regulariser: ``lcs/joint_learning.py`` (``regularization_loss_fn``) treats
  the whole flattened W2 as *one* gate vector for ``deep_mono``: 10 sum
  max(-W2, 0) (non-negativity of every entry) and 1/2 (||W2||_F - 1)^2 (L2
  manifold on the Frobenius norm), weights nonnegative 1 : L2 10 normalised
  to sum to one, times ``regularization_strength = 0.22`` (notebook). That is
  ``regularizer_scope = "matrix"`` here; ``"hidden_unit"`` (norm per column)
  and ``"output_unit"`` (norm per row) are variants that are not the authors'.
  The regulariser acts on W2 only; W1 is unregularised.
- tau_W1 0.06, tau_W2 0.01, dt 0.01, blocks of duration 1.0 alternating
  A, B (``c_gt_curriculum='A_B__'``), ``t_tot = 30``: notebook. From
  ``lcs/configs.py`` / ``joint_learning.simulate_``: ``num_blocks =
  t_tot // block_duration + 1 = 31`` and the scan runs ``num_blocks + 1 = 32``
  blocks of ``block_duration // dt = 99`` steps (a floor artefact of
  1.0 // 0.01); we run 32 blocks of round(1.0 / 0.01) = 100 steps.
- Initialisation: both layers N(0, (0.01 / sqrt(d_in))^2) entrywise
  (``initialization_scale = 0.01`` divided by ``sqrt(input_size)`` for every
  layer, ``simulate_``).
- Teachers: orthogonal, rows of a random orthogonal matrix scaled by
  1/sqrt(d_in) (``generate_teachers``, ``teacher_scale='d_in'``). The authors
  use the *same* teachers for every seed (fixed seed); we draw them per seed
  with :func:`~cogflex.nta.teachers.orthogonal_teachers` (with isotropic
  initialisation the expected dynamics are rotation-equivariant, so only the
  initial weights matter statistically).
- Inputs: the authors sample a batch of 200 Gaussian inputs per step; we use
  the expected gradient by default (``mode = "expected"``), sampled batches
  on request.
- Without the regulariser: the same notebook reruns with
  ``regularization_strength = 0`` (everything else equal).

Not in the authors' code: a selectivity number. Their figure shows W2 after
the last block of each task, with hidden units sorted by which teacher row
their W1 row is most aligned with (``compute_row_cossim``). Here each hidden
unit's selectivity is measured from W2 alone (:func:`hidden_unit_selectivity`)
and units are sorted by task preference (:func:`sort_hidden_units`).

Selectivity measure: a_jm = mean over the measured blocks of task m of
||W2[:, j]|| (at block ends), selectivity_j = max_m a_jm / sum_m a_jm, and
the network's number is the mean weighted by each unit's total output weight
(:attr:`HiddenUnitSelectivity.weighted_selectivity`). Weighting makes weak
units count little, and a unit that merely re-routes to other output units
between tasks keeps its column norm and scores 1/M, so the number is near 1
only when the units that carry the tasks switch on and off.

What the authors' settings give (10 seeds, expected mode, t = 32): the
sorted W2 looks block-diagonal, but the weighted selectivity is about 0.67
(0.58-0.80 over seeds; 0.50 without the regulariser). It grows slowly with
training (about 0.82 after 200 blocks) and depends on the Euler step
relative to tau_W2: about 0.58 for dt / tau_W2 <= 0.75 (the gradient-flow
limit; W2 then switches entry by entry, hidden units are shared by both
tasks), 0.67 at the authors' 1.0 and about 0.88 at 1.4. Single-unit gating at
these settings is therefore partly an effect of the large Euler step (the
non-negativity subgradient kicks negative entries by dt/tau_W2 * 10 lambda/11
= 0.2 per step).

The package, by job: :mod:`~cogflex.nta.fully_connected.config` (settings and
the preset loader), :mod:`~cogflex.nta.fully_connected.dynamics` (the loss,
its gradients, the W2 regulariser and the Euler step),
:mod:`~cogflex.nta.fully_connected.simulation` (the batched run and its
result) and :mod:`~cogflex.nta.fully_connected.metrics` (hidden-unit
selectivity and the loss measures).
"""

from cogflex.nta.fully_connected.config import FullyConnectedConfig, RegularizerScope, load_fully_connected_config
from cogflex.nta.fully_connected.dynamics import SecondLayerRegularizer, euler_step, fully_connected_gradients
from cogflex.nta.fully_connected.metrics import (
    HiddenUnitSelectivity,
    block_end_loss,
    first_layer_alignment,
    hidden_unit_selectivity,
    sort_hidden_units,
    time_to_criterion,
)
from cogflex.nta.fully_connected.simulation import FullyConnectedResult, simulate_fully_connected

__all__ = [
    "FullyConnectedConfig",
    "FullyConnectedResult",
    "RegularizerScope",
    "SecondLayerRegularizer",
    "HiddenUnitSelectivity",
    "load_fully_connected_config",
    "fully_connected_gradients",
    "euler_step",
    "simulate_fully_connected",
    "hidden_unit_selectivity",
    "sort_hidden_units",
    "first_layer_alignment",
    "block_end_loss",
    "time_to_criterion",
]
