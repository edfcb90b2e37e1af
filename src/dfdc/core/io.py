"""Atomic, checked writes: a stage that dies half-way never leaves a half-written output
behind, and a write that fails (disk full, read-only folder) is one line naming the file and a
non-zero exit, never a success with files missing. Every output goes through here: images and
figures too (``cv2.imwrite`` returns False on a failed write, and once did so unnoticed while
``dfdc predict --report`` exited 0 with a page pointing at PNGs that were not there).

Every JSON the project writes goes through :func:`to_json`: strict JSON, a NaN or infinity
written as ``null`` (``JSON.parse`` and most parsers refuse ``NaN``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfdc.core.errors import UserError

if TYPE_CHECKING:  # only types here: a cold start imports no pandas, OpenCV or matplotlib
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "WriteError",
    "atomic_path",
    "remove_partial",
    "save_figure",
    "to_json",
    "write_bytes",
    "write_image",
    "write_json",
    "write_parquet",
    "write_text",
]


class WriteError(UserError):
    """An output that could not be written (no space, no permission, an encoder that
    failed). Not an ``OSError``: no per-item handler that skips a bad input swallows it, so
    a full disk stops the run instead of marking every later item failed."""


_TMP_PREFIX, _TMP_SUFFIX = ".", ".tmp"  # atomic_path's temporary files: .<name>.<random>.tmp


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only on success. An
    ``OSError`` on the way (making the folder, writing, renaming) is a :class:`WriteError`
    naming ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f"{_TMP_PREFIX}{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent
        )
        # mkstemp makes the file 0600; the output is an ordinary file, readable as the user's
        # umask says (0644 under 022), like one written with open().
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError as exc:
        raise WriteError(f"{path}: could not write it ({exc.strerror or exc})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        raise WriteError(f"{path}: could not write it ({exc.strerror or exc})") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_partial(folder: str | Path) -> int:
    """Remove the temporary files :func:`atomic_path` left under ``folder`` when a run was
    killed mid-write (SIGKILL runs no cleanup); returns how many. A stage calls it before it
    writes into a folder that persists between runs, so none ends up in a DVC output. Only
    one run writes a stage's outputs at a time (DVC locks the repository)."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    stale = [p for p in folder.rglob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


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


def write_bytes(data: bytes, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_image(rgb: np.ndarray, path: str | Path) -> None:
    """An RGB image as the format of ``path``'s suffix (``.png``, ``.jpg``), encoded in memory
    and checked, then written atomically (``cv2.imwrite`` only returns False on failure)."""
    import cv2

    path = Path(path)
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise WriteError(f"{path}: could not encode the image as {path.suffix}")
    write_bytes(buf.tobytes(), path)


def save_figure(fig: Figure, path: str | Path, **kwargs: Any) -> None:
    """``fig.savefig(path, **kwargs)``, atomic and checked; the format from ``path``'s suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or None, **kwargs)
