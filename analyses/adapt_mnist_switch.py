"""Adapter task switching on real MNIST: flexible vs forgetful over seeds, and the adapter on other backbones.

Runs the `mnist-switch` preset (frozen CNN with a 10-unit bottleneck pretrained on digits; adapter with 2
paths; blocks of 300 steps alternating digit <-> remapped label) for both regimes and several seeds on the
shared MNIST test set (split 80/20 per seed) and prints, per switch, steps to criterion (mean +- SE), the
ratio flexible / forgetful from switch 5 on, gate selectivity and the accuracy lost by a returning task.
Then the same adapter on an MLP backbone, on a CNN loaded from a checkpoint file, and with P = 3 paths on 3
tasks (digit, remapped, parity). Outputs: analyses/out/adapt_mnist/ (summary.json per run, figures).

    ./run python analyses/adapt_mnist_switch.py [--seeds 5] [--data ../shared/data/mnist]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from _common import ROOT, out_dir

from cogflex.adapt.plots import plot_accuracy, plot_gates
from cogflex.adapt.train import build_backbone, load_adapt_config, mean_se, run_adapt
from cogflex.io import write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seeds", type=int, default=5)
parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"))
args = parser.parse_args()
out = out_dir("adapt_mnist")
start = time.perf_counter()


def run(config, tag):
    result = run_adapt(config, args.data, progress=False)
    s = result.summary()
    write_json(out / tag / "summary.json", s)
    if config.seed == 0:
        plot_accuracy(result, out / tag / "accuracy.png")
        plot_gates(result, out / tag / "gates.png")
    return s


def fmt(mean, se):
    return f"{mean:6.1f} +- {se:4.1f}" if np.isfinite(se) else f"{mean:6.1f}"


summaries = {}
for regime in ("flexible", "forgetful"):
    summaries[regime] = [run(load_adapt_config("mnist-switch", regime=regime, seed=s), f"{regime}-seed{s}")
                         for s in range(args.seeds)]
n_switch = len(summaries["flexible"][0]["steps_to_criterion"])
print(f"mnist-switch, {args.seeds} seeds: steps to criterion (90% of the pre-switch accuracy) per switch")
print("switch  flexible         forgetful        ratio")
ratios = []
for k in range(n_switch):
    f = mean_se([s["steps_to_criterion"][k] for s in summaries["flexible"]])
    g = mean_se([s["steps_to_criterion"][k] for s in summaries["forgetful"]])
    ratio = f[0] / g[0]
    if k >= 4:
        ratios.append(ratio)
    print(f"{k + 1:5d}   {fmt(*f)}   {fmt(*g)}   {ratio:.3f}")
late_f = mean_se([np.mean([v for v in s["steps_to_criterion"][4:] if v is not None]) for s in summaries["flexible"]])
late_g = mean_se([np.mean([v for v in s["steps_to_criterion"][4:] if v is not None]) for s in summaries["forgetful"]])
print(f"switches 5+: flexible {fmt(*late_f)} steps, forgetful {fmt(*late_g)} steps, ratio {late_f[0] / late_g[0]:.3f} "
      f"(largest per-switch ratio {max(ratios):.3f})")
for regime, runs in summaries.items():
    tasks = runs[0]["tasks"]
    sel = {t: mean_se([s["gate_selectivity"][t] for s in runs]) for t in tasks}
    drop = mean_se([np.mean(s["return_drop"]) for s in runs])
    acc = mean_se([np.mean(s["block_end_accuracy"][-1][-1]) for s in runs])
    print(f"{regime:9s} gate selectivity " + ", ".join(f"{t} {m:.3f} +- {e:.3f}" for t, (m, e) in sel.items())
          + f"; accuracy lost by a returning task after 5 steps {drop[0]:.3f} +- {drop[1]:.3f}; "
            f"final block accuracy {acc[0]:.3f}; {np.mean([s['wall_seconds'] for s in runs]):.1f} s per run")

print("\nOther backbones and more paths (seed 0): steps to criterion switches 5+, selectivity")
base = load_adapt_config("mnist-switch", seed=0)
checkpoint = out / "pretrained_cnn.pt"
torch.manual_seed(0)
cnn = build_backbone(base.backbone, (1, 28, 28))
from cogflex.adapt.data import load_idx_dataset, split_dataset  # noqa: E402
from cogflex.adapt.train import _pretrain  # noqa: E402

train, _ = split_dataset(load_idx_dataset(args.data), base.train_fraction, seed=0)
_pretrain(cnn, base, train, torch.Generator().manual_seed(0))
torch.save(cnn.state_dict(), checkpoint)  # tensors only: loaded with weights_only=True
variants = {
    "mlp": lambda c: replace(c, backbone=replace(c.backbone, kind="mlp", hidden=128)),
    "checkpoint": lambda c: replace(c, backbone=replace(c.backbone, kind="checkpoint", checkpoint=str(checkpoint),
                                                                  architecture="cnn")),
    "3 paths, 3 tasks": lambda c: replace(c, adapter=replace(c.adapter, paths=3), curriculum=replace(
        c.curriculum, tasks=("digit", "remapped", "parity"), blocks=12)),
}
for name, change in variants.items():
    for regime in ("flexible", "forgetful"):
        s = run(change(load_adapt_config("mnist-switch", regime=regime, seed=0)), f"{name.replace(' ', '_')}-{regime}")
        late = [v for v in s["steps_to_criterion"][4:] if v is not None]
        last_task = (s["config"]["curriculum"]["blocks"] - 1) % len(s["tasks"])
        print(f"  {name:17s} {regime:9s} steps {np.mean(late):5.1f} (switches 5+), selectivity "
              + ", ".join(f"{t} {v:.3f}" for t, v in s["gate_selectivity"].items())
              + f", final accuracy {s['block_end_accuracy'][-1][last_task]:.3f}")
print(f"total {time.perf_counter() - start:.0f} s")
