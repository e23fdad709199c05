"""The ``cogflex`` command line: a thin shell over the public functions.

Every subcommand has ``--help``. Bad input (unknown preset, invalid config
value, unreadable file, an option argparse rejects) prints one line naming the
problem and exits with status 2; a run that diverges exits with status 3; Ctrl-C exits with 130 and
leaves no half-written output.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import re
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from cogflex.errors import SHOWN_CHARS, CogflexError, DivergenceError, InterruptedFit, one_line, shorten
from cogflex.executors import add_backend_options
from cogflex.resources import PRESET_KINDS

__all__ = ["main"]


class _UsageError(Exception):
    """A command line argparse rejects; :func:`main` prints it as one line and exits with status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (the command, the problem, where to look).

    argparse prints the whole usage block before the error; a one-line error is what the rest of cogflex
    gives for bad input (long values cut, control characters typed in an argument written as escapes).
    Subcommand parsers are of this class too (argparse makes them like their parent).
    """

    argv: Sequence[str] = ()

    def error(self, message: str):  # noqa: D102 - argparse's hook
        hint = _swallowed_file(message, list(_Parser.argv))
        raise _UsageError(one_line(f"cogflex: error: {_short_values(message)}{hint} (see {self.prog} --help)"))


#: A word of an argparse message long enough to be cut (a value typed by the user; paths mostly fit).
_LONG_WORD = re.compile(rf"\S{{{2 * SHOWN_CHARS + 1},}}")


def _short_values(message: str) -> str:
    """The ``message`` of argparse with every very long value it quotes cut (:func:`cogflex.errors.shorten`)."""
    return _LONG_WORD.sub(lambda match: shorten(match.group(), 2 * SHOWN_CHARS), message)


#: Options that take several values, and so can swallow a positional FILE that follows them.
_LIST_OPTIONS = ("--participants",)


def _swallowed_file(message: str, argv: list[str]) -> str:
    """A hint when a list option took the trial file as one of its values (``--participants 1 2 data.csv``)."""
    if "required" not in message:
        return ""
    for i, token in enumerate(argv):
        if token in _LIST_OPTIONS:
            for value in argv[i + 1:]:
                if value.startswith("-"):
                    break
                if _is_file(value):
                    return (f"; {token} took {value!r} as one of its values: put FILE before {token}, or end "
                            f"the list with --")
    return ""


def _is_file(value: str) -> bool:
    """Whether ``value`` names a file (``False`` for what cannot be a path: too long, a NUL byte, ...)."""
    try:
        return Path(value).is_file()
    except (OSError, ValueError):
        return False


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="number of seeds (networks per setting); default: the preset's")
    parser.add_argument("--mode", choices=("sampled", "expected"),
                        help="sampled: fresh Gaussian batch each step (the paper); expected: exact expected gradient")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto = CUDA when available (default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _load(args: argparse.Namespace):
    from cogflex.nta.config import load_config

    config = load_config(args.config)
    if args.seeds is not None:
        config = dataclasses.replace(config, seeds=args.seeds)
    if args.mode is not None:
        config = config.with_learning(mode=args.mode)
    return config


def _cmd_simulate(args: argparse.Namespace) -> int:
    from cogflex.errors import ConfigError
    from cogflex.io import check_output_dir
    from cogflex.nta import plots, simulate

    config = _load(args)
    if config.sweep.axes:
        raise ConfigError("sweep", f"{config.name} defines a [sweep] grid; run it with `cogflex sweep {args.config}`")
    check_output_dir(args.out or f"cogflex-{config.name}")
    result = simulate(config, device=args.device, progress=not args.quiet)
    out = Path(args.out or f"cogflex-{config.name}")
    paths = result.save(out)
    plots.plot_simulation(result, out / "simulation.png")
    summary = result.summary()
    ttc = ", ".join("-" if v is None else f"{v:.3f}" for v in summary["time_to_criterion"][:8])
    print(f"{config.name}: {config.seeds} seeds, {config.n_steps} steps, {config.learning.mode} mode, "
          f"{result.wall_seconds:.2f} s")
    print(f"  time to criterion (tau_W), switches 1-8: {ttc}")
    print(f"  total alignment {summary['total_alignment']:.4f}, "
          f"final gates {', '.join(f'{g:.3f}' for g in summary['final_gates'])}")
    print(f"  wrote {paths['summary']}, {paths['trajectories']}, {out / 'simulation.png'}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from cogflex.errors import ConfigError
    from cogflex.executors import make_executor
    from cogflex.io import atomic_path
    from cogflex.nta import plots
    from cogflex.nta.simulation import resolve_device
    from cogflex.nta.sweeps import run_sweep

    config = _load(args)
    if not config.sweep.axes:
        raise ConfigError("sweep", f"{args.config} has no [sweep] table listing the values to sweep")
    device = str(resolve_device(args.device))
    out = Path(args.out or f"cogflex-{config.name}")
    executor = make_executor(args.backend, workers=args.jobs, address=args.address)
    try:
        result = run_sweep(config, out=out, executor=executor, device=device)
    finally:
        executor.close()
    result.save(out)
    table = result.table()
    with atomic_path(out / "results.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    figure = None
    if len(config.sweep.axes) == 2:
        figure = out / "regime_map.png"
        plots.plot_regime_map(result, figure)
    print(f"{config.name}: {len(table)} settings x {config.seeds} seeds, {config.n_steps} steps, "
          f"{result.wall_seconds:.2f} s")
    shown = [*config.sweep.names, "total_alignment", "time_to_criterion"]
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"  wrote {out / 'results.csv'}" + (f", {figure}" if figure else ""))
    return 0


#: What uses each kind of preset, for the listing of ``cogflex presets``.
_PRESET_USES = {"simulation": "cogflex simulate NAME, cogflex sweep NAME", "fitting": "cogflex fit --model NAME",
                "pipelines": "cogflex run NAME", "adapt": "cogflex adapt NAME --data DIR",
                "reproduce": "settings of cogflex reproduce"}


def _cmd_presets(args: argparse.Namespace) -> int:
    from cogflex import resources
    from cogflex.errors import ConfigError
    from cogflex.typed_config import read_toml

    if args.name:
        kinds = [args.kind] if args.kind else resources.preset_kinds(args.name)
        if not kinds:
            available = "; ".join(f"{kind}: {', '.join(resources.preset_names(kind)) or 'none'}"
                                  for kind in resources.PRESET_KINDS)
            raise ConfigError("preset", f"unknown preset {args.name!r} (available: {available})")
        if len(kinds) > 1:
            raise ConfigError("preset", f"{args.name!r} is a preset of several kinds ({', '.join(kinds)}); "
                                        "choose one with --kind")
        text = resources.preset_path(kinds[0], args.name).read_text()
        print(text, end="" if text.endswith("\n") else "\n")
        return 0
    bundled = resources.bundled_models_dir()
    kinds = [args.kind] if args.kind else resources.PRESET_KINDS
    names = {kind: resources.preset_names(kind) for kind in kinds}
    width = max((len(name) for group in names.values() for name in group), default=0)
    for kind in kinds:
        print(f"{kind} ({_PRESET_USES[kind]}):")
        for name in names[kind]:
            path = resources.preset_path(kind, name)
            raw = read_toml(path)
            use = ("sweep" if "sweep" in raw else "simulate").ljust(9) if kind == "simulation" else ""
            origin = "" if path.parent.parent == bundled else f"  [{path}]"
            print(f"  {name:{width}s}  {use}{raw.get('description', '')}{origin}")
    folders = ", ".join(f"{folder}/<kind>" for folder in resources.user_models_dirs())
    print(f"\nSearch path, first match wins: {folders}, then the bundled presets ({bundled}/<kind>).\n"
          "Print one as TOML to copy and edit: cogflex presets NAME > mine.toml")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if not args.networks:
        from cogflex.pipeline_cli import run_demo

        run_demo(args.out, quick=args.quick, progress=not args.quiet)
        return 0
    from cogflex.nta import load_config, plots, simulate

    out = Path(args.out)
    results = {}
    for name in ("fig2-flexible", "fig2-forgetful"):
        config = load_config(name)
        if args.quick:
            config = dataclasses.replace(config, seeds=3)
        result = simulate(config, progress=not args.quiet)
        result.save(out / name)
        results[name] = result
        summary = result.summary()
        late = [v for v in summary["time_to_criterion"][15:20] if v is not None]
        late_text = f"{sum(late) / len(late):.3f}" if late else "never"
        print(f"{name:15s} total alignment {summary['total_alignment']:.3f}; time to criterion "
              f"switch 1 {summary['time_to_criterion'][0] or float('nan'):.3f} -> switches 16-20 {late_text} "
              f"(units of tau_W; {result.wall_seconds:.1f} s)")
    figure = out / "flexible_vs_forgetful.png"
    plots.plot_comparison(results, figure)
    print(f"wrote {figure} and per-run outputs under {out}/")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    import torch

    from cogflex.reproduce import FIGURE_KEYS, figure, reproduce

    if args.list:
        for key in FIGURE_KEYS:
            print(f"{key:<11} {figure(key).title}")
        return 0
    torch.set_num_threads(1)  # the steps are small: one thread is fastest and leaves the other core free
    numbers = reproduce(args.figures, out=args.out, scale="quick" if args.quick else "paper")
    checks = sum(f["checks"] for f in numbers["figures"].values())
    met = sum(f["checks_passed"] for f in numbers["figures"].values())
    print(f"{met}/{checks} checks met; wrote {args.out}/numbers.json, summary.md and the figures' PNGs "
          f"({numbers['seconds_this_run']:.0f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cogflex`` command."""
    parser = _Parser(
        prog="cogflex",
        description="Task-switching toolkit: simulate neural task abstraction networks "
        "(Sandbrink et al., NeurIPS 2024), load human task-switching data, fit the networks to it, compare the "
        "models in a report, and put NTA adapters on PyTorch networks.",
    )
    parser.add_argument("--version", action="version", version=f"cogflex {metadata.version('cogflex')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="simulate a preset or TOML config; write summary, trajectories, figure",
                       description="Train the networks of one config (all seeds batched) and write DIR/summary.json, "
                       "DIR/trajectories.nc (netCDF) and DIR/simulation.png.")
    p.add_argument("config", metavar="PRESET|FILE.toml",
                   help="simulation preset (see `cogflex presets --kind simulation`) or TOML file")
    _add_run_options(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: ./cogflex-<name>)")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("sweep", help="run a hyperparameter grid batched; write results.csv and a regime map",
                       description="Run every point of the config's [sweep] grid (x seeds) and write "
                       "DIR/results.csv (one row per grid point), DIR/summary.json, DIR/trajectories.nc and, for "
                       "two swept parameters, DIR/regime_map.png. The grid runs in units, one per value of the "
                       "first swept parameter (each a batch of all its settings x seeds); finished units are kept "
                       "in DIR/.units/sweep/ and reused when the command is run again after an interruption "
                       "(a changed setting recomputes exactly the units it affects).")
    p.add_argument("config", metavar="PRESET|GRID.toml", help="preset name or TOML file with a [sweep] table")
    _add_run_options(p)
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="units in parallel processes (default 1; with --backend ray and no --address: the CPUs "
                   "of the local Ray instance)")
    add_backend_options(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: ./cogflex-<name>)")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("presets", help="list the presets of every kind, or print one as TOML to copy",
                       description="Without NAME, list the presets of every kind (simulation, fitting, pipelines, "
                       "adapt, reproduce) with the command that uses them; with NAME, print that preset's TOML file "
                       "(copy it, edit it, and pass the file to the command). Presets are looked up in "
                       "$COGFLEX_MODELS/<kind>/ (folders separated by ':'), then ~/.config/cogflex/models/<kind>/ "
                       "($XDG_CONFIG_HOME/cogflex/models/<kind>/), then among the bundled presets; the first match "
                       "wins, so a file of a user folder adds a preset or replaces a bundled one.")
    p.add_argument("name", nargs="?", metavar="NAME", help="preset to print (default: list them all)")
    p.add_argument("--kind", choices=PRESET_KINDS, metavar="KIND",
                   help=f"only this kind, one of {', '.join(PRESET_KINDS)} (to list it, or when NAME is a preset "
                   "of more than one kind)")
    p.set_defaults(func=_cmd_presets)

    p = sub.add_parser("demo", help="the main demo: fit, compare and report on the bundled synthetic players",
                       description="Run the whole pipeline (the `demo` preset: `cogflex presets demo`) on the "
                       "bundled synthetic dataset (synthetic/flexible_players.csv.gz): fit flexible, forgetful "
                       "and descriptive models to 3 simulated players, compare them (PSIS-LOO, stacking), run "
                       "posterior predictive checks and write DIR/report.html (a few minutes). With --networks: "
                       "simulate the fig2-flexible and fig2-forgetful networks instead and write a comparison figure.")
    p.add_argument("--out", metavar="DIR", default="cogflex-demo", help="output directory (default: ./cogflex-demo)")
    p.add_argument("--quick", action="store_true",
                   help="shorter chains (2 x 200 draws) and 10 replications; with --networks: 3 seeds instead of 10")
    p.add_argument("--networks", action="store_true",
                   help="the network-simulation demo (Fig. 2 flexible vs forgetful) instead of the pipeline")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("reproduce", help="reproduce the paper's figures: PNGs, numbers.json and summary.md",
                       description="Run the experiments of Sandbrink et al. (2024) with the bundled presets and write "
                       "one PNG per figure panel group, DIR/numbers.json (each key quantity with the paper's / "
                       "reference value and whether it is met) and DIR/summary.md. Figures: fig2 (flexible vs "
                       "forgetful), fig3 (task and subtask composition), fig4 (mechanism: two-variable reduction, "
                       "block length), fig5 (regime maps), fig6 (fully connected network), fig8 (switch curves), "
                       "correlated (correlated teachers). All of them take about a minute on 2 CPU cores; "
                       "--quick runs the same code at reduced size (fewer seeds, expected gradient, shorter runs) "
                       "in about 15 s, numbers not comparable with the paper. See docs/reproduce.md.")
    p.add_argument("figures", nargs="*", metavar="FIG", help="figures to run (default: all)")
    p.add_argument("--out", metavar="DIR", default="cogflex-reproduce",
                   help="output directory (default: ./cogflex-reproduce); figures already in its numbers.json "
                   "at the same scale are kept")
    p.add_argument("--quick", action="store_true", help="reduced settings (CI): fewer seeds, expected gradient")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    p.set_defaults(func=_cmd_reproduce)

    from cogflex.data.cli import add_data_commands

    add_data_commands(sub)
    from cogflex.fit.cli import add_fit_commands

    add_fit_commands(sub)
    from cogflex.pipeline_cli import add_pipeline_commands

    add_pipeline_commands(sub)
    from cogflex.adapt.cli import add_adapt_commands

    add_adapt_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cogflex`` console script; returns the exit status."""
    parser = build_parser()
    _Parser.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except DivergenceError as exc:
        print(f"cogflex: error: {exc}", file=sys.stderr)
        return 3
    except InterruptedFit as exc:
        print(f"cogflex: {exc}", file=sys.stderr)
        return 130
    except CogflexError as exc:
        print(f"cogflex: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        # a path given on the command line or in a config that no file system takes (the one bad input the
        # commands do not check one by one)
        print(one_line(f"cogflex: error: {shorten(exc.filename or '')}: file name too long"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cogflex: interrupted; no partial output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
