"""Helpers shared by the analysis scripts (reference numbers, output folder)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def reference() -> dict:
    """The reference numbers of Sandbrink et al. (2024) bundled in data/reference/."""
    return json.loads((ROOT / "data" / "reference" / "sandbrink2024.json").read_text())


def out_dir(default: str) -> Path:
    """Output folder ``analyses/out/<default>`` (created)."""
    path = ROOT / "analyses" / "out" / default
    path.mkdir(parents=True, exist_ok=True)
    return path
