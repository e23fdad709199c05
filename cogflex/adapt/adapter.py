"""NTA adapter layers for any PyTorch model: P gated linear paths with fast, bounded gates.

:class:`GatedAdapter` reads a feature vector f (a backbone's output, flattened) and returns

    y = sum_p c_p (W_p f + b_p)          (path gates, c: P numbers)
    y_o = sum_p c_po (W_p f + b_p)_o     (per-unit gates, c: P x out)

with the gate regulariser R(c) of the paper (:class:`cogflex.nta.regularizers.GateRegularizer`: a
non-negativity term and an L1 (and/or L2) manifold term, times lambda) available as
:meth:`GatedAdapter.regularizer`. The fast/slow split of the NTA model is an optimiser setup, not a
training loop: :func:`timescale_parameter_groups` puts gates, adapter weights and the rest of the model
(the backbone) in parameter groups with their own learning rates — a learning rate is one step over a
timescale (lr = 1 / tau in steps) — for any ``torch.optim`` optimiser (:func:`make_optimizer`: SGD or Adam).
Several adapters may sit in one model; :func:`gate_regularization` sums their regularisers.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from cogflex.errors import CogflexError, ConfigError
from cogflex.nta.config import Regularizer
from cogflex.nta.regularizers import GateRegularizer

__all__ = ["GatedAdapter", "AdaptedModel", "adapters", "gate_regularization", "timescale_parameter_groups",
           "make_optimizer"]


class GatedAdapter(nn.Module):
    """P gated linear paths reading ``in_features`` features (see the module docstring).

    Parameters
    ----------
    in_features, out_features
        Feature and output sizes.
    paths
        Number of paths P.
    gating
        ``"path"`` (one gate per path) or ``"unit"`` (one gate per path and output unit).
    regularization
        lambda, the strength of R(c) (0: none, the forgetful setting).
    regularizer
        Relative weights of R's terms (default: non-negativity 1 : L1 manifold 1).
    gate_init
        Initial gate value (default 1 / P: on the L1 manifold, no path preferred).
    weight_init_std
        Standard deviation of the initial weights (biases start at 0).
    bias
        Whether each path has a bias.
    """

    def __init__(self, in_features: int, out_features: int, paths: int = 2, *, gating: str = "path",
                 regularization: float = 0.1, regularizer: Regularizer | None = None, gate_init: float | None = None,
                 weight_init_std: float = 0.01, bias: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features), ("paths", paths)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"adapter.{name}", f"must be a positive integer, got {value!r}")
        if gating not in ("path", "unit"):
            raise ConfigError("adapter.gating", f"must be 'path' or 'unit', got {gating!r}")
        if regularization < 0:
            raise ConfigError("adapter.regularization", "must not be negative")
        self.in_features, self.out_features, self.paths, self.gating = in_features, out_features, paths, gating
        self.regularization = float(regularization)
        self.regularizer_weights = regularizer or Regularizer(nonnegative=1.0, l1=1.0)
        rows = 1 if gating == "path" else out_features
        init = 1.0 / paths if gate_init is None else float(gate_init)
        self.gates = nn.Parameter(torch.full((rows, paths), init))
        self.weight = nn.Parameter(torch.randn(paths, out_features, in_features, generator=generator) * weight_init_std)
        self.bias = nn.Parameter(torch.zeros(paths, out_features)) if bias else None
        self._reg = GateRegularizer.from_weights(self.regularizer_weights,
                                                 torch.tensor([self.regularization], dtype=torch.float64),
                                                 rows=rows)

    def extra_repr(self) -> str:
        """Sizes, gating and lambda in the module's printout."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, paths={self.paths}, "
                f"gating={self.gating!r}, regularization={self.regularization:g}")

    def path_outputs(self, features: torch.Tensor) -> torch.Tensor:
        """Each path's output before gating, ``(batch, P, out)``."""
        f = features.flatten(1) if features.dim() > 2 else features
        if f.dim() != 2 or f.shape[1] != self.in_features:
            raise CogflexError(f"adapter expects {self.in_features} features per example, got input of shape "
                               f"{tuple(features.shape)} (does the backbone's output size match in_features?)")
        out = torch.einsum("poi,bi->bpo", self.weight, f)
        return out + self.bias if self.bias is not None else out

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Gated sum of the paths, ``(batch, out)``."""
        paths = self.path_outputs(features)
        c = self.gates  # (1, P) or (out, P)
        return torch.einsum("bpo,op->bo", paths, c.expand(self.out_features, self.paths))

    def regularizer(self) -> torch.Tensor:
        """Lambda * R(c) summed over gate rows (a scalar; 0 when lambda = 0)."""
        reg = GateRegularizer(self._reg.nonnegative.to(self.gates), self._reg.l1.to(self.gates),
                              self._reg.l2.to(self.gates))
        return reg.value(self.gates).sum()

    def gate_values(self) -> torch.Tensor:
        """The gates as ``(rows, P)`` (a copy, detached)."""
        return self.gates.detach().clone()


class AdaptedModel(nn.Module):
    """``adapter(backbone(x))``: a backbone (any module) followed by one :class:`GatedAdapter`."""

    def __init__(self, backbone: nn.Module, adapter: GatedAdapter):
        super().__init__()
        self.backbone = backbone
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(batch, out)``."""
        return self.adapter(self.backbone(x))


def adapters(model: nn.Module) -> Iterator[GatedAdapter]:
    """Every :class:`GatedAdapter` inside ``model`` (itself included)."""
    return (m for m in model.modules() if isinstance(m, GatedAdapter))


def gate_regularization(model: nn.Module) -> torch.Tensor:
    """Sum of the regularisers of all adapters in ``model`` (add it to the task loss)."""
    terms = [a.regularizer() for a in adapters(model)]
    if not terms:
        raise CogflexError("the model has no GatedAdapter")
    return torch.stack(terms).sum()


def timescale_parameter_groups(model: nn.Module, *, gate_lr: float, weight_lr: float,
                               backbone_lr: float | None = None) -> list[dict]:
    """Parameter groups ``gates`` / ``adapter_weights`` / ``backbone`` with their own learning rates.

    A learning rate is one optimiser step over a timescale (lr = 1 / tau, in steps): the flexible regime has
    fast gates (gate_lr >> weight_lr), the forgetful one equal rates. ``backbone_lr=None`` (or 0) freezes
    every parameter outside the adapters (``requires_grad`` is switched off).
    """
    for name, value in (("gate_lr", gate_lr), ("weight_lr", weight_lr)):
        if not value > 0:
            raise ConfigError(name, f"must be positive, got {value!r}")
    if backbone_lr is not None and not backbone_lr >= 0:
        raise ConfigError("backbone_lr", f"must be positive (or 0 / None to freeze the backbone), got {backbone_lr!r}")
    found = list(adapters(model))
    if not found:
        raise CogflexError("the model has no GatedAdapter: nothing to give gate and weight timescales")
    gates = [a.gates for a in found]
    adapter_ids = {id(p) for a in found for p in a.parameters()}
    weights = [p for a in found for p in a.parameters() if p is not a.gates]
    rest = [p for p in model.parameters() if id(p) not in adapter_ids]
    groups = [{"name": "gates", "params": gates, "lr": gate_lr},
              {"name": "adapter_weights", "params": weights, "lr": weight_lr}]
    if backbone_lr:
        groups.append({"name": "backbone", "params": rest, "lr": backbone_lr})
    else:
        for p in rest:
            p.requires_grad_(False)
    return groups


def make_optimizer(model: nn.Module, *, gate_lr: float, weight_lr: float, backbone_lr: float | None = None,
                   kind: str = "sgd", **kwargs) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` or ``Adam`` over :func:`timescale_parameter_groups` (extra ``kwargs`` go to it)."""
    groups = timescale_parameter_groups(model, gate_lr=gate_lr, weight_lr=weight_lr, backbone_lr=backbone_lr)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=weight_lr, **kwargs)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=weight_lr, **kwargs)
    raise ConfigError("optimizer", f"must be 'sgd' or 'adam', got {kind!r}")
