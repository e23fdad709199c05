"""Task switching with an NTA adapter on a nonlinear backbone: config, curriculum training, metrics.

An experiment (``models/adapt/*.toml``, :class:`AdaptConfig`) names a dataset, a backbone, an adapter, the
learning rates (timescales) and a blocked curriculum of tasks. :func:`run_adapt`

1. splits the IDX test set into a training part and a held-out part (seeded);
2. builds the backbone — a small CNN or an MLP with a ``features``-unit bottleneck, pretrained on
   ``backbone.pretrain_task`` (Adam), or a module loaded from a checkpoint — frozen unless
   ``backbone.lr > 0``;
3. trains the adapter (cross-entropy + lambda R(c)) with SGD/Adam in parameter groups (gates fast, weights
   slow: :func:`cogflex.adapt.adapter.make_optimizer`) on blocks of ``block_steps`` steps, cycling through
   the tasks; the regime (``flexible``: fast gates, lambda > 0; ``forgetful``: gates as slow as the weights,
   lambda = 0) picks the learning rates and lambda from ``[regimes.<name>]``;
4. evaluates the held-out accuracy on the current task after every step (``eval_every``) and on every task
   at the end of each block.

Metrics (:meth:`AdaptResult.summary`): ``accuracy_after_switch`` (per switch, held-out accuracy on the new
task at ``offsets`` steps after it), ``steps_to_criterion`` (per switch, steps until the accuracy on the new
task is back to ``criterion`` x the accuracy reached on the old task just before the switch; null if never
within the block), ``gate_selectivity`` (per task, share of gate mass on the dominant path at the end of the
task's last block — gates averaged over the block's last 10% of steps, against SGD noise — mean over gate
rows), ``return_drop`` (per switch from the second cycle on, the task's
accuracy at the end of its previous block minus its accuracy ``return_offset`` steps after it returns: what
the intervening task made it forget) and ``wall_seconds``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from cogflex import resources
from cogflex.adapt.adapter import GatedAdapter, make_optimizer
from cogflex.adapt.data import ImageData, Task, load_idx_dataset, make_task, split_dataset
from cogflex.errors import CogflexError, ConfigError
from cogflex.nta.config import Regularizer
from cogflex.typed_config import from_mapping, read_toml, to_mapping

__all__ = ["AdaptConfig", "BackboneConfig", "AdapterConfig", "CurriculumConfig", "RegimeConfig", "TaskDef",
           "AdaptResult", "load_adapt_config", "run_adapt", "build_backbone", "adapt_preset_names"]


@dataclass(frozen=True)
class BackboneConfig:
    """The feature extractor: ``cnn`` or ``mlp`` (pretrained here), or ``checkpoint`` (saved weights).

    A ``checkpoint`` is by default a *state dict* (``torch.save(model.state_dict(), path)``) of the
    ``architecture`` (``cnn`` or ``mlp`` with ``features``/``hidden``), loaded with ``weights_only=True``:
    tensors only, so the file cannot run code. ``trust_checkpoint = true`` instead loads a whole pickled
    module (``torch.save(model, path)``), which executes whatever code the file holds: only for files you
    made yourself or fully trust.
    """

    kind: Literal["cnn", "mlp", "checkpoint"] = "cnn"
    features: int = 10
    hidden: int = 128
    checkpoint: str = ""
    architecture: Literal["cnn", "mlp"] = "cnn"  # of a checkpoint's state dict
    trust_checkpoint: bool = False  # load a whole pickled module (runs the file's code)
    pretrain_task: str = "digit"
    pretrain_steps: int = 600
    pretrain_lr: float = 1e-3
    lr: float = 0.0  # > 0: the backbone keeps learning during the curriculum, with this learning rate

    def __post_init__(self) -> None:
        if self.features < 1 or self.hidden < 1 or self.pretrain_steps < 0:
            raise ConfigError("backbone", "features and hidden must be positive, pretrain_steps >= 0")
        if self.kind == "checkpoint" and not self.checkpoint:
            raise ConfigError("backbone.checkpoint", "kind = 'checkpoint' needs a checkpoint path")
        if self.lr < 0 or self.pretrain_lr <= 0:
            raise ConfigError("backbone.lr", "learning rates must be positive (lr: 0 freezes the backbone)")


@dataclass(frozen=True)
class AdapterConfig:
    """The adapter: P paths, path or per-unit gates, regulariser weights, initial weight scale."""

    paths: int = 2
    gating: Literal["path", "unit"] = "path"
    nonnegative: float = 1.0
    l1: float = 1.0
    l2: float = 0.0
    weight_init_std: float = 0.01

    def __post_init__(self) -> None:
        if self.paths < 1:
            raise ConfigError("adapter.paths", "must be at least 1")


@dataclass(frozen=True)
class RegimeConfig:
    """Learning rates (one step over a timescale) and lambda of one regime."""

    gate_lr: float
    weight_lr: float
    regularization: float = 0.0

    def __post_init__(self) -> None:
        if not (self.gate_lr > 0 and self.weight_lr > 0):
            raise ConfigError("lr", "gate_lr and weight_lr must be positive")
        if self.regularization < 0:
            raise ConfigError("regularization", "must not be negative")


@dataclass(frozen=True)
class CurriculumConfig:
    """Blocks of ``block_steps`` SGD steps cycling through ``tasks``; evaluation settings."""

    tasks: tuple[str, ...] = ("digit", "remapped")
    block_steps: int = 300
    blocks: int = 12
    batch_size: int = 100
    optimizer: Literal["sgd", "adam"] = "sgd"
    eval_every: int = 1
    eval_size: int = 2000
    offsets: tuple[int, ...] = (1, 5, 10, 25, 50, 100)
    criterion: float = 0.9
    return_offset: int = 5

    def __post_init__(self) -> None:
        if len(self.tasks) < 2:
            raise ConfigError("curriculum.tasks", "a switching curriculum needs at least 2 tasks")
        for name in ("block_steps", "blocks", "batch_size", "eval_every", "eval_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"curriculum.{name}", "must be at least 1")
        if not 0 < self.criterion <= 1:
            raise ConfigError("curriculum.criterion", "must be in (0, 1]")


@dataclass(frozen=True)
class TaskDef:
    """A user-defined task: ``mapping`` (10 classes, one per label) or ``groups`` (lists of labels)."""

    mapping: tuple[int, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class AdaptConfig:
    """One adapter experiment (see the module docstring); ``regime`` selects ``regimes[regime]``."""

    name: str = "adapt"
    description: str = ""
    dataset: Literal["mnist", "fashion-mnist"] = "mnist"
    split: Literal["t10k", "train"] = "t10k"
    train_fraction: float = 0.8
    seed: int = 0
    regime: str = "flexible"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    regimes: dict = field(default_factory=dict)
    tasks: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.train_fraction < 1:
            raise ConfigError("train_fraction", "must be between 0 and 1")
        if not self.regimes:
            raise ConfigError("regimes", "define at least one regime ([regimes.flexible] gate_lr/weight_lr/...)")
        parsed = {k: (v if isinstance(v, RegimeConfig) else from_mapping(RegimeConfig, v, section=f"regimes.{k}"))
                  for k, v in self.regimes.items()}
        object.__setattr__(self, "regimes", parsed)
        if self.regime not in parsed:
            raise ConfigError("regime", f"unknown regime {self.regime!r} (defined: {', '.join(parsed)})")
        defs = {k: (v if isinstance(v, TaskDef) else from_mapping(TaskDef, v, section=f"tasks.{k}"))
                for k, v in self.tasks.items()}
        object.__setattr__(self, "tasks", defs)
        for name in (*self.curriculum.tasks, self.backbone.pretrain_task):
            self.task(name)  # unknown task names fail here, naming the task

    def task(self, name: str) -> Task:
        """The task called ``name`` (user-defined in ``[tasks.<name>]`` or built in)."""
        d = self.tasks.get(name)
        if d is None:
            return make_task(name)
        return make_task(name, mapping=d.mapping or None, groups=[list(g) for g in d.groups] or None)

    @property
    def settings(self) -> RegimeConfig:
        """The learning rates and lambda of the selected regime."""
        return self.regimes[self.regime]


def adapt_preset_names() -> list[str]:
    """Adapter experiment presets (``models/adapt/*.toml`` and the user folders of :mod:`cogflex.resources`)."""
    return resources.preset_names("adapt")


def load_adapt_config(name_or_path: str | Path, **overrides) -> AdaptConfig:
    """Load a preset (``mnist-switch``) or TOML file; ``overrides`` replace top-level keys (e.g. regime)."""
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.exists()):
        path = resources.preset_path("adapt", text)
    raw = read_toml(path)
    raw.setdefault("name", path.stem)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "blocks":
            if not isinstance(raw.setdefault("curriculum", {}), dict):
                raise ConfigError("curriculum", f"expected a table, got {raw['curriculum']!r}", source=str(path))
            raw["curriculum"][key] = value
        else:
            raw[key] = value
    try:
        return from_mapping(AdaptConfig, raw)
    except ConfigError as exc:
        raise exc.within(source=str(path)) from None


def build_backbone(config: BackboneConfig, image_shape: tuple[int, ...]) -> nn.Module:
    """An untrained CNN or MLP ending in ``features`` units, or the weights saved at ``checkpoint``."""
    if config.kind == "checkpoint":
        return _load_checkpoint(config, image_shape)
    return _architecture(config.kind, config, image_shape)


def _load_checkpoint(config: BackboneConfig, image_shape: tuple[int, ...]) -> nn.Module:
    """The ``architecture`` with a state dict loaded tensors-only, or (trusted) a whole pickled module."""
    path = Path(config.checkpoint)
    if not path.is_file():
        raise ConfigError("backbone.checkpoint", f"no such file: {path}")
    if config.trust_checkpoint:
        try:
            module = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable checkpoint
            raise ConfigError("backbone.checkpoint", f"{path}: not a loadable torch module ({exc})") from None
        if not isinstance(module, nn.Module):
            raise ConfigError("backbone.checkpoint", f"{path} holds a {type(module).__name__}, not a torch "
                                                     "nn.Module (save the module with torch.save(model, path))")
        return module
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - weights_only refuses anything but tensors and plain containers
        raise ConfigError("backbone.checkpoint", f"{path} is not a state dict of tensors (a pickled module can run "
                                                 "code when loaded): save torch.save(model.state_dict(), path) and set "
                                                 "backbone.architecture, or set backbone.trust_checkpoint = true "
                                                 "for a file you trust") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError("backbone.checkpoint", f"{path} holds a {type(state).__name__}, not a state dict of "
                                                 "tensors (torch.save(model.state_dict(), path))")
    module = _architecture(config.architecture, config, image_shape)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError("backbone.checkpoint", f"{path} does not fit the {config.architecture} backbone with "
                                                 f"features = {config.features}, hidden = {config.hidden} "
                                                 f"({first})") from None
    return module


def _architecture(kind: str, config: BackboneConfig, image_shape: tuple[int, ...]) -> nn.Module:
    c, h, w = image_shape
    if kind == "cnn" and min(h, w) < 16:
        raise ConfigError("backbone.kind", f"the cnn backbone needs images of at least 16 x 16 pixels, the data has "
                                           f"{h} x {w} (use kind = 'mlp')")
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, config.hidden), nn.ReLU(),
                             nn.Linear(config.hidden, config.features))
    flat = 32 * (((h - 4) // 2 - 4) // 2) * (((w - 4) // 2 - 4) // 2)
    return nn.Sequential(nn.Conv2d(c, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(flat, config.features))


def _pretrain(backbone: nn.Module, config: AdaptConfig, train: ImageData, generator: torch.Generator) -> float:
    """Train the backbone on ``backbone.pretrain_task``; return the final batch accuracy.

    With as many bottleneck units as the task has classes (the paper's 10-unit bottleneck on digits) the
    bottleneck itself is trained as the task's logits; otherwise a linear readout is trained with it.
    """
    bc = config.backbone
    task = config.task(bc.pretrain_task)
    model = backbone if bc.features == task.n_classes else nn.Sequential(backbone, nn.Linear(bc.features,
                                                                                              task.n_classes))
    opt = torch.optim.Adam(model.parameters(), lr=bc.pretrain_lr)
    targets = task.targets(train.labels)
    acc = float("nan")
    for _ in range(bc.pretrain_steps):
        idx = torch.randint(len(train), (config.curriculum.batch_size,), generator=generator).to(targets.device)
        out = model(train.images[idx])
        loss = nn.functional.cross_entropy(out, targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        acc = float((out.argmax(1) == targets[idx]).float().mean())
    return acc


@dataclass
class AdaptResult:
    """Traces of one run: per-step held-out accuracy on the current task, block-end accuracies, gates."""

    config: AdaptConfig
    steps: np.ndarray            # (n_evals,) global step of each evaluation
    accuracy: np.ndarray         # (n_evals,) held-out accuracy on the current task
    block_of: np.ndarray         # (n_evals,) block index of each evaluation
    block_end: np.ndarray        # (blocks, tasks) held-out accuracy on every task at the end of each block
    gates: np.ndarray            # (n_evals, rows, P)
    block_gates: np.ndarray      # (blocks, rows, P) at block end
    wall_seconds: float
    pretrain_accuracy: float
    feature_size: int
    seconds: dict = field(default_factory=dict)  # setup (data, pretraining, features) and curriculum

    def summary(self) -> dict:
        """The stable ``summary.json`` keys (see the module docstring)."""
        cur = self.config.curriculum
        names = list(cur.tasks)
        n_blocks = self.block_end.shape[0]
        after, to_criterion, drops = [], [], []
        for b in range(1, n_blocks):
            task_index = b % len(names)
            in_block = self.block_of == b
            steps = self.steps[in_block] - b * cur.block_steps  # 1 = after the first step of the block
            acc = self.accuracy[in_block]
            offsets = {}
            for k in cur.offsets:
                hit = np.flatnonzero(steps >= k)
                offsets[str(k)] = float(acc[hit[0]]) if hit.size else None
            after.append(offsets)
            previous_task = (b - 1) % len(names)
            level = cur.criterion * float(self.block_end[b - 1, previous_task])
            reached = np.flatnonzero(acc >= level)
            to_criterion.append(int(steps[reached[0]]) if reached.size else None)
            if b >= len(names):
                back = np.flatnonzero(steps >= cur.return_offset)
                if back.size:
                    drops.append(float(self.block_end[b - len(names), task_index] - acc[back[0]]))
        selectivity = {}
        for t, name in enumerate(names):
            last = [b for b in range(n_blocks) if b % len(names) == t]
            if last:
                b = last[-1]
                tail = (self.block_of == b) & (self.steps > (b + 0.9) * cur.block_steps)
                g = np.abs(self.gates[tail].mean(0) if tail.any() else self.block_gates[b])
                selectivity[name] = float((g.max(-1) / np.maximum(g.sum(-1), 1e-12)).mean())
        dominant = {name: [int(np.abs(self.block_gates[b]).sum(0).argmax()) for b in range(n_blocks)
                           if b % len(names) == t] for t, name in enumerate(names)}
        return {"name": self.config.name, "regime": self.config.regime, "seed": self.config.seed,
                "tasks": names, "accuracy_after_switch": after, "steps_to_criterion": to_criterion,
                "gate_selectivity": selectivity, "dominant_path": dominant, "return_drop": drops,
                "block_end_accuracy": self.block_end.tolist(), "final_gates": self.block_gates[-1].tolist(),
                "pretrain_batch_accuracy": self.pretrain_accuracy, "wall_seconds": self.wall_seconds,
                "seconds": self.seconds,
                "config": to_mapping(self.config)}


def run_adapt(config: AdaptConfig, data_dir: str | Path, *, progress: bool = True,
              device: str = "cpu") -> AdaptResult:
    """Run one adapter task-switching experiment (see the module docstring) on ``device`` (cpu, cuda, auto).

    Batches are drawn with a seeded CPU generator, so the sequence of examples is the same on every device.
    """
    from tqdm.auto import tqdm

    from cogflex.nta.simulation import resolve_device

    device = resolve_device(device)
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    data = load_idx_dataset(data_dir, dataset=config.dataset, split=config.split)
    try:
        train, held_out = split_dataset(data, config.train_fraction, seed=config.seed)
    except ConfigError as exc:
        raise ConfigError("train_fraction", f"{exc.message} ({data.source})") from None
    cur = config.curriculum
    evaluation = held_out.subset(torch.arange(min(cur.eval_size, len(held_out))))
    train = ImageData(train.images.to(device), train.labels.to(device), train.source)
    evaluation = ImageData(evaluation.images.to(device), evaluation.labels.to(device), evaluation.source)
    backbone = build_backbone(config.backbone, tuple(train.images.shape[1:])).to(device)
    pretrain_acc = float("nan")
    if config.backbone.kind != "checkpoint" and config.backbone.pretrain_steps:
        pretrain_acc = _pretrain(backbone, config, train, generator)
    frozen = config.backbone.lr == 0
    backbone.eval() if frozen else backbone.train()
    with torch.no_grad():
        probe = backbone(train.images[:2])
    feature_size = int(probe.flatten(1).shape[1])
    tasks = [config.task(n) for n in cur.tasks]
    out_size = max(t.n_classes for t in tasks)
    regime = config.settings
    adapter = GatedAdapter(feature_size, out_size, config.adapter.paths, gating=config.adapter.gating,
                           regularization=regime.regularization,
                           regularizer=Regularizer(config.adapter.nonnegative, config.adapter.l1, config.adapter.l2),
                           weight_init_std=config.adapter.weight_init_std, generator=generator).to(device)
    model = nn.Sequential(backbone, adapter)
    optimizer = make_optimizer(model, gate_lr=regime.gate_lr, weight_lr=regime.weight_lr,
                               backbone_lr=config.backbone.lr or None, kind=cur.optimizer)
    if frozen:  # features once: the backbone does not change
        with torch.no_grad():
            train_x, eval_x = backbone(train.images), backbone(evaluation.images)
        forward = adapter
    else:
        train_x, eval_x = train.images, evaluation.images
        forward = model
    train_targets = [t.targets(train.labels) for t in tasks]
    eval_targets = [t.targets(evaluation.labels) for t in tasks]

    def accuracy(t: int) -> float:
        with torch.no_grad():
            return float((forward(eval_x).argmax(1) == eval_targets[t]).float().mean())

    setup_seconds = time.perf_counter() - start
    steps, accs, blocks_of, gates = [], [], [], []
    block_end = np.zeros((cur.blocks, len(tasks)))
    block_gates = []
    total = cur.blocks * cur.block_steps
    bar = tqdm(total=total, desc=f"{config.name} ({config.regime}, seed {config.seed})", unit="step",
               disable=not progress)
    step = 0
    for b in range(cur.blocks):
        t = b % len(tasks)
        for _ in range(cur.block_steps):
            idx = torch.randint(len(train), (cur.batch_size,), generator=generator).to(device)
            out = forward(train_x[idx])
            loss = nn.functional.cross_entropy(out, train_targets[t][idx]) + adapter.regularizer()
            if not torch.isfinite(loss):
                raise CogflexError(f"{config.name}: loss became {loss.item()} at step {step + 1} (block {b + 1}); "
                                   "lower the learning rates")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % cur.eval_every == 0 or step % cur.block_steps == 0:
                steps.append(step)
                accs.append(accuracy(t))
                blocks_of.append(b)
                gates.append(adapter.gate_values().cpu().numpy())
            bar.update(1)
        block_end[b] = [accuracy(k) for k in range(len(tasks))]
        block_gates.append(adapter.gate_values().cpu().numpy())
    bar.close()
    return AdaptResult(config=config, steps=np.array(steps), accuracy=np.array(accs), block_of=np.array(blocks_of),
                       block_end=block_end, gates=np.array(gates), block_gates=np.array(block_gates),
                       wall_seconds=time.perf_counter() - start, pretrain_accuracy=pretrain_acc,
                       feature_size=feature_size,
                       seconds={"setup": setup_seconds, "curriculum": time.perf_counter() - start - setup_seconds})


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the finite values (NaN when none)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
