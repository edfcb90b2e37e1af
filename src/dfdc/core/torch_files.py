"""Torch files read as data, never as code: every checkpoint the project loads goes through
:func:`load_torch_file`.

A ``.pt`` file is a pickle, and unpickling can call any function the file names: a shared
``best.pt`` whose pickle carries a ``__reduce__`` payload once ran ``os.system`` inside
``torch.load(weights_only=False)`` before the schema check could refuse it. Here every load is
``weights_only=True`` (torch's restricted unpickler: tensors, containers, numbers, strings), so
a file that names any other global is refused before anything in it runs, with one line that
names the file and the globals. Checkpoints people download are exactly the files that need it.

The project's own checkpoints hold only tensors and plain data, so they load as they are. A
file that holds more (an older checkpoint with numpy numbers in its metrics, say) can be
converted once, by someone who trusts it, with :func:`convert_trusted`
(``dfdc convert-checkpoint PATH``).
"""

from __future__ import annotations

import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

from dfdc.core.errors import UserError
from dfdc.core.io import WriteError, atomic_path

__all__ = [
    "UnreadableFileError",
    "UnsafeFileError",
    "convert_trusted",
    "load_torch_file",
    "save_torch_file",
]

CONVERT_COMMAND = "dfdc convert-checkpoint"


class UnreadableFileError(UserError, ValueError):
    """Not a torch file, or a truncated or empty one: a cache that holds it may treat it as
    missing and make it again. ``reason``: what failed, for a caller's own message."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: not a readable torch file ({reason})")
        self.path, self.reason = path, reason


class UnsafeFileError(UserError, ValueError):
    """A torch file whose pickle names Python objects beyond tensors and plain data: loading
    it could run code, so it is refused (never healed by overwriting: someone put it there)."""


def _pickle_globals(path: Path) -> list[str]:
    """The globals the first pickle in ``path`` names, from its opcodes (nothing runs); none
    when it is not a pickle."""
    names, strings = [], []
    try:
        with open(path, "rb") as fh:
            for op, arg, _ in pickletools.genops(fh):
                if op.name == "GLOBAL":
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(".".join(strings[-2:]))
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # junk, not a pickle
        return []
    return list(dict.fromkeys(names))


def _unsafe_globals(path: Path, exc: Exception) -> list[str]:
    """The globals that made the restricted unpickler refuse ``path``, read without running
    anything: torch's scan of a zip checkpoint, the name in torch's error for its legacy
    format, else the opcodes of a bare pickle."""
    import torch

    if zipfile.is_zipfile(path):
        try:
            return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # a damaged archive: fall back on the error's own words
            pass
    return re.findall(r"GLOBAL ([\w.]+)", str(exc))[:1] or _pickle_globals(path)


def _why(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def load_torch_file(path: str | Path, map_location: Any = "cpu") -> Any:
    """What ``torch.save`` wrote to ``path``, read as tensors and plain data only.

    Raises :class:`UnsafeFileError` when the file names any other Python global (nothing in
    it has run), :class:`UnreadableFileError` when it is missing, empty, truncated or not a
    torch file; both one line naming the file."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        names = _unsafe_globals(path, exc)
        if not names:  # a pickle stream that is not one: junk, not code
            raise UnreadableFileError(path, _why(exc)) from None
        raise UnsafeFileError(
            f"{path}: refused: it holds Python objects ({', '.join(names)}), not only tensors "
            f"and plain data, and loading it could run code; if it is a checkpoint you trust, "
            f"convert it once: {CONVERT_COMMAND} {path}"
        ) from None
    except (OSError, EOFError, RuntimeError, ValueError, zipfile.BadZipFile) as exc:
        raise UnreadableFileError(path, f"empty, truncated or not one: {_why(exc)}") from None


def save_torch_file(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)``, atomic and checked: torch reports a failed write (a full
    disk) as a ``RuntimeError`` from its zip writer, which is a :class:`WriteError` here."""
    import torch

    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:
            raise WriteError(f"{path}: could not write it ({_why(exc)})") from None


def _plain(obj: Any, where: str) -> Any:
    """``obj`` with numpy numbers and arrays turned into Python numbers and tensors, the only
    conversions an older checkpoint of this project needs; anything else is an error."""
    import numpy as np
    import torch

    if isinstance(obj, dict):
        return type(obj)((k, _plain(v, f"{where}.{k}")) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return type(obj)(_plain(v, f"{where}[{i}]") for i, v in enumerate(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if obj is None or isinstance(obj, str | bytes | bool | int | float | torch.Tensor):
        return obj
    if isinstance(obj, torch.dtype | torch.device | torch.Size):
        return obj
    raise UserError(f"{where}: a {type(obj).__module__}.{type(obj).__name__}, not plain data")


def convert_trusted(path: str | Path) -> Path:
    """Re-save a torch file as tensors and plain data, in place (atomically).

    This loads ``path`` with ``weights_only=False``: it runs whatever code the file holds.
    Call it only on a file you made or trust; afterwards :func:`load_torch_file` reads it."""
    import torch

    path = Path(path)
    state = torch.load(path, map_location="cpu", weights_only=False)
    save_torch_file(_plain(state, path.name), path)
    load_torch_file(path)  # the point of converting: it must now load as data
    return path
