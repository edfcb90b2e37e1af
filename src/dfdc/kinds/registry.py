"""The model-kind registry: ``get_kind(name)``, and the run-config class each kind registers.

A kind plugs in with ``@register_kind`` on a :class:`~dfdc.kinds.base.ModelKind` subclass that
names its ``params.yaml`` section and its run-config class; the loop, the checkpoint reader,
inference and the CLI look kinds up here and never test a name (timm's ``register_model`` and
DeepfakeBench's ``DETECTOR.register_module`` work the same way).
"""

from __future__ import annotations

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

_KINDS: dict[str, ModelKind] = {}


def register_kind(cls: type[ModelKind]) -> type[ModelKind]:
    """Class decorator: one instance of ``cls`` under ``cls.name``."""
    if cls.name in _KINDS:
        raise ValueError(f"model kind {cls.name!r} is registered twice")
    _KINDS[cls.name] = cls()
    return cls


def get_kind(name: str) -> ModelKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(
            f"kind: no model kind {name!r} (registered: {', '.join(kind_names())})"
        ) from None


def kind_names() -> list[str]:
    return sorted(_KINDS)


def run_sections() -> list[str]:
    """The params.yaml sections a train stage can train (``dfdc train --section``)."""
    return [k.section for _, k in sorted(_KINDS.items())]


def run_config_from_dict(raw: dict[str, Any], source: str = "checkpoint") -> RunConfig:
    """A run's config saved beside its weights, typed again by the class its kind registered."""
    name = raw.get("kind", "frame")
    if name not in _KINDS:
        raise ConfigError(
            f"{source}: no model kind {name!r} (registered: {', '.join(kind_names())})"
        )
    return build(_KINDS[name].config_class, raw, prefix="", source=source)
