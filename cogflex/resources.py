"""Where cogflex finds its files: the TOML presets and the bundled data.

This module is the one place that knows where they live. A preset is a TOML
file ``<kind>/<name>.toml`` of one of the :data:`PRESET_KINDS`; a name is
looked up along a search path, first match wins:

1. the folders in ``$COGFLEX_MODELS`` (one, or several separated by ``:``),
   each holding the kind subfolders (``$COGFLEX_MODELS/fitting/mine.toml``);
2. the user's folder ``~/.config/cogflex/models/<kind>/``
   (``$XDG_CONFIG_HOME/cogflex/models/<kind>/`` where that is set);
3. the presets bundled with cogflex.

A file of a user folder therefore adds a preset, or replaces a bundled one of
the same name. The bundled presets and data are the repository's ``models/``
and ``data/`` folders: a wheel carries copies of them inside the package
(``cogflex/_bundled/``, see ``setup.py``), found with :mod:`importlib.resources`;
a source checkout or an editable install reads the repository folders
themselves.

Functions return :class:`pathlib.Path` objects (cogflex is installed as
files on disk, as pip installs wheels), since a preset's relative paths, e.g.
a pipeline's data file, are resolved against its folder.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from cogflex.errors import CogflexError, ConfigError

__all__ = ["PRESET_KINDS", "MODELS_ENV", "user_models_dirs", "bundled_models_dir", "bundled_data_dir",
           "preset_dirs", "preset_names", "preset_path", "preset_kinds", "data_path"]

#: The kinds of preset, each a folder of TOML files: network simulations (``cogflex simulate``/``sweep``),
#: cognitive models to fit (``cogflex fit --model``), pipelines (``cogflex run``), adapter experiments
#: (``cogflex adapt``) and the settings of the reproduced experiments (``cogflex reproduce``).
PRESET_KINDS = ("simulation", "fitting", "pipelines", "adapt", "reproduce")
#: Environment variable naming user preset folders, searched before everything else.
MODELS_ENV = "COGFLEX_MODELS"


def user_models_dirs() -> list[Path]:
    """The user's preset folders, in search order: ``$COGFLEX_MODELS``, then ``~/.config/cogflex/models``.

    Each holds kind subfolders (``simulation/``, ``fitting/``, ...). Folders
    that do not exist are listed too (the lookups skip them).
    """
    folders = [Path(p).expanduser() for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
    config = os.environ.get("XDG_CONFIG_HOME")
    if not config:
        try:
            config = str(Path.home() / ".config")
        except RuntimeError:  # no home directory to be found
            return folders
    return [*folders, Path(config) / "cogflex" / "models"]


def _bundled(folder: str) -> Path:
    """The bundled copy of the repository folder ``folder`` (``models`` or ``data``)."""
    packaged = resources.files("cogflex").joinpath("_bundled", folder)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[1]  # a source checkout or an editable install
    if (checkout / "pyproject.toml").is_file() and (checkout / folder).is_dir():
        return checkout / folder
    raise CogflexError(f"cogflex is installed without its bundled {folder!r} folder (looked in {packaged} and "
                       f"{checkout / folder}); reinstall it from a wheel or a full source checkout")


def bundled_models_dir() -> Path:
    """The folder of the bundled presets, with one subfolder per kind."""
    return _bundled("models")


def bundled_data_dir() -> Path:
    """The folder of the bundled data (``synthetic/``, ``reference/``)."""
    return _bundled("data")


def _check_kind(kind: str) -> None:
    if kind not in PRESET_KINDS:
        raise ConfigError("kind", f"unknown preset kind {kind!r} (kinds: {', '.join(PRESET_KINDS)})")


def preset_dirs(kind: str) -> list[Path]:
    """The search path of ``kind``'s presets: the user folders, then the bundled one (see the module docstring)."""
    _check_kind(kind)
    return [folder / kind for folder in [*user_models_dirs(), bundled_models_dir()]]


def preset_names(kind: str) -> list[str]:
    """Names of the presets of ``kind`` along its search path, sorted (each name once)."""
    names = {path.stem for folder in preset_dirs(kind) if folder.is_dir() for path in folder.glob("*.toml")
             if path.is_file()}
    return sorted(names)


def preset_path(kind: str, name: str) -> Path:
    """The file of preset ``name`` of ``kind``: the first match along :func:`preset_dirs`.

    Raises
    ------
    ConfigError
        No such preset; the message lists the available names of ``kind``.
    """
    if name in preset_names(kind):  # a plain name: never a path that reaches out of the folders
        for folder in preset_dirs(kind):
            path = folder / f"{name}.toml"
            if path.is_file():
                return path
    available = ", ".join(preset_names(kind)) or "none"
    raise ConfigError("preset", f"unknown preset {name!r} (available {kind} presets: {available})")


def preset_kinds(name: str) -> list[str]:
    """The kinds that have a preset called ``name`` (in :data:`PRESET_KINDS` order)."""
    return [kind for kind in PRESET_KINDS if name in preset_names(kind)]


def data_path(relative: str) -> Path:
    """A bundled data file, e.g. ``"synthetic/flexible_players.csv.gz"`` or ``"reference/sandbrink2024.json"``.

    Raises
    ------
    ConfigError
        No such bundled file.
    """
    root = bundled_data_dir()
    path = (root / relative).resolve()
    if not (path.is_relative_to(root.resolve()) and path.is_file()):
        bundled = ", ".join(sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()))
        raise ConfigError("data", f"no bundled data file {relative!r} (bundled: {bundled})")
    return path
