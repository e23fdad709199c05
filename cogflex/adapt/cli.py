"""``cogflex adapt``: an NTA adapter on a nonlinear backbone, trained on a task-switching curriculum."""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_adapt_commands"]


def _cmd_adapt(args) -> int:
    from cogflex.adapt.plots import plot_accuracy, plot_gates
    from cogflex.adapt.train import load_adapt_config, run_adapt
    from cogflex.io import write_json

    config = load_adapt_config(args.config, regime=args.regime, seed=args.seed, blocks=args.blocks)
    result = run_adapt(config, args.data, progress=not args.quiet, device=args.device)
    out = Path(args.out or f"cogflex-adapt-{config.name}-{config.regime}")
    summary = result.summary()
    write_json(out / "summary.json", summary)
    plot_accuracy(result, out / "accuracy.png")
    plot_gates(result, out / "gates.png")
    steps = ", ".join("-" if s is None else str(s) for s in summary["steps_to_criterion"])
    sel = ", ".join(f"{k} {v:.3f}" for k, v in summary["gate_selectivity"].items())
    print(f"{config.name} ({config.regime}, seed {config.seed}): {config.curriculum.blocks} blocks x "
          f"{config.curriculum.block_steps} steps, {result.wall_seconds:.1f} s")
    print(f"  steps to criterion per switch: {steps}")
    print(f"  gate selectivity: {sel}; block-end accuracy {summary['block_end_accuracy'][-1][-1]:.3f}")
    print(f"  wrote {out / 'summary.json'}, {out / 'accuracy.png'}, {out / 'gates.png'}")
    return 0


def add_adapt_commands(sub) -> None:
    """Register ``adapt``."""
    p = sub.add_parser(
        "adapt", help="train an NTA adapter on a backbone through a task-switching curriculum (MNIST)",
        description="Put an NTA adapter (P gated linear paths with fast, bounded gates) on a backbone and train it "
        "on blocks of alternating tasks (default preset mnist-switch: digit label <-> remapped label y//2 + "
        "5*(y%2), small CNN with a 10-unit bottleneck pretrained on digits and frozen). Writes DIR/summary.json "
        "(accuracy_after_switch, steps_to_criterion, gate_selectivity, return_drop, wall_seconds, the config) "
        "and DIR/accuracy.png, DIR/gates.png. Presets: `cogflex presets --kind adapt`.")
    p.add_argument("config", metavar="PRESET|FILE.toml", help="adapter experiment preset (mnist-switch) or TOML file")
    p.add_argument("--data", required=True, metavar="DIR",
                   help="directory with the IDX files (e.g. t10k-images-idx3-ubyte.gz; torchvision's MNIST/raw "
                        "layout accepted); nothing is downloaded")
    p.add_argument("--regime", help="regime defined in the config's [regimes] (flexible, forgetful)")
    p.add_argument("--blocks", type=int, help="number of blocks (default: the config's)")
    p.add_argument("--seed", type=int, help="seed of the split, initialisation and batches (default: the config's)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto = CUDA when available (default: auto)")
    p.add_argument("--out", metavar="DIR", help="output directory (default ./cogflex-adapt-<name>-<regime>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_adapt)
