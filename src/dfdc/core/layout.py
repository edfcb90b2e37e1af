"""The models folder's layout, written and parsed here only::

    <models_dir>/<run>/fold<k>/{best.pt, last.pt, oof.parquet, metrics.json, config.json}
    <models_dir>/<run>/dvclive/fold<k>/    (training curves, small files kept in git)

An ensemble member is named ``<run>/fold<k>``; :func:`member_name` and :func:`member_run` are
the two directions of that name.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "find_checkpoints",
    "fold_checkpoint",
    "fold_dir",
    "fold_name",
    "fold_of",
    "live_dir",
    "member_name",
    "member_run",
    "oof_files",
]


def fold_name(fold: int) -> str:
    return f"fold{fold}"


def fold_of(name: str) -> int:
    """The fold of a fold folder's name (``fold3`` -> 3)."""
    return int(name.removeprefix("fold"))


def fold_dir(models_dir: str | Path, run: str, fold: int) -> Path:
    return Path(models_dir) / run / fold_name(fold)


def live_dir(models_dir: str | Path, run: str, fold: int) -> Path:
    """Training curves: small files kept in git beside the run (dvc plots reads them)."""
    return Path(models_dir) / run / "dvclive" / fold_name(fold)


def fold_checkpoint(models_dir: str | Path, run: str, fold: int) -> Path:
    return fold_dir(models_dir, run, fold) / "best.pt"


def member_name(run: str, fold: int) -> str:
    """The name an ensemble member goes by: ``<run>/fold<k>``."""
    return f"{run}/{fold_name(fold)}"


def member_run(name: str) -> str:
    """The run of a member name (``baseline/fold0`` -> ``baseline``)."""
    return name.rsplit("/", 1)[0]


def oof_files(models_dir: str | Path, run: str) -> list[Path]:
    """Every fold's out-of-fold table of ``run``, in fold order."""
    return sorted((Path(models_dir) / run).glob("fold*/oof.parquet"))


def copy_oof_files(models_dir: str | Path, run: str) -> list[tuple[str, Path]]:
    """(copy level, file) of every fold's out-of-fold table on compressed copies of ``run``
    (``fold*/oof_<level>.parquet``, the compress stage's validation copies)."""
    files = sorted((Path(models_dir) / run).glob("fold*/oof_*.parquet"))
    return [(f.stem.removeprefix("oof_"), f) for f in files]


def find_checkpoints(root: str | Path, fold: int | None = None) -> list[Path]:
    """``best.pt`` files under ``root`` (a run folder, a fold folder or a file); ``fold``: that
    fold's only."""
    root = Path(root)
    found = [root] if root.is_file() else sorted(root.rglob("best.pt"))
    if not found:
        raise FileNotFoundError(f"{root}: no best.pt found (train a model first: dvc repro train)")
    if fold is not None:
        found = [p for p in found if p.parent.name == fold_name(fold)]
    return found
