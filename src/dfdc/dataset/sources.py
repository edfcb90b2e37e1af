"""Where the raw videos come from: the generated sample, Kaggle, or local dataset folders.

The sample and Kaggle end in the DFDC layout under ``<raw>`` (``train/<part>/`` with
``metadata.json``, ``test_videos/``, ``sample_submission.csv``). Local folders (DFDC,
FaceForensics++ or Celeb-DF, each in its own layout: :mod:`dfdc.dataset.layouts`) are read in
place (the full DFDC training set is 470 GB); only a small ``SOURCE.json`` under ``<raw>``
records which folders were used.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from dfdc.core.config import DataConfig, to_dict
from dfdc.core.io import write_json
from dfdc.dataset.layouts import walk

log = logging.getLogger(__name__)

__all__ = ["RawLayout", "prepare_raw"]


@dataclass(frozen=True)
class RawLayout:
    train_root: Path | None
    test_dir: Path | None
    sample_submission: Path | None
    layout: str = "dfdc"  # of train_root: dfdc | ffpp | celebdf | auto (detected)
    extra_roots: tuple[Path, ...] = ()


def _layout(raw_dir: Path) -> RawLayout:
    test_dir = raw_dir / "test_videos"
    sub = raw_dir / "sample_submission.csv"
    return RawLayout(
        raw_dir / "train", test_dir if test_dir.is_dir() else None, sub if sub.exists() else None
    )


def _download_kaggle(cfg: DataConfig, raw_dir: Path) -> None:
    """Fetch the competition archive and sort its folders into the DFDC layout."""
    from dfdc.kaggle.api import download_competition

    staged = download_competition(
        cfg.kaggle.competition, raw_dir.with_name(raw_dir.name + ".unzipped")
    )
    out = raw_dir.with_name(raw_dir.name + ".partial")
    if out.exists():
        shutil.rmtree(out)
    (out / "train").mkdir(parents=True)
    for item in sorted(staged.iterdir()):
        if item.name not in cfg.kaggle.files:
            continue
        if item.name == "test_videos" or item.is_file():
            item.rename(out / item.name)
        else:  # a training folder such as train_sample_videos
            item.rename(out / "train" / item.name)
    if raw_dir.exists():
        shutil.rmtree(raw_dir)
    out.rename(raw_dir)
    shutil.rmtree(staged)


def prepare_raw(cfg: DataConfig, sample_workers: int = 1) -> RawLayout:
    """Materialise the configured source under ``cfg.raw_dir`` and say where its parts are."""
    raw_dir = Path(cfg.raw_dir)
    if cfg.source == "sample":
        from dfdc.dataset.sample import build_sample

        build_sample(cfg.sample, raw_dir, workers=sample_workers)
        write_json({"source": "sample", "sample": to_dict(cfg.sample)}, raw_dir / "SOURCE.json")
        return _layout(raw_dir)
    if cfg.source == "kaggle":
        _download_kaggle(cfg, raw_dir)
        write_json(
            {"source": "kaggle", "competition": cfg.kaggle.competition}, raw_dir / "SOURCE.json"
        )
        return _layout(raw_dir)
    local = Path(cfg.local_path).expanduser()
    if not local.exists():
        raise FileNotFoundError(f"{local}: data.local_path does not exist")
    extra = tuple(Path(p).expanduser() for p in cfg.extra_paths)
    for path in extra:
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: a folder of data.extra_paths does not exist")
    if raw_dir.exists():
        shutil.rmtree(raw_dir)
    raw_dir.mkdir(parents=True)
    record = {
        "source": cfg.source,
        "local_path": str(local.resolve()),
        "extra_paths": [str(p.resolve()) for p in extra],
    }
    (raw_dir / "SOURCE.json").write_text(json.dumps(record, indent=1) + "\n")
    layout = "auto" if cfg.source == "local" else cfg.source
    files = list(walk(local)) if local.is_dir() else []
    test_dirs = sorted({p.parent for p in files if p.parent.name == "test_videos"})
    subs = [p for p in files if p.name == "sample_submission.csv"]
    # The submission's file order is a small file: keep a copy where every source has it.
    for name, found in (
        ("sample_submission.csv", subs),
        ("test_labels.csv", [p for p in files if p.name == "test_labels.csv"]),
    ):
        if found:
            shutil.copy(found[0], raw_dir / name)
    return RawLayout(
        local, test_dirs[0] if test_dirs else None, subs[0] if subs else None, layout, extra
    )
