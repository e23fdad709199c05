"""``cogflex data check`` and ``cogflex data summarize``: the data layer's command line."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_data_commands"]


def _loader_options(p: argparse.ArgumentParser, *, data_option: str | None = None) -> None:
    """Options that read a trial file (a positional FILE, or the option ``data_option`` when given)."""
    if data_option:
        p.add_argument(data_option, dest="file", metavar="FILE",
                       help="trial file the models were fitted to (default: the fits' own data file)")
    else:
        p.add_argument("file", metavar="FILE", help="trial file (CSV, plain or .gz)")
    p.add_argument("--format", choices=("ebb-and-flow", "csv"), default="ebb-and-flow",
                   help="ebb-and-flow: Lumosity export (default); csv: any long-format CSV with --map")
    p.add_argument("--map", action="append", default=[], metavar="NAME=COLUMN",
                   help="map a schema column to a file column, e.g. --map participant=subject --map rt=RT "
                        "(repeatable; required: participant, task, correct, rt)")
    p.add_argument("--mapping", metavar="FILE.toml", help="the same mapping from a TOML file ([map], [recode], "
                   "rt_unit, rt_missing, encoding, delimiter, decimal); command-line values override it")
    p.add_argument("--recode", action="append", default=[], metavar="NAME=FROM:TO,...",
                   help="recode values, e.g. --recode correct=1:true,0:false --recode task=c:colour,s:shape")
    p.add_argument("--rt-unit", choices=("ms", "s"), help="unit of the RT column (csv; default ms)")
    p.add_argument("--rt-missing", action="append", metavar="VALUE",
                   help="an RT value that means 'no response', e.g. -1 (repeatable)")
    p.add_argument("--encoding", help="text encoding (default utf-8)")
    p.add_argument("--delimiter", help="field delimiter (csv; default: detected)")
    p.add_argument("--decimal", choices=(".", ","),
                   help="decimal mark of the numbers (csv; default '.'): --decimal , reads 0,734 as 0.734 "
                        "(files saved with a German or French locale, usually ';'-delimited)")
    p.add_argument("--correctness", choices=("response", "column"), default="response",
                   help="what makes a trial correct, for cleaning, summaries, fits and checks alike: response = "
                        "response == correct response where the file has both (default; the 'correct' column "
                        "elsewhere), column = the file's 'correct' column")


def _cleaning_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cleaning (RT analyses; defaults: the usual task-switching rules)")
    g.add_argument("--rt-min", type=float, default=0.15, metavar="S", help="lower RT bound in s (default 0.15)")
    g.add_argument("--rt-max", type=float, default=3.0, metavar="S", help="upper RT bound in s (default 3)")
    g.add_argument("--keep-first-trial", action="store_true", help="keep each session's first trial")
    g.add_argument("--keep-post-error", action="store_true", help="keep trials that follow an error")
    g.add_argument("--keep-errors", action="store_true", help="keep error trials in RT statistics")
    g.add_argument("--keep-practice", action="store_true", help="keep practice trials")
    g.add_argument("--mad", type=float, metavar="K", help="drop RTs more than K MADs from each participant's median")


def _load(args):
    from cogflex.data import CsvMapping, load_trials
    from cogflex.errors import ConfigError

    correctness = getattr(args, "correctness", None) or "response"
    if args.format != "csv":
        given = [flag for flag, value in (("--map", args.map), ("--mapping", args.mapping), ("--recode", args.recode),
                                          ("--rt-unit", args.rt_unit), ("--rt-missing", args.rt_missing),
                                          ("--delimiter", args.delimiter), ("--decimal", args.decimal)) if value]
        if given:
            raise ConfigError("format", f"{', '.join(given)} only appl{'y' if len(given) > 1 else 'ies'} to "
                                        "--format csv (the ebb-and-flow format has fixed fields)")
        return load_trials(args.file, args.format, encoding=args.encoding or "utf-8", correctness=correctness)
    mapping = CsvMapping.from_args(args.map, args.recode, toml=args.mapping, rt_unit=args.rt_unit,
                                   rt_missing=args.rt_missing, encoding=args.encoding, delimiter=args.delimiter,
                                   decimal=args.decimal)
    return load_trials(args.file, args.format, mapping=mapping, correctness=correctness)


def _rules(args):
    from cogflex.data import CleaningRules

    return CleaningRules(practice=not args.keep_practice, first_trial=not args.keep_first_trial,
                         rt_min=args.rt_min, rt_max=args.rt_max, post_error=not args.keep_post_error,
                         errors=not args.keep_errors, mad=args.mad)


def _overview(data, rules) -> dict:
    """The stable keys of ``data check --json``."""
    from cogflex.data import clean, participant_warnings

    trials = data.trials
    cleaned = clean(data, rules)
    rt = cleaned.trials
    switch, repeat = rt.loc[rt["switch"].to_numpy(bool), "rt"], rt.loc[~rt["switch"].to_numpy(bool), "rt"]
    cost = (switch.median() - repeat.median()) * 1000 if len(switch) and len(repeat) else None
    not_first = trials["prev_correct"].notna()
    log = cleaned.cleaning
    return {
        "file": data.source,
        "format": data.format,
        "n_trials": data.n_trials,
        "n_participants": len(data.participants),
        "n_sessions": data.n_sessions,
        "tasks": data.tasks,
        "switch_rate": float(trials.loc[not_first, "switch"].astype(float).mean()),
        "accuracy": float(trials["correct"].astype(float).mean()),
        "median_rt_s": float(trials["rt"].median()),
        "cleaning": {rule: int(log.loc["all", rule]) for rule in log.columns if rule not in ("total", "kept")},
        "cleaning_kept": int(log.loc["all", "kept"]),
        "cleaning_per_participant": {str(p): {k: int(v) for k, v in row.items()}
                                     for p, row in log.drop(index="all").iterrows()},
        "switch_cost_ms": None if cost is None else float(cost),
        "notes": list(data.notes),
        "correctness": {**data.correctness, "line": data.correctness_line()},
        "warnings": participant_warnings(data, cleaned),
        "data_sha256": data.digest(),
    }


def _print_overview(info: dict, log) -> None:
    print(f"{info['file']}: {info['n_trials']:,} trials, {info['n_participants']} participants, "
          f"{info['n_sessions']:,} sessions; tasks {', '.join(info['tasks'])}")
    print(f"  switch rate {info['switch_rate']:.3f} (of non-first trials), accuracy {info['accuracy']:.3f}, "
          f"median RT {info['median_rt_s']:.3f} s")
    cost = info["switch_cost_ms"]
    print(f"  switch cost (cleaned, median switch - median repeat RT): "
          f"{'n/a' if cost is None else f'{cost:.0f} ms'}")
    print(f"  {info['correctness']['line']}")
    print("  cleaning (trials removed by each rule, in order):")
    print("    " + log.to_string().replace("\n", "\n    "))
    for note in info["notes"]:
        print(f"  note: {note}")
    for warning in info["warnings"]:
        print(f"  WARNING: {warning}")


def _cmd_check(args) -> int:
    from cogflex.data import clean
    from cogflex.io import write_json

    data = _load(args)
    rules = _rules(args)
    info = _overview(data, rules)
    _print_overview(info, clean(data, rules).cleaning)
    if args.json:
        write_json(args.json, info)
        print(f"  wrote {args.json}")
    return 0


def _cmd_summarize(args) -> int:
    from cogflex.data import natural_sorted, plots, summarize
    from cogflex.errors import ConfigError, shown
    from cogflex.io import atomic_path, write_json

    data = _load(args)
    rules = _rules(args)
    try:
        bins = int(args.practice_bins)
    except ValueError:
        try:
            bins = [float(v) for v in args.practice_bins.split(",")]
        except ValueError:
            raise ConfigError("practice-bins", f"expected a number of bins or comma-separated edges, "
                                               f"got {shown(args.practice_bins)}") from None
    summary = summarize(data, rules, bins=bins, max_run_position=args.max_run_position)
    out = Path(args.out)
    tables = {"by_trial_type": summary.by_trial_type, "switch_cost": summary.switch_cost,
              "run_position": summary.run_position, "congruency": summary.congruency,
              "rt_quantiles": summary.rt_quantiles, "switch_cost_by_condition": summary.by_condition,
              "summary_tidy": summary.tidy(),
              "cleaning": summary.cleaning.reset_index()}
    for name, table in tables.items():
        with atomic_path(out / f"{name}.csv") as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
    plots.plot_switch_cost(summary, out / "switch_cost.png")
    plots.plot_run_position(summary, out / "run_position.png")
    plots.plot_accuracy(summary, out / "accuracy.png")
    info = _overview(data, rules)
    write_json(out / "summary.json", info)
    _print_overview(info, summary.cleaning)
    cost = summary.switch_cost.pivot(index="practice_bin", columns="participant", values="switch_cost_ms")
    cost = cost.reindex(index=natural_sorted(cost.index, last=["all"]),
                        columns=natural_sorted(cost.columns, last=["all"]))  # participants 1, 2, 10, then all
    print("  switch cost by practice bin (ms):")
    print("    " + cost.round(0).to_string().replace("\n", "\n    "))
    print(f"  wrote {', '.join(f'{n}.csv' for n in tables)}, switch_cost.png, run_position.png, accuracy.png "
          f"and summary.json to {out}/")
    return 0


def add_data_commands(sub) -> None:
    """Register ``data check`` and ``data summarize`` on the main parser's subcommands."""
    data = sub.add_parser("data", help="validate, clean and summarise human task-switching data",
                          description="Load trial files into cogflex's trial schema (Lumosity Ebb and Flow "
                          "exports or any long-format CSV with a column mapping), validate them, apply the "
                          "cleaning rules and report descriptive statistics.")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    p = commands.add_parser("check", help="validate a file and print a short summary (exit 2 if invalid)",
                            description="Validate FILE against the trial schema and print counts, switch rate, "
                            "accuracy, the cleaning log and the switch cost. Invalid input exits with status 2 "
                            "and a one-line message naming the file, column and first offending lines.")
    _loader_options(p)
    _cleaning_options(p)
    p.add_argument("--json", metavar="OUT.json", help="also write the summary as JSON (stable keys)")
    p.set_defaults(func=_cmd_check)
    p = commands.add_parser("summarize", help="descriptive tables (CSV) and plots (PNG) of a file",
                            description="Switch vs repeat RT and accuracy by practice bin, switch cost, RT by "
                            "run position, congruency effect (per participant and pooled) as CSV tables, and "
                            "PNG plots, written to DIR.")
    _loader_options(p)
    _cleaning_options(p)
    p.add_argument("--out", metavar="DIR", default="cogflex-data-summary", help="output directory")
    p.add_argument("--practice-bins", default="3", metavar="N|E1,E2,...",
                   help="number of practice bins (equal numbers of sessions) or left-closed bin edges, "
                        "e.g. 150,250,350,501 (default 3)")
    p.add_argument("--max-run-position", type=int, default=6, metavar="K", help="pool run positions >= K (default 6)")
    p.set_defaults(func=_cmd_summarize)
