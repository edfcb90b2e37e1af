"""The model-kind registry: ``get_kind(name)``, and the run-config class each kind registers.

A kind plugs in with ``@register_kind`` on a :class:`~dfdc.kinds.base.ModelKind` subclass that
names its ``params.yaml`` section and its run-config class; the loop, the checkpoint reader,
inference and the CLI look kinds up here and never test a name (timm's ``register_model`` and
DeepfakeBench's ``DETECTOR.register_module`` work the same way).

The built-in kinds are listed by name in :data:`KINDS` as ``"module:Class"`` and imported when
first asked for, so a frame fold never imports the sequence kind's module, and its DVC code
fingerprint (:mod:`dfdc.core.fingerprint`) does not hold it: an edit to one kind reruns the
stages that train or load that kind only. A kind added at run time registers with
``@register_kind`` like the built-in ones.
"""

from __future__ import annotations

import importlib
from typing import Any

from dfdc.core.config import RunConfig
from dfdc.core.typed import ConfigError, build
from dfdc.kinds.base import ModelKind

__all__ = [
    "get_kind",
    "kind_names",
    "register_kind",
    "run_config_from_dict",
    "run_sections",
]

# The built-in kinds: name -> "module:Class", imported on demand (the module registers its class
# with @register_kind as it is imported). A literal: the code fingerprint reads it statically.
KINDS: dict[str, str] = {
    "frame": "dfdc.kinds.frame:FrameKind",
    "sequence": "dfdc.kinds.sequence:SequenceKind",
}
_LOADED: dict[str, ModelKind] = {}


def register_kind(cls: type[ModelKind]) -> type[ModelKind]:
    """Class decorator: one instance of ``cls`` under ``cls.name`` (a built-in name belongs to
    the class :data:`KINDS` names)."""
    where = f"{cls.__module__}:{cls.__qualname__}"
    if cls.name in _LOADED or KINDS.get(cls.name, where) != where:
        raise ValueError(f"model kind {cls.name!r} is registered twice")
    _LOADED[cls.name] = cls()
    return cls


def get_kind(name: str) -> ModelKind:
    """The kind registered as ``name``, its module imported now if it was not yet."""
    if name not in _LOADED and name in KINDS:
        importlib.import_module(KINDS[name].partition(":")[0])
    try:
        return _LOADED[name]
    except KeyError:
        raise ValueError(
            f"kind: no model kind {name!r} (registered: {', '.join(kind_names())})"
        ) from None


def kind_names() -> list[str]:
    """Every kind's name, the built-in ones (imported or not) and those registered since."""
    return sorted(set(KINDS) | set(_LOADED))


def run_sections() -> list[str]:
    """The params.yaml sections a train stage can train (``dfdc train --section``); imports
    every kind."""
    return [get_kind(name).section for name in kind_names()]


def run_config_from_dict(raw: dict[str, Any], source: str = "checkpoint") -> RunConfig:
    """A run's config saved beside its weights, typed again by the class its kind registered."""
    name = raw.get("kind", "frame")
    if name not in kind_names():
        raise ConfigError(
            f"{source}: no model kind {name!r} (registered: {', '.join(kind_names())})"
        )
    return build(get_kind(name).config_class, raw, prefix="", source=source)
