"""Atomic writes: a stage that dies half-way never leaves a half-written output behind.

Every JSON the project writes goes through :func:`to_json`: strict JSON, a NaN or infinity
written as ``null`` (``JSON.parse`` and most parsers refuse ``NaN``)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: a cold start imports no pandas
    import pandas as pd

__all__ = ["atomic_path", "to_json", "write_json", "write_parquet", "write_text"]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes the file 0600; the output is an ordinary file, readable as the user's
    # umask says (0644 under 022), like one written with open().
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process's umask, read without changing it (Linux's /proc), else set and restored."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _strict(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (numpy's too) as None, containers copied."""
    if isinstance(obj, float):  # numpy.float64 is a float
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_strict(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # numpy scalars and arrays
        return _strict(obj.tolist())
    return obj


def to_json(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``obj``: NaN and infinities become null, never the non-standard
    ``NaN`` that ``json.dumps`` writes by default (``allow_nan=False`` guards the rest)."""
    return json.dumps(_strict(obj), allow_nan=False, **kwargs)


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(to_json(obj, indent=1, sort_keys=True) + "\n")


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
