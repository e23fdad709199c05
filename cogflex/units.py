"""Finished job units on disk, so that a killed run resumes where it stopped.

A long job (a fit over many participants, a sweep over a grid) is split into
units. A :class:`UnitStore` keeps each finished unit's result in its own file
(written to a temporary name, then renamed: a file that exists is complete)
together with the unit's *key*, the hash of everything its result depends on
(model/config, data digest, seeds, sampler settings). ``manifest.json`` lists
the units with their key and the settings behind it, so a rerun can say
exactly which units a changed config or data invalidates.

Unit files are data, never code: netCDF files (a DataTree) whose nodes hold the
result's xarray Datasets, whose root holds its numpy arrays as variables, and
whose root attributes hold its key and the rest of the result as JSON. Loading
one cannot run anything, so a results folder that others can write into (a group
directory, a folder sent by a colleague) is safe to resume from; a file that is
not such a netCDF file (e.g. a planted pickle) is unreadable, reported and
recomputed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cogflex.io import atomic_path, json_ready, write_json

__all__ = ["UnitStore", "unit_key"]

#: Layout version of the unit files; a change invalidates every stored unit.
UNIT_FORMAT = 3
#: Longest readable part of a unit file name (the rest of the name is in its hash and the manifest).
MAX_NAME = 100

#: Attribute holding a Dataset's (or variable's) own attributes as JSON (netCDF attributes are flat).
_ATTRS = "cogflex_attrs_json"


def _encode(ds):
    """``ds`` with its attributes and its variables' attributes moved into one JSON attribute each."""
    ds = ds.copy()
    for name in ds.variables:
        ds[name].attrs = {_ATTRS: json.dumps(json_ready(dict(ds[name].attrs)))}
    ds.attrs = {_ATTRS: json.dumps(json_ready(dict(ds.attrs)))}
    return ds


def _decode(ds):
    ds = ds.load()
    for name in ds.variables:
        ds[name].attrs = json.loads(ds[name].attrs.get(_ATTRS, "{}"))
    ds.attrs = json.loads(ds.attrs.get(_ATTRS, "{}"))
    return ds


def _write_unit(path: Path, key: str, result: Any) -> None:
    """``result`` (an xarray Dataset, or a dict of Datasets and JSON-able values) as a netCDF DataTree."""
    import numpy as np
    import xarray as xr

    if isinstance(result, xr.Dataset):
        nodes, rest, kind = {"result": result}, {}, "dataset"
    elif isinstance(result, dict):
        nodes = {k: v for k, v in result.items() if isinstance(v, xr.Dataset)}
        # numpy arrays (a fit's pointwise log-likelihood: millions of values) as variables of the root node,
        # never as JSON text
        arrays = {k: v for k, v in result.items() if isinstance(v, np.ndarray)}
        rest, kind = {k: v for k, v in result.items() if k not in nodes and k not in arrays}, "dict"
    else:
        raise TypeError(f"a unit result is a Dataset or a dict, not {type(result).__name__}")
    root = xr.Dataset({name: (tuple(f"{name}_{d}" for d in range(a.ndim)), a) for name, a in arrays.items()}
                      if kind == "dict" else {},
                      attrs={"key": key, "format": UNIT_FORMAT, "kind": kind, "json": json.dumps(json_ready(rest))})
    tree = xr.DataTree.from_dict({"/": root, **{f"/{k}": _encode(v) for k, v in nodes.items()}})
    tree.to_netcdf(path, engine="h5netcdf")


def _read_unit(path: Path) -> tuple[str, Any]:
    """``(key, result)`` of a unit file written by :func:`_write_unit` (raises on anything else)."""
    import xarray as xr

    with xr.open_datatree(path, engine="h5netcdf") as tree:
        attrs = tree.attrs
        if attrs.get("format") != UNIT_FORMAT or attrs.get("kind") not in ("dataset", "dict"):
            raise ValueError("not a cogflex unit file of this format")
        nodes = {name: _decode(child.to_dataset()) for name, child in tree.children.items()}
        if attrs["kind"] == "dataset":
            return str(attrs["key"]), nodes["result"]
        arrays = {name: var.values for name, var in tree.to_dataset().data_vars.items()}
        return str(attrs["key"]), {**json.loads(attrs["json"]), **nodes, **arrays}


def unit_key(settings: Mapping[str, Any]) -> str:
    """SHA-256 of ``settings`` as canonical JSON (what a unit's result depends on)."""
    text = json.dumps(json_ready({"format": UNIT_FORMAT, **settings}), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class UnitStore:
    """Finished units of one job in ``folder`` (created on the first save).

    Parameters
    ----------
    folder
        Where the unit files and ``manifest.json`` live.
    log
        Called with one line per reused, invalidated or damaged unit (default: stderr).
    """

    def __init__(self, folder: str | Path, *, log: Callable[[str], None] | None = None):
        self.folder = Path(folder)
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._manifest = self._read_manifest()

    def _read_manifest(self) -> dict[str, Any]:
        path = self.folder / "manifest.json"
        try:
            data = json.loads(path.read_text())
            return data if isinstance(data.get("units"), dict) else {"units": {}}
        except (OSError, ValueError, AttributeError):
            return {"units": {}}

    def _file(self, name: str) -> Path:
        # readable prefix, cut so that a hierarchical unit of many participants stays a valid file name (the
        # hash of the whole name keeps files apart)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:MAX_NAME]
        return self.folder / f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}.unit"

    def load(self, name: str, settings: Mapping[str, Any]) -> Any | None:
        """The stored result of unit ``name`` if it was computed with ``settings``, else ``None`` (and why, logged)."""
        path = self._file(name)
        if not path.exists():
            return None
        key = unit_key(settings)
        try:
            stored_key, result = _read_unit(path)
        except Exception:  # noqa: BLE001 - any damage (or a file that is not a unit) means: recompute
            self.log(f"{name}: stored result unreadable; recomputing")
            return None
        if stored_key != key:
            old = self._manifest["units"].get(name, {}).get("settings", {})
            changed = sorted(k for k in set(old) | set(settings)
                             if json_ready(old.get(k)) != json_ready(settings.get(k)))
            self.log(f"{name}: {', '.join(changed) or 'settings'} changed since it was computed; recomputing")
            return None
        return result

    def save(self, name: str, settings: Mapping[str, Any], result: Any, *, seconds: float | None = None) -> None:
        """Store the result of unit ``name`` atomically and record it in the manifest."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(name)
        with atomic_path(path) as tmp:
            _write_unit(tmp, unit_key(settings), result)
        self._manifest["units"][name] = {
            "file": path.name, "key": unit_key(settings), "settings": json_ready(dict(settings)),
            "seconds": seconds, "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_json(self.folder / "manifest.json", self._manifest)

    def clear_stale_parts(self) -> int:
        """Remove temporary files left by a killed writer; return how many."""
        if not self.folder.exists():
            return 0
        stale = list(self.folder.glob(".*.part"))
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)
