"""GatedAdapter and the timescale optimiser setup: outputs, gradients and R(c) against explicit formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cogflex.adapt import (
    AdaptedModel,
    GatedAdapter,
    adapters,
    gate_regularization,
    make_optimizer,
    timescale_parameter_groups,
)
from cogflex.errors import CogflexError, ConfigError
from cogflex.nta.config import Regularizer
from cogflex.nta.regularizers import GateRegularizer


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_adapter(in_features=5, out_features=3, paths=2, *, gating="path", seed=0, dtype=torch.float64, **kwargs):
    """An adapter with random (non-uniform) gates and biases, so that every term of the formulas matters."""
    adapter = GatedAdapter(in_features, out_features, paths, gating=gating, weight_init_std=0.5,
                           generator=_gen(seed), **kwargs).to(dtype)
    gen = _gen(seed + 100)
    with torch.no_grad():
        adapter.gates.copy_(torch.randn(adapter.gates.shape, generator=gen, dtype=dtype))
        if adapter.bias is not None:
            adapter.bias.copy_(torch.randn(adapter.bias.shape, generator=gen, dtype=dtype))
    return adapter


def params_np(adapter: GatedAdapter):
    """(W (P,O,I), b (P,O), c (rows,P)) as float64 numpy arrays."""
    w = adapter.weight.detach().double().numpy()
    b = (adapter.bias.detach().double().numpy() if adapter.bias is not None
         else np.zeros(w.shape[:2]))
    c = adapter.gates.detach().double().numpy()
    return w, b, c


def gate(c: np.ndarray, gating: str, o: int, p: int) -> float:
    return c[0, p] if gating == "path" else c[o, p]


def explicit_forward(adapter: GatedAdapter, x: torch.Tensor) -> np.ndarray:
    """y_no = sum_p c_p(o) (W_p f_n + b_p)_o with plain loops."""
    w, b, c = params_np(adapter)
    f = x.detach().double().numpy().reshape(x.shape[0], -1)
    n_paths, n_out, n_in = w.shape
    y = np.zeros((f.shape[0], n_out))
    for n in range(f.shape[0]):
        for p in range(n_paths):
            for o in range(n_out):
                z = sum(w[p, o, i] * f[n, i] for i in range(n_in)) + b[p, o]
                y[n, o] += gate(c, adapter.gating, o, p) * z
    return y


def ref_regularizer(c: np.ndarray, lam: float, weights=(1.0, 1.0, 0.0)) -> float:
    """lambda * sum over rows of [w_nn 10 sum relu(-c) + w_l1 5 (||c||_1-1)^2 + w_l2 1/2 (||c||_2-1)^2]."""
    total = sum(weights)
    w_nn, w_l1, w_l2 = (w / total for w in weights)
    out = 0.0
    for row in np.atleast_2d(c):
        nonneg = 10 * sum(max(-v, 0.0) for v in row)
        l1 = 10 * 0.5 * (sum(abs(v) for v in row) - 1) ** 2
        l2 = 0.5 * (math.sqrt(sum(v * v for v in row)) - 1) ** 2
        out += w_nn * nonneg + w_l1 * l1 + w_l2 * l2
    return lam * out


# ---------------------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("gating", ["path", "unit"])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_explicit_formula(gating, bias):
    """The output is sum_p c_p (W_p f + b_p), with per-unit gates c_po under unit gating."""
    adapter = make_adapter(5, 3, 3, gating=gating, bias=bias)
    x = torch.randn(4, 5, generator=_gen(1), dtype=torch.float64)
    y = adapter(x)
    assert y.shape == (4, 3)
    np.testing.assert_allclose(y.detach().numpy(), explicit_forward(adapter, x), rtol=1e-10, atol=1e-12)


def test_gate_shapes_and_default_init():
    """Path gating has one row of P gates, unit gating one row per output; gates start at 1/P."""
    a = GatedAdapter(5, 3, 4)
    u = GatedAdapter(5, 3, 4, gating="unit")
    assert a.gates.shape == (1, 4) and u.gates.shape == (3, 4)
    assert torch.all(a.gates == 0.25) and torch.all(u.gates == 0.25)
    assert torch.all(a.bias == 0)
    assert GatedAdapter(5, 3, 2, gate_init=0.7).gates.flatten().tolist() == pytest.approx([0.7, 0.7])


def test_unit_gating_uses_each_units_own_gates():
    """Under unit gating, switching off path 0 for output 1 only changes output 1 alone."""
    adapter = make_adapter(4, 3, 2, gating="unit")
    x = torch.randn(2, 4, generator=_gen(2), dtype=torch.float64)
    before = adapter(x).detach()
    with torch.no_grad():
        adapter.gates[1, 0] = 0.0
    after = adapter(x).detach()
    torch.testing.assert_close(after[:, [0, 2]], before[:, [0, 2]])
    assert not torch.allclose(after[:, 1], before[:, 1])


def test_four_d_input_is_flattened():
    """A (batch, C, H, W) input is read as its flattened C*H*W features."""
    adapter = make_adapter(12, 3, 2)
    x = torch.randn(2, 3, 2, 2, generator=_gen(3), dtype=torch.float64)
    y = adapter(x)
    np.testing.assert_allclose(y.detach().numpy(), explicit_forward(adapter, x.reshape(2, 12)), rtol=1e-10)
    torch.testing.assert_close(y, adapter(x.reshape(2, -1)))


def test_adapted_model_is_adapter_of_backbone():
    """AdaptedModel(x) is adapter(backbone(x))."""
    backbone = nn.Sequential(nn.Linear(6, 5), nn.Tanh()).double()
    adapter = make_adapter(5, 3, 2)
    model = AdaptedModel(backbone, adapter)
    x = torch.randn(3, 6, generator=_gen(4), dtype=torch.float64)
    feats = torch.tanh(x @ backbone[0].weight.T + backbone[0].bias)
    np.testing.assert_allclose(model(x).detach().numpy(), explicit_forward(adapter, feats), rtol=1e-10)


def test_gate_values_is_a_detached_copy():
    """gate_values() returns the gates; changing the copy leaves the adapter alone."""
    adapter = make_adapter(4, 2, 3)
    values = adapter.gate_values()
    torch.testing.assert_close(values, adapter.gates.detach())
    assert not values.requires_grad
    values += 1.0
    assert not torch.allclose(values, adapter.gates.detach())


# -------------------------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("gating", ["path", "unit"])
def test_autograd_gradients_match_analytic(gating):
    """For L = 1/2 sum y^2: dL/dc = sum y z, dL/dW_p = sum (y * c_p) f^T, dL/db_p = sum y * c_p."""
    adapter = make_adapter(4, 3, 2, gating=gating)
    x = torch.randn(5, 4, generator=_gen(5), dtype=torch.float64)
    loss = 0.5 * (adapter(x) ** 2).sum()
    loss.backward()

    w, b, c = params_np(adapter)
    f = x.numpy()
    y = explicit_forward(adapter, x)  # dL/dy = y
    n_paths, n_out, n_in = w.shape
    z = np.einsum("poi,ni->npo", w, f) + b[None]  # each path's output
    d_c = np.zeros_like(c)
    d_w = np.zeros_like(w)
    d_b = np.zeros_like(b)
    for n in range(len(f)):
        for p in range(n_paths):
            for o in range(n_out):
                row = 0 if gating == "path" else o
                d_c[row, p] += y[n, o] * z[n, p, o]
                g = gate(c, gating, o, p)
                d_b[p, o] += y[n, o] * g
                for i in range(n_in):
                    d_w[p, o, i] += y[n, o] * g * f[n, i]
    np.testing.assert_allclose(adapter.gates.grad.numpy(), d_c, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(adapter.weight.grad.numpy(), d_w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(adapter.bias.grad.numpy(), d_b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gating", ["path", "unit"])
def test_gradcheck_float64(gating):
    """torch.autograd.gradcheck passes for input, gates, weights and biases of a tiny adapter."""
    adapter = make_adapter(3, 2, 2, gating=gating)
    names = ("gates", "weight", "bias")
    params = tuple(getattr(adapter, n).detach().clone().requires_grad_(True) for n in names)
    x = torch.randn(2, 3, generator=_gen(6), dtype=torch.float64, requires_grad=True)

    def fn(x, *ps):
        return torch.func.functional_call(adapter, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params))


# ----------------------------------------------------------------------------------------------- regulariser


def test_regularizer_hand_computed_value():
    """c = (0.7, -0.2, 0.9), lambda 0.3, default weights 1:1 -> 0.3 * (0.5*10*0.2 + 0.5*5*0.8^2) = 0.78."""
    adapter = GatedAdapter(4, 2, 3, regularization=0.3)
    with torch.no_grad():
        adapter.gates.copy_(torch.tensor([[0.7, -0.2, 0.9]]))
    assert adapter.regularizer().item() == pytest.approx(0.78, rel=1e-6)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 0.0), (2.0, 1.0, 1.0), (0.0, 0.0, 3.0), (1.0, 0.0, 0.0)])
@pytest.mark.parametrize("gating", ["path", "unit"])
def test_regularizer_matches_formula(weights, gating):
    """R(c) equals the formula (weights normalised, summed over gate rows) for hand-picked gates."""
    rows = [[0.7, -0.2, 0.9], [0.3, 0.4, -0.6]]
    adapter = GatedAdapter(4, 2, 3, gating=gating, regularization=0.4, regularizer=Regularizer(*weights)).double()
    c = np.array(rows[:1] if gating == "path" else rows)
    with torch.no_grad():
        adapter.gates.copy_(torch.from_numpy(c))
    value = adapter.regularizer()
    assert value.dim() == 0
    assert value.item() == pytest.approx(ref_regularizer(c, 0.4, weights), rel=1e-10)


def test_regularizer_is_zero_on_the_manifold_and_when_lambda_is_zero():
    """R = 0 with lambda = 0 (any gates) and at the default gates 1/P (on the L1 manifold)."""
    adapter = GatedAdapter(4, 3, 2, gating="unit", regularization=0.0)
    with torch.no_grad():
        adapter.gates.copy_(torch.tensor([[3.0, -2.0], [-1.0, 0.5], [0.1, 0.1]]))
    assert adapter.regularizer().item() == 0.0
    assert GatedAdapter(4, 3, 2, regularization=1.0).regularizer().item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 0.0), (1.0, 2.0, 1.0)])
@pytest.mark.parametrize("gating", ["path", "unit"])
def test_regularizer_gradient_matches_gate_regularizer(weights, gating):
    """Autograd dR/dc equals GateRegularizer.gradient (gates away from 0, ||c||_1 != 1)."""
    lam = 0.25
    adapter = GatedAdapter(4, 3, 3, gating=gating, regularization=lam, regularizer=Regularizer(*weights)).double()
    c = torch.tensor([[0.8, -0.3, 0.6], [-0.5, 0.2, 0.9], [0.4, 0.7, -0.1]], dtype=torch.float64)
    c = c[: adapter.gates.shape[0]]
    with torch.no_grad():
        adapter.gates.copy_(c)
    adapter.regularizer().backward()
    ref = GateRegularizer.from_weights(Regularizer(*weights), torch.tensor([lam], dtype=torch.float64),
                                       rows=c.shape[0]).gradient(c)
    torch.testing.assert_close(adapter.gates.grad, ref)
    assert adapter.weight.grad is None or torch.all(adapter.weight.grad == 0)


# ------------------------------------------------------------------------------------ timescale optimiser setup


def small_model(**adapter_kwargs) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), make_adapter(5, 3, 2, **adapter_kwargs)).double()


def group_ids(groups) -> dict[str, set[int]]:
    return {g["name"]: {id(p) for p in g["params"]} for g in groups}


def test_parameter_groups_partition_the_model():
    """Gates, adapter weights+biases and backbone each get their own group and lr; every parameter once."""
    model = small_model()
    backbone, adapter = model[0], model[2]
    groups = timescale_parameter_groups(model, gate_lr=0.5, weight_lr=0.01, backbone_lr=0.001)
    ids = group_ids(groups)
    assert ids == {"gates": {id(adapter.gates)}, "adapter_weights": {id(adapter.weight), id(adapter.bias)},
                   "backbone": {id(backbone.weight), id(backbone.bias)}}
    assert {g["name"]: g["lr"] for g in groups} == {"gates": 0.5, "adapter_weights": 0.01, "backbone": 0.001}
    listed = [id(p) for g in groups for p in g["params"]]
    assert sorted(listed) == sorted(id(p) for p in model.parameters())  # each parameter in exactly one group


def test_adapter_without_bias_has_only_weights():
    """bias=False: the adapter_weights group holds the weight tensor only."""
    model = small_model(bias=False)
    groups = timescale_parameter_groups(model, gate_lr=0.1, weight_lr=0.01, backbone_lr=0.01)
    assert group_ids(groups)["adapter_weights"] == {id(model[2].weight)}


@pytest.mark.parametrize("backbone_lr", [None, 0])
def test_no_backbone_lr_freezes_backbone(backbone_lr):
    """backbone_lr None or 0: backbone parameters stop requiring grad and are in no group."""
    model = small_model()
    groups = timescale_parameter_groups(model, gate_lr=0.1, weight_lr=0.01, backbone_lr=backbone_lr)
    assert [g["name"] for g in groups] == ["gates", "adapter_weights"]
    assert not model[0].weight.requires_grad and not model[0].bias.requires_grad
    assert all(p.requires_grad for p in model[2].parameters())
    listed = {id(p) for g in groups for p in g["params"]}
    assert listed == {id(p) for p in model[2].parameters()}


def _one_step(model, opt, x):
    opt.zero_grad()
    loss = 0.5 * (model(x) ** 2).sum() + gate_regularization(model)
    loss.backward()


@pytest.mark.parametrize("frozen", [False, True])
def test_sgd_step_uses_each_groups_learning_rate(frozen):
    """One SGD step moves each parameter by exactly -lr * grad with its group's lr (frozen: unchanged)."""
    model = small_model()
    lrs = {"gates": 0.5, "adapter_weights": 0.01, "backbone": 0.002}
    opt = make_optimizer(model, gate_lr=lrs["gates"], weight_lr=lrs["adapter_weights"],
                         backbone_lr=None if frozen else lrs["backbone"])
    assert isinstance(opt, torch.optim.SGD)
    x = torch.randn(4, 6, generator=_gen(7), dtype=torch.float64)
    _one_step(model, opt, x)
    backbone, adapter = model[0], model[2]
    which = {id(adapter.gates): "gates", id(adapter.weight): "adapter_weights", id(adapter.bias): "adapter_weights",
             id(backbone.weight): "backbone", id(backbone.bias): "backbone"}
    before = {id(p): p.detach().clone() for p in model.parameters()}
    grads = {id(p): None if p.grad is None else p.grad.clone() for p in model.parameters()}
    opt.step()
    for p in model.parameters():
        name = which[id(p)]
        if frozen and name == "backbone":
            assert grads[id(p)] is None
            torch.testing.assert_close(p.detach(), before[id(p)], rtol=0, atol=0)
        else:
            assert grads[id(p)].abs().sum() > 0
            expected = before[id(p)] - lrs[name] * grads[id(p)]
            torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-14)


def test_adam_first_step_per_group():
    """Adam works: its first step is -lr * g / (|g| + eps) with each group's lr."""
    model = small_model()
    lrs = {"gates": 0.05, "adapter_weights": 0.01, "backbone": 0.003}
    opt = make_optimizer(model, gate_lr=lrs["gates"], weight_lr=lrs["adapter_weights"],
                         backbone_lr=lrs["backbone"], kind="adam")
    assert isinstance(opt, torch.optim.Adam)
    x = torch.randn(4, 6, generator=_gen(8), dtype=torch.float64)
    _one_step(model, opt, x)
    backbone, adapter = model[0], model[2]
    which = {id(adapter.gates): "gates", id(adapter.weight): "adapter_weights", id(adapter.bias): "adapter_weights",
             id(backbone.weight): "backbone", id(backbone.bias): "backbone"}
    before = {id(p): p.detach().clone() for p in model.parameters()}
    grads = {id(p): p.grad.clone() for p in model.parameters()}
    opt.step()
    for p in model.parameters():
        g = grads[id(p)]
        expected = before[id(p)] - lrs[which[id(p)]] * g / (g.abs() + 1e-8)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-9, atol=1e-12)
    # a few more steps reduce the loss
    first = (0.5 * (model(x) ** 2).sum() + gate_regularization(model)).item()
    for _ in range(20):
        _one_step(model, opt, x)
        opt.step()
    assert (0.5 * (model(x) ** 2).sum() + gate_regularization(model)).item() < first


class TwoHeads(nn.Module):
    """Two adapters reading the same features, outputs concatenated."""

    def __init__(self):
        super().__init__()
        self.a = make_adapter(5, 3, 2, regularization=0.2, seed=1)
        self.b = make_adapter(5, 2, 3, gating="unit", regularization=0.5, seed=2)

    def forward(self, f):
        return torch.cat([self.a(f), self.b(f)], dim=1)


def test_several_adapters_found_and_regularisers_summed():
    """adapters() finds both parallel adapters; gate_regularization sums their R(c); both get gate/weight lrs."""
    torch.manual_seed(0)
    heads = TwoHeads()
    model = nn.Sequential(nn.Linear(6, 5).double(), nn.ReLU(), heads)
    found = list(adapters(model))
    assert len(found) == 2 and found[0] is heads.a and found[1] is heads.b
    assert list(adapters(heads.a)) == [heads.a]
    expected = (ref_regularizer(heads.a.gates.detach().numpy(), 0.2)
                + ref_regularizer(heads.b.gates.detach().numpy(), 0.5))
    assert expected > 0.1
    assert gate_regularization(model).item() == pytest.approx(expected, rel=1e-10)

    groups = timescale_parameter_groups(model, gate_lr=0.3, weight_lr=0.03, backbone_lr=0.003)
    ids = group_ids(groups)
    assert ids["gates"] == {id(heads.a.gates), id(heads.b.gates)}
    assert ids["adapter_weights"] == {id(heads.a.weight), id(heads.a.bias), id(heads.b.weight), id(heads.b.bias)}
    assert ids["backbone"] == {id(model[0].weight), id(model[0].bias)}
    y = model(torch.randn(2, 6, dtype=torch.float64))
    assert y.shape == (2, 5)


def test_model_without_adapters_raises():
    """No GatedAdapter in the model: CogflexError from the groups, the optimiser and the regulariser sum."""
    model = nn.Sequential(nn.Linear(3, 2))
    for call in (lambda: timescale_parameter_groups(model, gate_lr=0.1, weight_lr=0.1),
                 lambda: make_optimizer(model, gate_lr=0.1, weight_lr=0.1),
                 lambda: gate_regularization(model)):
        with pytest.raises(CogflexError, match="GatedAdapter"):
            call()


@pytest.mark.parametrize("field, kwargs", [
    ("gate_lr", dict(gate_lr=0.0, weight_lr=0.1)),
    ("gate_lr", dict(gate_lr=-1.0, weight_lr=0.1)),
    ("weight_lr", dict(gate_lr=0.1, weight_lr=0.0)),
    ("weight_lr", dict(gate_lr=0.1, weight_lr=-0.5)),
    ("gate_lr", dict(gate_lr=float("nan"), weight_lr=0.1)),
    ("backbone_lr", dict(gate_lr=0.1, weight_lr=0.1, backbone_lr=-0.01)),
])
def test_non_positive_learning_rates_raise(field, kwargs):
    """A non-positive (or NaN) learning rate is a ConfigError naming the field, for groups and optimiser."""
    for fn in (timescale_parameter_groups, make_optimizer):
        with pytest.raises(ConfigError, match=field) as info:
            fn(small_model(), **kwargs)
        assert info.value.field == field


def test_unknown_optimizer_kind():
    """kind other than sgd/adam: ConfigError naming 'optimizer'."""
    with pytest.raises(ConfigError, match="optimizer") as info:
        make_optimizer(small_model(), gate_lr=0.1, weight_lr=0.1, kind="rmsprop")
    assert info.value.field == "optimizer"


# ---------------------------------------------------------------------------------------------- bad configs


def test_feature_size_mismatch_names_both_sizes():
    """A backbone giving 12 features into an adapter expecting 10: CogflexError with both sizes."""
    model = AdaptedModel(nn.Linear(6, 12), GatedAdapter(10, 3))
    with pytest.raises(CogflexError) as info:
        model(torch.randn(4, 6))
    assert "10" in str(info.value) and "12" in str(info.value)
    with pytest.raises(CogflexError, match="10"):
        GatedAdapter(10, 3)(torch.randn(10))  # a 1-d input is no batch


@pytest.mark.parametrize("field, kwargs", [
    ("adapter.gating", dict(gating="bogus")),
    ("adapter.paths", dict(paths=0)),
    ("adapter.paths", dict(paths=2.5)),
    ("adapter.regularization", dict(regularization=-0.1)),
    ("adapter.in_features", dict(in_features=0)),
    ("adapter.out_features", dict(out_features=-3)),
])
def test_bad_adapter_config(field, kwargs):
    """Invalid adapter settings raise ConfigError naming adapter.<field>."""
    args = dict(in_features=4, out_features=2)
    args.update(kwargs)
    with pytest.raises(ConfigError) as info:
        GatedAdapter(**args)
    assert info.value.field == field
    assert field in str(info.value)
