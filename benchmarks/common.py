"""What the real-data benchmarks share: params resolved for a real dataset (the real recipe),
its faces, compressed copies and folds through the stages' code (cached in a work folder), and
out-of-fold video scores by the ensemble's rule. Imported by ``real_data.py``, ``methods.py``
and ``compression.py``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml

import dfdc.core.video as video
from dfdc.core.config import Params, params_from_dict, redirect_outputs, resolve_device
from dfdc.core.io import write_parquet
from dfdc.core.layout import fold_dir
from dfdc.core.logs import setup_logging
from dfdc.core.metrics import binary_metrics
from dfdc.core.torch_files import UnreadableFileError, load_torch_file
from dfdc.dataset.folds import make_folds
from dfdc.dataset.index import build_index, collect_entries
from dfdc.faces.batch import run_faces
from dfdc.faces.copies import run_copies
from dfdc.inference.aggregate import video_score
from dfdc.inference.fit import fit_ensemble
from dfdc.kinds.checkpoint import config_hash
from dfdc.training.loop import FitResult, fit


@contextmanager
def decoding_everything() -> Iterator[None]:
    """Inside, this process decodes every frame of a video up to the last wanted one, as the
    stages did before they skipped the pictures nothing wanted refers to: the timestamps are
    hidden from ``decode_indexed``, which then takes its decode-everything path. The baseline
    of the decoding benchmarks; worker processes are not affected, so run the stage in one."""
    real = video._display_ranks
    video._display_ranks = lambda path: None
    try:
        yield
    finally:
        video._display_ranks = real


def nested_by_level(oof: pd.DataFrame, cfg) -> dict[str, dict[str, float]]:
    """The ensemble's own fit (``cfg``, nested by fold) on ``oof``: AUC and log loss on the
    originals (``c23``) and on each copy level apart, as docs/real-data.md's tables show them."""
    report = fit_ensemble(oof, cfg)
    y, m = report.matrix["label"].to_numpy(), report.matrix
    out = {}
    for level, idx in m.groupby("copy", sort=True).indices.items():
        r = binary_metrics(y[idx], report.oof_prob[idx])
        out[level or "c23"] = {k: round(r[k], 4) for k in ("auc", "logloss")}
    return out


def real_parser(description: str, work: str) -> argparse.ArgumentParser:
    """The options every real-data benchmark takes: ROOT, --params, --work, --set, --folds."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("root", nargs="?", default="../shared/data/ffpp")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--work", default=work)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--folds", type=int, help="train only the first N folds")
    return ap


def open_real(args: argparse.Namespace) -> tuple[Path, Params] | None:
    """(root, params resolved for it), or None (said on stderr) when ROOT is not a folder."""
    setup_logging()
    root, work = Path(args.root), Path(args.work)
    if not root.is_dir():
        print(f"{root}: not a folder (FaceForensics++ root expected)", file=sys.stderr)
        return None
    return root, real_params(args.params, root, work, args.set)


def set_key(raw: dict, assignment: str) -> None:
    """Apply ``a.b.c=VALUE`` (VALUE read as YAML) to a raw params dict."""
    key, _, value = assignment.partition("=")
    *path, last = key.split(".")
    node = raw
    for part in path:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)


def real_params(params_file: str, root: Path, work: Path, sets: list[str]) -> Params:
    """The params file as written (not resolved) pointed at ``root`` with data.source ffpp, so
    ``train.recipe: auto`` resolves to the real-data recipe (as ``dvc exp run -S
    data.source=ffpp`` would); every path of the faces, folds and masks in ``work``."""
    raw = yaml.safe_load(Path(params_file).read_text()) or {}
    raw.setdefault("data", {}).update(source="ffpp", local_path=str(root))
    raw = redirect_outputs(raw, work, keep=("train.model.weights_dir",))
    for assignment in sets:
        set_key(raw, assignment)
    return params_from_dict(raw, source=params_file)


def prepare(
    params: Params, root: Path, copies: bool | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(index, folds, seconds): the video index, faces (resumed) and folds of ``root``, and
    the compress stage's copies (resumed) when ``copies`` is true (None: when the frame run
    trains on them, ``train.compress.p`` > 0)."""
    t0 = time.perf_counter()
    index = build_index(collect_entries(root), workers=params.data.workers)
    write_parquet(index, params.data.index_path)
    table = run_faces(index, params.faces, device=resolve_device(params.base.device))
    if copies or (copies is None and params.train.compress.p > 0):
        f = params.faces
        run_copies(index, table, params.compress, f.crop_size, f.crop_format, f.jpeg_quality)
    folds = make_folds(index, params.cv)
    write_parquet(folds, params.cv.path)
    return index, folds, time.perf_counter() - t0


def oof_metrics(oof: pd.DataFrame, params: Params) -> dict:
    """Video metrics of out-of-fold rows: each face track's frames by ``ensemble.rule``, the
    tracks by ``ensemble.faces_combine`` (how ``dfdc predict`` and the ensemble score a video), with
    the plain mean of every crop beside (``crop_mean``)."""
    rule, faces = params.ensemble.rule, params.ensemble.faces_combine
    scores = [
        video_score(p, t, rule, faces)
        for p, t in zip(oof["frame_probs"], oof["tracks"], strict=True)
    ]
    m = binary_metrics(oof["label"], scores)
    crop_mean = binary_metrics(oof["label"], oof["video_prob"])
    m.update(
        rule=f"{rule} per face, {faces} over faces",
        crop_mean={k: crop_mean[k] for k in ("auc", "logloss", "accuracy")},
    )
    return m


def finished(params: Params, run, fold: int) -> tuple[Path, bool] | None:
    """(the fold's folder, whether the config hash is today's) when it holds a finished fit:
    its last.pt at the last epoch and its oof.parquet; else None."""
    out = fold_dir(params.base.models_dir, run.run, fold)
    last, oof = out / "last.pt", out / "oof.parquet"
    if not (last.exists() and oof.exists()):
        return None
    try:
        state = load_torch_file(last)
    except UnreadableFileError:  # a run killed mid-write: not finished, train it again
        return None
    if state.get("epoch", -1) < run.epochs - 1:
        return None
    return out, state.get("config_hash") == config_hash(params, run, fold)


def fit_or_reuse(params: Params, fold: int, run, reuse: bool) -> FitResult:
    """``fit``, or with ``reuse`` a finished fold as it is (a FitResult with no training
    counted: its cost was measured when it trained). A fold whose config hash is not today's
    (trained before keys were added to the run config, or with other values) is reused all
    the same and said so: ``--reuse`` is for a comparison split over sessions, on request."""
    done = finished(params, run, fold) if reuse else None
    if done is None:
        return fit(params, fold, run=run)
    out, same = done
    print(
        f"{run.run} fold {fold}: reusing the finished fit in {out}"
        + ("" if same else " (made with an earlier config: its hash is not today's)"),
        flush=True,
    )
    return FitResult(out_dir=out, best_epoch=-1, best={})
