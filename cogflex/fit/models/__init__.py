"""Cognitive models: one module per model family, one registry, and loading by name, TOML or Python file.

- :mod:`cogflex.fit.models.base`: the protocol (:class:`CognitiveModel`);
- :mod:`cogflex.fit.models.nta`: the NTA network, flexible and forgetful (:class:`NTAModel`);
- :mod:`cogflex.fit.models.descriptive`: the regression baseline (:class:`DescriptiveModel`);
- :mod:`cogflex.fit.models.external`: fits made outside cogflex, brought in for comparison.

A model is given to :func:`cogflex.fit` (and ``cogflex fit --model``) as

- a preset name: a TOML of ``models/fitting`` (``flexible``, ``forgetful``, ``descriptive``; see
  ``cogflex presets``);
- a TOML file with ``kind = "<family>"``: a new parameterisation of a registered family (a TOML may name a
  Python file that defines its family with ``source = "my_family.py"``, relative to the TOML);
- a Python file defining ``MODEL``, an instance of a :class:`CognitiveModel` subclass registered with
  :func:`register` (see ``docs/custom_models.md``);
- a model object.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from cogflex.errors import ConfigError
from cogflex.fit.models.base import CognitiveModel
from cogflex.typed_config import read_toml

__all__ = ["CognitiveModel", "register", "families", "family", "load_model", "model_from_dict", "builtin_models",
           "load_python_model"]

_FAMILIES: dict[str, type[CognitiveModel]] = {}


def register(cls: type[CognitiveModel]) -> type[CognitiveModel]:
    """Register a model family (a class decorator); its ``family`` is the ``kind`` of its TOML files."""
    if not (isinstance(cls, type) and issubclass(cls, CognitiveModel)) or not cls.family:
        raise TypeError("register() takes a CognitiveModel subclass with a non-empty 'family'")
    known = _FAMILIES.get(cls.family)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ConfigError("kind", f"model family {cls.family!r} is already registered by {known.__module__}."
                                  f"{known.__qualname__}")
    _FAMILIES[cls.family] = cls
    return cls


def families() -> dict[str, type[CognitiveModel]]:
    """Registered model families, by name."""
    return dict(_FAMILIES)


def family(name: str) -> type[CognitiveModel]:
    """The class of a registered model family."""
    if name not in _FAMILIES:
        raise ConfigError("kind", f"unknown model family {name!r} (registered: {', '.join(sorted(_FAMILIES))}; "
                                  "a family defined in your own Python file is registered when that file is loaded)")
    return _FAMILIES[name]


def builtin_models() -> list[str]:
    """Names of the bundled model presets (``models/fitting/*.toml``)."""
    from cogflex.resources import preset_names

    return preset_names("fitting")


def model_from_dict(data: dict, *, source: str = "") -> CognitiveModel:
    """A model from its mapping (parsed TOML, or a fit's ``model_spec``); ``kind`` picks the family."""
    data = dict(data)
    kind = data.pop("kind", None)
    if not isinstance(kind, str):
        raise ConfigError("kind", "missing: name the model family (e.g. kind = \"nta\")")
    if source:
        load_python_model(source, want_model=False)
    model = family(kind).from_dict(data)
    model.validate_observation()
    if source:
        object.__setattr__(model, "source", str(source))
    return model


def load_model(model) -> CognitiveModel:
    """A model from a preset name, a TOML file, a Python file, or a model object (see the module docstring)."""
    if isinstance(model, CognitiveModel):
        return model
    text = str(model)
    path = Path(text)
    if path.suffix == ".py":
        return load_python_model(path)
    if path.suffix != ".toml":
        from cogflex.resources import preset_path

        try:
            path = preset_path("fitting", text)
        except ConfigError:
            raise ConfigError("model", f"unknown model {text!r} (built in: {', '.join(builtin_models())}; or a "
                                       "model TOML or Python file)") from None
    data = read_toml(path)
    source = data.pop("source", "")
    if source:
        source = str((path.parent / source).resolve()) if not Path(source).is_absolute() else source
    try:
        return model_from_dict(data, source=source)
    except ConfigError as exc:
        raise exc.within(source=str(path)) from None


def load_python_model(path, *, want_model: bool = True) -> CognitiveModel | None:
    """Import a user's model file (its families register themselves) and return its ``MODEL``."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError("model", f"no such model file: {path}")
    name = "cogflex_user_model_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - a user's file: report any failure in one line
            del sys.modules[name]
            raise ConfigError("model", f"{path}: importing it failed ({type(exc).__name__}: {exc})") from None
    if not want_model:
        return None
    model = getattr(module, "MODEL", None)
    if not isinstance(model, CognitiveModel):
        raise ConfigError("model", f"{path}: define MODEL = <a CognitiveModel instance> (see docs/custom_models.md)")
    if type(model).family not in _FAMILIES:
        raise ConfigError("model", f"{path}: the family {type(model).family!r} of MODEL is not registered "
                                   "(decorate its class with @cogflex.fit.models.register)")
    object.__setattr__(model, "source", str(path))
    return model


#: Modules of this package that hold no model family.
_NOT_FAMILIES = {"base", "parameters"}


def _register_builtins() -> None:
    """Import every family module of this package (each registers its classes with :func:`register`)."""
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name not in _NOT_FAMILIES:
            importlib.import_module(f"{__name__}.{info.name}")


_register_builtins()
