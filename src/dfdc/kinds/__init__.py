"""The model kinds, registered by name: ``get_kind(run.kind)``.

A kind plugs in with ``@register_kind`` on a :class:`~dfdc.kinds.base.ModelKind` subclass in its
own module, imported below; nothing else in the workspace names it (timm's ``register_model``
and DeepfakeBench's ``DETECTOR.register_module`` work the same way).
"""

from __future__ import annotations

from dfdc.kinds.base import LoadedModel, ModelKind, Runtime, Task

__all__ = ["LoadedModel", "ModelKind", "Runtime", "Task", "get_kind", "kind_names", "register_kind"]

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


# The built-in kinds register themselves on import.
from dfdc.kinds import frame, sequence  # noqa: E402, F401
