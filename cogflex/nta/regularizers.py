"""The gate regulariser R(c) that keeps the NTA gates bounded.

R(c) = lambda * [ w_nn * 10 * sum_p max(-c_p, 0)
                + w_l1 * 10 * 1/2 * (||c||_1 - 1)^2
                + w_l2 * 1/2 * (||c||_2 - 1)^2 ]

with (w_nn, w_l1, w_l2) normalised to sum to one (Sandbrink et al., 2024).
Gates are given as ``(N, P)``: one row per network and gate row (B * R rows;
R = d_out for per-unit gates), P paths. Norms run over the paths of a row; a
network's regulariser is the sum over its gate rows. With ``group = R`` the
manifold norms instead run over all gates of a network (R consecutive rows),
as the authors' code does for per-unit gates (one flat gate vector).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch

from cogflex.nta.config import Regularizer

__all__ = ["GateRegularizer"]


@dataclass(frozen=True)
class GateRegularizer:
    """R(c) for a batch of gate rows, each with its own strength lambda.

    Parameters
    ----------
    nonnegative, l1, l2
        Per-row coefficients lambda * w (weights already normalised), shape
        ``(N, 1)`` so that they broadcast against gates ``(..., N, P)``.
    """

    nonnegative: torch.Tensor
    l1: torch.Tensor
    l2: torch.Tensor
    group: int = 1

    @classmethod
    def from_weights(cls, weights: Regularizer, strength: torch.Tensor, *, rows: int = 1,
                     per_row: bool = True) -> GateRegularizer:
        """Coefficients from relative ``weights`` and per-network lambda ``(B,)``.

        ``rows`` gate rows per network (R) repeat each network's coefficients;
        ``per_row = False`` takes the manifold norms over all R rows of a network.
        """
        w_nn, w_l1, w_l2 = weights.normalized()
        lam = strength.reshape(-1).repeat_interleave(rows).unsqueeze(-1)
        return cls(nonnegative=lam * w_nn, l1=lam * w_l1, l2=lam * w_l2, group=1 if per_row else rows)

    def _group_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum ``(..., N, 1)`` over each group of rows, broadcast back to every row."""
        if self.group == 1:
            return x
        shape = x.shape
        summed = x.reshape(*shape[:-2], -1, self.group, 1).sum(-2, keepdim=True)
        return summed.expand(*shape[:-2], -1, self.group, 1).reshape(shape)

    def _l1_norm(self, c: torch.Tensor) -> torch.Tensor:
        return self._group_sum(c.abs().sum(-1, keepdim=True))

    def _l2_norm(self, c: torch.Tensor) -> torch.Tensor:
        return self._group_sum(c.square().sum(-1, keepdim=True)).sqrt()

    @cached_property
    def uses_l2(self) -> bool:
        """Whether any row has a non-zero L2-manifold term."""
        return bool((self.l2 != 0).any())

    def value(self, c: torch.Tensor) -> torch.Tensor:
        """R(c) per gate row, shape ``c.shape[:-1]``."""
        nonneg = 10.0 * torch.relu(-c).sum(-1, keepdim=True)
        l1 = 5.0 * (self._l1_norm(c) - 1.0) ** 2
        l2 = 0.5 * (self._l2_norm(c) - 1.0) ** 2
        # A group's manifold terms are shared by its rows: count them once.
        return (self.nonnegative * nonneg + (self.l1 * l1 + self.l2 * l2) / self.group).squeeze(-1)

    @cached_property
    def _sign_terms(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # -10 w_nn 1[c<0] == 5 w_nn (sign(c) - 1) for c != 0, so the
        # non-negativity and L1 terms together are sign(c) * (a + b ||c||_1) - k.
        a = 5.0 * self.nonnegative - 10.0 * self.l1
        b = 10.0 * self.l1
        k = 5.0 * self.nonnegative
        return a, b, k

    def gradient(self, c: torch.Tensor) -> torch.Tensor:
        """dR/dc, shape of ``c``.

        Non-negativity: -10 w_nn 1[c < 0]; L1 manifold: 10 w_l1 (||c||_1 - 1)
        sign(c); L2 manifold: w_l2 (1 - 1/||c||_2) c. At c_p = 0 exactly the
        midpoint subgradient is used (sign 0).
        """
        return self.add_gradient_(torch.zeros_like(c), c)

    def add_gradient_(self, out: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Add dR/dc to ``out`` in place; return ``out``."""
        a, b, k = self._sign_terms
        scale = torch.addcmul(a, b, self._l1_norm(c))
        out.addcmul_(torch.sign(c), scale).sub_(k)
        if self.uses_l2:
            out.add_(self._l2_term(c))
        return out

    def _l2_term(self, c: torch.Tensor) -> torch.Tensor:
        return self.l2 * (1.0 - 1.0 / self._l2_norm(c)) * c

    def bind(self, gates: torch.Tensor) -> Callable[[torch.Tensor], None]:
        """An in-place adder of dR/dc for one fixed gates tensor ``(N, P)`` (the Euler step's hot path).

        Same result as :meth:`add_gradient_`, with buffers allocated once and
        ||c||_1 taken as sign(c) . c in one batched product.
        """
        n = gates.shape[0]
        sign = torch.empty(gates.shape, dtype=gates.dtype, device=gates.device)
        sign_row, gates_col = sign.unsqueeze(1), gates.unsqueeze(2)
        norm = torch.empty(n, 1, 1, dtype=gates.dtype, device=gates.device)
        norm_2d, scale = norm.view(n, 1), torch.empty(n, 1, dtype=gates.dtype, device=gates.device)
        a, b, k = self._sign_terms
        uses_l2 = self.uses_l2
        if self.group > 1:
            return lambda out: self.add_gradient_(out, gates)

        def add(out: torch.Tensor) -> None:
            torch.sign(gates, out=sign)
            torch.bmm(sign_row, gates_col, out=norm)
            torch.addcmul(a, b, norm_2d, out=scale)
            out.addcmul_(sign, scale).sub_(k)
            if uses_l2:
                out.add_(self._l2_term(gates))

        return add
