"""The loss of y = W2 W1 x, its gradients, the regulariser on W2 and the Euler step."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cogflex.nta.config import Regularizer
from cogflex.nta.fully_connected.config import FullyConnectedConfig, RegularizerScope
from cogflex.nta.regularizers import GateRegularizer

__all__ = ["SecondLayerRegularizer", "fully_connected_gradients", "euler_step"]


# -- the regulariser on W2 -----------------------------------------------------


@dataclass(frozen=True)
class SecondLayerRegularizer:
    """lambda R(W2) for a batch of second layers ``(B, d_out, d_hidden)``.

    Reuses :class:`~cogflex.nta.regularizers.GateRegularizer` by viewing W2 as
    gate vectors: the whole matrix (``scope = "matrix"``), each hidden unit's
    column or each output unit's row.

    Parameters
    ----------
    gates
        The gate regulariser over the gate rows of all networks.
    scope
        How W2 is cut into gate vectors.
    """

    gates: GateRegularizer
    scope: RegularizerScope

    @classmethod
    def build(cls, weights: Regularizer, strength: torch.Tensor, scope: RegularizerScope,
              output_dim: int, hidden_dim: int) -> SecondLayerRegularizer:
        """Regulariser with relative ``weights`` and per-network lambda ``strength`` ``(B,)``."""
        rows = {"matrix": 1, "hidden_unit": hidden_dim, "output_unit": output_dim}[scope]
        return cls(GateRegularizer.from_weights(weights, strength, rows=rows), scope)

    def _as_gates(self, second_layer: torch.Tensor) -> torch.Tensor:
        b, o, h = second_layer.shape
        if self.scope == "matrix":
            return second_layer.reshape(b, o * h)
        if self.scope == "output_unit":
            return second_layer.reshape(b * o, h)
        return second_layer.transpose(1, 2).reshape(b * h, o)

    def value(self, second_layer: torch.Tensor) -> torch.Tensor:
        """The penalty lambda R(W2) per network, ``(B,)``."""
        per_row = self.gates.value(self._as_gates(second_layer))
        return per_row.reshape(second_layer.shape[0], -1).sum(-1)

    def gradient(self, second_layer: torch.Tensor) -> torch.Tensor:
        """d(lambda R)/dW2, shape of ``second_layer``."""
        b, o, h = second_layer.shape
        grad = self.gates.gradient(self._as_gates(second_layer))
        if self.scope == "hidden_unit":
            return grad.reshape(b, h, o).transpose(1, 2)
        return grad.reshape(b, o, h)


# -- dynamics ------------------------------------------------------------------


def fully_connected_gradients(
    first_layer: torch.Tensor, second_layer: torch.Tensor, target: torch.Tensor,
    input_covariance: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Data loss and its gradients for a batch of networks.

    With error E = W2 W1 - W* and input covariance Sigma (identity when
    ``None``): L = 1/2 tr(E Sigma E^T), dL/dW1 = W2^T E Sigma, dL/dW2 = E Sigma W1^T.

    Parameters
    ----------
    first_layer, second_layer
        W1 ``(B, d_hidden, d_in)`` and W2 ``(B, d_out, d_hidden)``.
    target
        The current teacher W* ``(B, d_out, d_in)``.
    input_covariance
        ``(B, d_in, d_in)``, e.g. X^T X / n of a sampled batch.

    Returns
    -------
    tuple of torch.Tensor
        The expected loss 1/2 ||E||_F^2 ``(B,)`` (also in sampled mode) and
        the gradients with respect to W1 and W2.
    """
    error = torch.bmm(second_layer, first_layer) - target
    loss = 0.5 * error.square().sum((-2, -1))
    weighted = error if input_covariance is None else torch.bmm(error, input_covariance)
    grad_first = torch.bmm(second_layer.transpose(1, 2), weighted)
    grad_second = torch.bmm(weighted, first_layer.transpose(1, 2))
    return loss, grad_first, grad_second


def euler_step(
    first_layer: torch.Tensor, second_layer: torch.Tensor, target: torch.Tensor,
    regularizer: SecondLayerRegularizer, config: FullyConnectedConfig,
    input_covariance: torch.Tensor | None = None,
) -> torch.Tensor:
    """Advance W1 and W2 by one Euler step in place; return the loss before the step.

    W1 -= (dt / tau_W1) dL/dW1 and W2 -= (dt / tau_W2) (dL/dW2 + d(lambda R)/dW2),
    both gradients taken at the current point.
    """
    loss, grad_first, grad_second = fully_connected_gradients(first_layer, second_layer, target, input_covariance)
    grad_second += regularizer.gradient(second_layer)
    first_layer.sub_(grad_first, alpha=config.dt / config.first_layer_timescale)
    second_layer.sub_(grad_second, alpha=config.dt / config.second_layer_timescale)
    return loss
