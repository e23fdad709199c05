"""The adapter curriculum trainer and `cogflex adapt` on small settings of the real MNIST test set."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cogflex.adapt.train import build_backbone, load_adapt_config, run_adapt
from cogflex.errors import ConfigError
from tests.data.helpers import assert_one_line_error, cli

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(not MNIST.exists(), reason="needs ../shared/data/mnist")


def small(regime="flexible", **curriculum):
    """mnist-switch with a short pretraining, 4 blocks of 60 steps and a 300-image evaluation set."""
    config = load_adapt_config("mnist-switch", regime=regime)
    cur = replace(config.curriculum, **{"blocks": 4, "block_steps": 60, "eval_size": 300, **curriculum})
    return replace(config, backbone=replace(config.backbone, pretrain_steps=150), curriculum=cur)


@pytest.fixture(scope="module")
def flexible():
    return run_adapt(small("flexible"), MNIST, progress=False)


@pytest.fixture(scope="module")
def forgetful():
    return run_adapt(small("forgetful"), MNIST, progress=False)


def test_summary_keys_and_shapes(flexible):
    """summary.json's documented keys, one entry per switch, offsets as configured."""
    s = flexible.summary()
    for key in ("accuracy_after_switch", "steps_to_criterion", "gate_selectivity", "wall_seconds", "return_drop"):
        assert key in s
    assert len(s["steps_to_criterion"]) == len(s["accuracy_after_switch"]) == 3
    assert set(s["accuracy_after_switch"][0]) == {"1", "5", "10", "25", "50", "100"}
    assert s["accuracy_after_switch"][0]["100"] is None  # beyond a 60-step block
    assert set(s["gate_selectivity"]) == {"digit", "remapped"}
    assert all(0.5 <= v <= 1.0 for v in s["gate_selectivity"].values())
    assert len(s["return_drop"]) == 2
    json.dumps(s)  # JSON-ready


def test_deterministic_for_a_seed(flexible):
    """The same config and seed give the same accuracies and gates; another seed does not."""
    again = run_adapt(small("flexible"), MNIST, progress=False)
    assert (again.accuracy == flexible.accuracy).all() and (again.gates == flexible.gates).all()
    other = run_adapt(replace(small("flexible"), seed=1), MNIST, progress=False)
    assert not (other.accuracy == flexible.accuracy).all()


def test_steps_to_criterion_matches_the_trace(flexible):
    """steps_to_criterion is the first evaluated step of the block at 90% of the previous block's accuracy."""
    s = flexible.summary()
    cur = flexible.config.curriculum
    for k, value in enumerate(s["steps_to_criterion"], start=1):
        level = cur.criterion * flexible.block_end[k - 1, (k - 1) % 2]
        in_block = flexible.block_of == k
        acc = flexible.accuracy[in_block]
        steps = flexible.steps[in_block] - k * cur.block_steps
        first = next((int(st) for st, a in zip(steps, acc) if a >= level), None)
        assert value == first


def test_flexible_switches_faster_and_specialises(flexible, forgetful):
    """Fast gates with the regulariser recover faster after the last switch and pick one path per task."""
    f, g = flexible.summary(), forgetful.summary()
    assert f["steps_to_criterion"][-1] is not None
    assert g["steps_to_criterion"][-1] is None or f["steps_to_criterion"][-1] < g["steps_to_criterion"][-1]
    assert min(f["gate_selectivity"].values()) > max(g["gate_selectivity"].values())
    assert f["dominant_path"]["digit"][-1] != f["dominant_path"]["remapped"][-1]


def test_backbone_is_frozen_by_default(monkeypatch):
    """With backbone.lr = 0 the optimiser gets no backbone group; with lr > 0 it does."""
    import cogflex.adapt.train as train

    seen = []
    real = train.make_optimizer

    def spy(model, **kwargs):
        opt = real(model, **kwargs)
        seen.append([g["name"] for g in opt.param_groups])
        return opt

    monkeypatch.setattr(train, "make_optimizer", spy)
    cfg = small(blocks=2, block_steps=5)
    run_adapt(replace(cfg, backbone=replace(cfg.backbone, pretrain_steps=5)), MNIST, progress=False)
    run_adapt(replace(cfg, backbone=replace(cfg.backbone, pretrain_steps=5, lr=1e-4)), MNIST, progress=False)
    assert seen == [["gates", "adapter_weights"], ["gates", "adapter_weights", "backbone"]]


def test_checkpoint_backbone_and_more_paths(tmp_path):
    """A state dict saved with torch.save is loaded (tensors only) into its architecture; P = 3 adapters run on
    3 tasks."""
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 20), torch.nn.ReLU(),
                                   torch.nn.Linear(20, 12))
    path = tmp_path / "backbone.pt"
    torch.save(backbone.state_dict(), path)
    cfg = small(blocks=3, block_steps=10, tasks=("digit", "remapped", "parity"))
    cfg = replace(cfg, backbone=replace(cfg.backbone, kind="checkpoint", checkpoint=str(path), architecture="mlp",
                                        hidden=20, features=12),
                  adapter=replace(cfg.adapter, paths=3))
    result = run_adapt(cfg, MNIST, progress=False)
    assert result.feature_size == 12 and result.gates.shape[-1] == 3
    assert set(result.summary()["gate_selectivity"]) == {"digit", "remapped", "parity"}
    loaded = build_backbone(cfg.backbone, (1, 28, 28))
    for name, tensor in backbone.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    wrong = replace(cfg.backbone, hidden=30)
    with pytest.raises(ConfigError, match="does not fit the mlp backbone"):
        build_backbone(wrong, (1, 28, 28))


class _Planted(torch.nn.Module):
    """A module whose unpickling writes a marker file (what a malicious checkpoint would do)."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_module_is_refused_unless_trusted(tmp_path):
    """A whole pickled module runs code when loaded: refused (and never executed) unless trust_checkpoint."""
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 12))
    path = tmp_path / "module.pt"
    torch.save(module, path)
    cfg = replace(small().backbone, kind="checkpoint", checkpoint=str(path))
    with pytest.raises(ConfigError, match="trust_checkpoint"):
        build_backbone(cfg, (1, 28, 28))
    assert isinstance(build_backbone(replace(cfg, trust_checkpoint=True), (1, 28, 28)), torch.nn.Sequential)
    planted = _Planted()
    planted.marker = str(tmp_path / "pwned")
    evil = tmp_path / "evil.pt"
    torch.save(planted, evil)
    with pytest.raises(ConfigError, match="not a state dict of tensors"):
        build_backbone(replace(cfg, checkpoint=str(evil)), (1, 28, 28))
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(("change", "words"), [
    ({"regime": "sloppy"}, ["regime", "sloppy", "flexible"]),
    ({"curriculum": {"tasks": ["digit", "nosuch"]}}, ["nosuch", "unknown task"]),
    ({"curriculum": {"tasks": ["digit"]}}, ["curriculum.tasks", "at least 2"]),
    ({"backbone": {"kind": "checkpoint"}}, ["backbone.checkpoint"]),
    ({"regimes": {"flexible": {"gate_lr": -1.0, "weight_lr": 0.01}}}, ["regimes.flexible"]),
])
def test_bad_configs_name_the_field(tmp_path, change, words):
    """Bad experiment files raise ConfigError naming the field (and the file)."""
    from cogflex.resources import preset_path

    text = preset_path("adapt", "mnist-switch").read_text()
    import tomllib

    raw = tomllib.loads(text)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            for k, v in value.items():
                raw[key][k] = {**raw[key].get(k, {}), **v} if isinstance(v, dict) else v
        else:
            raw[key] = value
    from tests.fit.helpers import toml_text

    path = tmp_path / "bad.toml"
    path.write_text(toml_text(raw))
    with pytest.raises(ConfigError) as err:
        load_adapt_config(path)
    message = str(err.value)
    assert all(w in message for w in words), message


def test_missing_checkpoint_file(tmp_path):
    """A checkpoint path that does not exist is named."""
    cfg = small()
    cfg = replace(cfg, backbone=replace(cfg.backbone, kind="checkpoint", checkpoint=str(tmp_path / "none.pt")))
    with pytest.raises(ConfigError, match="none.pt"):
        run_adapt(cfg, MNIST, progress=False)


def test_cli_adapt_writes_summary_and_figures(tmp_path, capsys):
    """`cogflex adapt FILE --data DIR --blocks 3 --out DIR`: summary.json and both PNGs; bad data dir: exit 2."""
    from cogflex.resources import preset_path

    text = preset_path("adapt", "mnist-switch").read_text()
    text = text.replace("pretrain_steps = 600", "pretrain_steps = 50").replace("block_steps = 300", "block_steps = 30")
    path = tmp_path / "quick.toml"
    path.write_text(text)
    status, out, err = cli(capsys, "adapt", path, "--data", MNIST, "--blocks", "3", "--regime", "forgetful",
                           "--out", tmp_path / "o", "--quiet")
    assert status == 0, err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["regime"] == "forgetful" and len(s["steps_to_criterion"]) == 2
    assert (tmp_path / "o" / "accuracy.png").stat().st_size > 1000 and (tmp_path / "o" / "gates.png").exists()
    status, _, err = cli(capsys, "adapt", path, "--data", tmp_path / "nodata", "--quiet")
    assert_one_line_error(status, err, "nodata")
