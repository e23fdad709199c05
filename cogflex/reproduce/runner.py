"""Run the reproduced figures and collect their numbers (``cogflex reproduce``).

:func:`reproduce` runs the figures asked for, one after another, writing each
figure's PNGs into the output folder and, after every figure, ``numbers.json``
(all quantities so far, with timings and versions) and ``summary.md`` (the
same as a table), atomically: an interrupted run keeps the figures finished
before it. Figures already in ``numbers.json`` from a run at the same scale
and not asked for again are kept.
"""

from __future__ import annotations

import importlib
import json
import platform
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cogflex.errors import ConfigError
from cogflex.io import atomic_path, write_json
from cogflex.reproduce.base import SCALES, Figure, Scale

__all__ = ["FIGURE_KEYS", "NUMBERS_FORMAT", "figure", "reproduce", "summary_markdown"]

#: The reproducible figures, in the order they run.
FIGURE_KEYS: tuple[str, ...] = ("fig2", "fig3", "fig4", "fig5", "fig6", "fig8", "correlated")
#: Version of the ``numbers.json`` layout.
NUMBERS_FORMAT = 1
PAPER = ("Sandbrink, Bauer, Proca, Saxe, Summerfield & Hummos (2024). Flexible task abstractions emerge in "
         "linear networks with fast and bounded units. NeurIPS.")


def figure(key: str) -> Figure:
    """The :class:`Figure` registered under ``key`` (one of :data:`FIGURE_KEYS`)."""
    if key not in FIGURE_KEYS:
        raise ConfigError("figure", f"unknown figure {key!r} (choose from {', '.join(FIGURE_KEYS)})")
    return importlib.import_module(f"cogflex.reproduce.{key}").FIGURE


def reproduce(keys: Sequence[str] | None = None, *, out: str | Path, scale: Scale = "paper",
              echo: bool = True) -> dict[str, Any]:
    """Run figures ``keys`` (default: all) at ``scale``; write PNGs, ``numbers.json`` and ``summary.md`` in ``out``.

    Returns the content of ``numbers.json``.
    """
    if scale not in SCALES:
        raise ConfigError("scale", f"must be one of {', '.join(SCALES)}, got {scale!r}")
    keys = list(dict.fromkeys(keys or FIGURE_KEYS))
    figures = [figure(k) for k in keys]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    numbers = _previous(out / "numbers.json", scale)
    numbers.update(format=NUMBERS_FORMAT, paper=PAPER, scale=scale, environment=_environment())
    started = time.perf_counter()
    for fig in figures:
        if echo:
            print(f"[{fig.key}] {fig.title} ...", flush=True)
        t0 = time.perf_counter()
        quantities = fig.run(scale, out)
        seconds = time.perf_counter() - t0
        checked = [q for q in quantities if q.passed is not None]
        numbers["figures"][fig.key] = {
            "title": fig.title,
            "seconds": round(seconds, 2),
            "checks_passed": sum(bool(q.passed) for q in checked),
            "checks": len(checked),
            "quantities": [q.to_dict() for q in quantities],
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        numbers["figures"] = {k: numbers["figures"][k] for k in FIGURE_KEYS if k in numbers["figures"]}
        numbers["seconds_this_run"] = round(time.perf_counter() - started, 2)
        write_json(out / "numbers.json", numbers)
        with atomic_path(out / "summary.md") as tmp:
            tmp.write_text(summary_markdown(numbers))
        if echo:
            failed = [q.name for q in checked if not q.passed]
            status = f"{numbers['figures'][fig.key]['checks_passed']}/{len(checked)} checks passed"
            print(f"[{fig.key}] {seconds:.1f} s, {status}" + (f"; not met: {', '.join(failed)}" if failed else ""),
                  flush=True)
    return numbers


def _previous(path: Path, scale: str) -> dict[str, Any]:
    """Earlier numbers at the same scale (kept for figures not rerun), else an empty record."""
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("format") == NUMBERS_FORMAT and old.get("scale") == scale and isinstance(old.get("figures"), dict):
            return {"figures": old["figures"]}
    return {"figures": {}}


def _environment() -> dict[str, str]:
    versions = {}
    for package in ("cogflex", "torch", "numpy", "xarray"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {**versions, "python": platform.python_version(), "machine": platform.machine()}


def _format(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, list):
        inner = ", ".join(_format(v) for v in value[:12])
        return f"[{inner}{', ...' if len(value) > 12 else ''}]"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def summary_markdown(numbers: dict[str, Any]) -> str:
    """``numbers.json`` as Markdown: per figure, a table quantity | reference | cogflex | met."""
    lines = [f"# Reproduction of {numbers.get('paper', '')}", "",
             f"Scale: {numbers.get('scale')}; versions: " +
             ", ".join(f"{k} {v}" for k, v in numbers.get("environment", {}).items()), ""]
    for fig in numbers.get("figures", {}).values():
        lines += [f"## {fig['title']}", "",
                  f"{fig['seconds']:.1f} s; {fig['checks_passed']}/{fig['checks']} checks met", "",
                  "| quantity | paper / reference | cogflex | met |", "|---|---|---|---|"]
        for q in fig["quantities"]:
            unit = f" {q['unit']}" if q.get("unit") else ""
            met = {True: "yes", False: "**no**", None: ""}[q.get("passed")]
            cells = [q["description"], q.get("reference") or "", f"{_format(q['value'])}{unit}", met]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
