"""Adapters: the NTA gating mechanism on nonlinear PyTorch networks (image task switching).

- :mod:`cogflex.adapt.adapter`: :class:`GatedAdapter` (P gated paths with the gate regulariser), the
  fast/slow timescales as optimiser parameter groups;
- :mod:`cogflex.adapt.data`: MNIST / FashionMNIST IDX files and task definitions (label remappings, groupings);
- :mod:`cogflex.adapt.train`: experiments (``models/adapt/*.toml``), the task-switching curriculum and its metrics
  (``cogflex adapt``); :mod:`cogflex.adapt.plots` its figures.
"""

from cogflex.adapt.adapter import (
    AdaptedModel,
    GatedAdapter,
    adapters,
    gate_regularization,
    make_optimizer,
    timescale_parameter_groups,
)
from cogflex.adapt.data import BUILTIN_TASKS, ImageData, Task, load_idx_dataset, make_task, read_idx, split_dataset

__all__ = ["GatedAdapter", "AdaptedModel", "adapters", "gate_regularization", "timescale_parameter_groups",
           "make_optimizer", "ImageData", "Task", "BUILTIN_TASKS", "load_idx_dataset", "make_task", "read_idx",
           "split_dataset"]
