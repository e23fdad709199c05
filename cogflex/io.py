"""Writing results so that nothing half-written is ever left behind."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_json", "json_ready", "save_figure", "check_output_dir"]


def check_output_dir(path: str | Path, field: str = "--out") -> Path:
    """``path`` as an output folder that can be made: refuse a file there, or a file in its way, in one line."""
    from cogflex.errors import ConfigError

    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            what = "is a file" if p == path else f"cannot be made: {p} is a file"
            raise ConfigError(field, f"{path} {what}; give a folder for the outputs")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    If the body raises (or the process is interrupted), the temporary file is
    removed and ``path`` keeps its previous content, if any.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes owner-only files; results are for sharing
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_ready(value: Any) -> Any:
    """Convert numpy scalars/arrays and NaN (to ``null``) for strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if hasattr(value, "tolist"):
        return json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented, strict JSON (NaN becomes null), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n")


def save_figure(fig, path: str | Path | None):
    """Save a matplotlib figure as PNG, atomically (nothing when ``path`` is None); return the figure."""
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    return fig
