"""One training loop for every kind, fold, backbone and seed: ``train_one_epoch``, ``validate``
and ``fit``, which wires them to checkpoints (:mod:`dfdc.kinds.checkpoint`: resume after an
interruption), dvclive curves and the out-of-fold predictions the ensemble reads.

What a kind trains (model, loaders, how its units become crop rows) comes from the kind
registry (:mod:`dfdc.kinds.registry`), given a narrow :class:`~dfdc.kinds.base.TrainContext`
that the loop reads once; the loop never names a kind. On CUDA it uses mixed precision and
channels-last; under ``torchrun`` it trains with DistributedDataParallel (NCCL on GPUs, gloo on
CPUs).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from dfdc.core.config import LoopConfig, Params, RunConfig
from dfdc.core.fingerprint import code_digest
from dfdc.core.io import write_json, write_parquet
from dfdc.core.layout import fold_dir, live_dir
from dfdc.core.metrics import binary_metrics, log_loss
from dfdc.core.progress import progress
from dfdc.core.provenance import sha256_file, training_data
from dfdc.core.runtime import Runtime, make_runtime
from dfdc.crops.datasets import CropItem
from dfdc.crops.losses import smoothed_bce
from dfdc.faces.copy_levels import copy_levels, copy_tables
from dfdc.kinds import Task, TrainContext, get_kind
from dfdc.kinds.checkpoint import (
    config_hash,
    read_checkpoint,
    read_resume,
    resolved_config,
    save_best,
    save_last,
)

log = logging.getLogger(__name__)

__all__ = ["FitResult", "fit", "train_one_epoch", "validate"]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # Deterministic kernels where PyTorch has a choice (a warning, not an error, where an op
    # has none), so a rerun on the same machine gives the same weights.
    torch.use_deterministic_algorithms(True, warn_only=True)


def make_optimizer(model: torch.nn.Module, cfg: LoopConfig) -> torch.optim.Optimizer:
    # No weight decay on norms and biases.
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_scheduler(
    opt: torch.optim.Optimizer, cfg: LoopConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return 0.01 + 0.99 * step / max(1, warmup)
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * t)) if cfg.schedule == "cosine" else (1 - t) ** 0.9

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_one_epoch(
    model: torch.nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    cfg: LoopConfig,
    rt: Runtime,
    max_batches: int | None = None,
    loss_fn: Callable[[object, list[torch.Tensor]], torch.Tensor] | None = None,
) -> dict[str, float]:
    """One pass over ``loader``'s batches (inputs, labels[, more targets]); ``loss_fn`` (the
    task's) takes the model's raw output and the targets, else the classification loss."""
    model.train()
    total, count = 0.0, 0
    for i, batch in enumerate(progress(loader, desc="train", leave=False, disable=not rt.main)):
        if max_batches is not None and i >= max_batches:
            break
        x, targets = batch[0], [t.to(rt.device, non_blocking=True) for t in batch[1:]]
        y = targets[0]
        if loss_fn is None:
            logits = rt.logits(model, x)
            loss = smoothed_bce(logits, y, cfg.label_smoothing, cfg.balance == "loss")
        else:
            loss = loss_fn(rt.forward(model, x), targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total += float(loss.detach()) * len(y)
        count += len(y)
    return {"loss": total / max(1, count), "lr": optimizer.param_groups[0]["lr"], "images": count}


@torch.inference_mode()
def validate(
    model: torch.nn.Module, loader: Iterable, rt: Runtime, max_batches: int | None = None
) -> np.ndarray:
    """FAKE probabilities of the loader's units (frames or tracks), in its order."""
    model.eval()
    probs = []
    for i, batch in enumerate(progress(loader, desc="validate", leave=False, disable=not rt.main)):
        if max_batches is not None and i >= max_batches:
            break
        probs.append(torch.sigmoid(rt.logits(model, batch[0])).cpu().numpy())
    return np.concatenate(probs) if probs else np.zeros(0)


def video_predictions(
    items: list[CropItem], probs: np.ndarray, fold: int, videos: pd.DataFrame
) -> pd.DataFrame:
    """One row a video: its frames' scores kept (the ensemble re-aggregates them) and their mean."""
    frames = pd.DataFrame(
        {
            "video": [it.video for it in items[: len(probs)]],
            "frame": [it.frame for it in items[: len(probs)]],
            "track": [it.track for it in items[: len(probs)]],
            "prob": probs,
        }
    )
    rows = []
    meta = videos.set_index("name")
    for video, g in frames.groupby("video", sort=True):
        rows.append(
            {
                "video": video,
                "fold": fold,
                "label": int(meta.loc[video, "label"] == "FAKE"),
                "part": meta.loc[video, "part"],
                "original": meta.loc[video, "original"],
                "frames": g["frame"].to_list(),
                "tracks": g["track"].to_list(),
                "frame_probs": g["prob"].astype(float).to_list(),
                "video_prob": float(g["prob"].mean()),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class FitResult:
    out_dir: Path
    best_epoch: int
    best: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    model: torch.nn.Module | None = None
    # What this call trained (a resumed fit counts its own epochs only): crops seen, and the
    # seconds spent in training steps (validation excluded), for methods' cost per image.
    train_images: int = 0
    train_seconds: float = 0.0


def _fold_labels(
    folds: pd.DataFrame, fold: int, faces: pd.DataFrame, where: str
) -> tuple[dict, dict, pd.DataFrame]:
    """Training and validation labels of ``fold`` (videos with crops only), and the
    validation videos' rows of the folds table (``where``: its file, for the message)."""
    if fold not in set(folds["fold"]):
        raise ValueError(f"fold {fold} is not in {where} (folds 0..{folds['fold'].max()})")
    have = folds["name"].isin(set(faces["video"]))
    train_v = folds[(folds["fold"] != fold) & have]
    val_v = folds[(folds["fold"] == fold) & have]
    return (
        dict(zip(train_v["name"], train_v["label"], strict=True)),
        dict(zip(val_v["name"], val_v["label"], strict=True)),
        val_v,
    )


def _score_videos(
    model: torch.nn.Module,
    loader: DataLoader,
    to_crops: Callable,
    rt: Runtime,
    fold: int,
    val_v: pd.DataFrame,
) -> tuple[np.ndarray, pd.DataFrame, dict[str, float]]:
    """``model`` on one validation loader (the originals, or one copy level): its per-unit
    probabilities, the videos' out-of-fold table, and that table's metrics. One path for the
    epochs' validation and for scoring a kept model again, so both give the same table."""
    probs = validate(model, loader, rt)
    items, crop_probs = to_crops(probs)
    preds = video_predictions(items, crop_probs, fold, val_v)
    return probs, preds, binary_metrics(preds["label"], preds["video_prob"])


def _epoch_metrics(
    task: Task, model: torch.nn.Module, rt: Runtime, fold: int, val_v: pd.DataFrame, tr: dict
) -> tuple[dict[str, float], pd.DataFrame]:
    probs, preds, video = _score_videos(model, task.val_loader, task.to_crops, rt, fold, val_v)
    metrics = {
        "train_loss": tr["loss"],
        "lr": tr["lr"],
        f"{task.unit}_logloss": log_loss(task.val_labels[: len(probs)], probs),
        "video_logloss": video["logloss"],
        "video_auc": video["auc"],
        "video_accuracy": video["accuracy"],
    }
    return metrics, preds


def _copies(params: Params, run: RunConfig, crops: pd.DataFrame) -> dict[str, dict]:
    """The compress stage's copy tables a run trains on (with ``train.compress.p`` > 0: its
    ``levels``, else the stage's train levels) and is validated on besides (its ``validate``,
    else the stage's validation levels; a run without ``compress`` settings too), as
    :class:`TrainContext` fields; none before the stage has run."""
    path = Path(params.compress.table_path)
    if not path.exists():
        return {}
    tables = copy_tables(crops, pd.read_parquet(path))
    cfg = getattr(run, "compress", None)
    train: list[str] = []
    if cfg is not None and cfg.p > 0:
        train = list(cfg.levels) or [lv.name for lv in copy_levels(params.compress, "train")]
    val = list(cfg.validate) if cfg is not None and cfg.validate else []
    val = val or [lv.name for lv in copy_levels(params.compress, "validate")]
    return {
        "train_copies": {n: tables[n] for n in train if n in tables},
        "val_copies": {n: tables[n] for n in val if n in tables},
    }


def _context(
    params: Params, run: RunConfig, fold: int, rt: Runtime
) -> tuple[TrainContext, pd.DataFrame, pd.DataFrame]:
    """(what the kind trains fold ``fold`` from, the folds table, the validation videos'
    rows of it)."""
    crops = pd.read_parquet(params.faces.table_path)
    folds = pd.read_parquet(params.cv.path)
    train_labels, val_labels, val_v = _fold_labels(folds, fold, crops, params.cv.path)
    ctx = TrainContext(
        run=run,
        fold=fold,
        seed=params.base.seed,
        rt=rt,
        faces=params.faces,
        crops=crops,
        folds=folds,
        train_labels=train_labels,
        val_labels=val_labels,
        models_dir=Path(params.base.models_dir),
        masks_table=Path(params.masks.table_path),
        **_copies(params, run, crops),
    )
    return ctx, folds, val_v


def _score_copies(
    task: Task, model: torch.nn.Module, rt: Runtime, fold: int, val_v: pd.DataFrame, out: Path
) -> dict[str, float]:
    """The validation videos' compressed copies scored by ``model``, one out-of-fold table a
    level (``oof_<level>.parquet`` in ``out``); their video metrics, named by level."""
    metrics: dict[str, float] = {}
    for level, (loader, to_crops) in task.copy_validation.items():
        _, preds, m = _score_videos(model, loader, to_crops, rt, fold, val_v)
        write_parquet(preds, out / f"oof_{level}.parquet")
        metrics.update({f"{level}_video_auc": m["auc"], f"{level}_video_logloss": m["logloss"]})
        log.info(
            "fold %d, %s copies: video AUC %.4f, log loss %.4f", fold, level, m["auc"], m["logloss"]
        )
    return metrics


def score_copies(params: Params, fold: int, run: RunConfig | None = None) -> dict[str, float]:
    """A finished fold's kept model on the validation videos' compressed copies (made after it
    trained, or again): the ``oof_<level>.parquet`` files that :func:`fit` writes at the kept
    epoch, and their metrics."""
    return rescore_fold(params, fold, run, originals=False)


def rescore_fold(
    params: Params,
    fold: int,
    run: RunConfig | None = None,
    out: Path | None = None,
    wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
    originals: bool = True,
) -> dict[str, float]:
    """A finished fold's kept model scored again on its validation videos (``originals``) and
    their compressed copies, as :func:`fit` scores them, into ``out`` (default: the fold's own
    folder) as ``oof.parquet`` and ``oof_<level>.parquet``. ``wrap``: what the model is put
    through first (a test-time augmentation, measured by ``benchmarks/tta.py``)."""
    params.cv.check_fold(fold)  # --fold 5 of 2 folds: one line, before anything is read
    run = params.train if run is None else run
    rt = make_runtime(params.base.device, run.amp, run.channels_last)
    kept = fold_dir(Path(params.base.models_dir), run.run, fold)
    out = kept if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx, _, val_v = _context(params, run, fold, rt)
    task = get_kind(run.kind).task(ctx)
    task.model.load_state_dict(read_checkpoint(kept / "best.pt").model)
    model = task.model if wrap is None else wrap(task.model)
    metrics: dict[str, float] = {}
    if originals:
        _, preds, m = _score_videos(model, task.val_loader, task.to_crops, rt, fold, val_v)
        write_parquet(preds, out / "oof.parquet")
        metrics.update({"video_auc": m["auc"], "video_logloss": m["logloss"]})
    return {**metrics, **_score_copies(task, model, rt, fold, val_v, out)}


def _log_epoch(live, metrics: dict[str, float]) -> None:
    for k, v in metrics.items():
        live.log_metric(("train/" if k in ("train_loss", "lr") else "val/") + k, v)
    live.next_step()


def _inputs(params: Params, folds: pd.DataFrame, task: Task) -> dict:
    """What a fold trains from, by content, for its resume key: the data record its
    checkpoint keeps, the tables the loop reads (faces, folds, masks, compressed copies: the
    crops, masks and copies they list are named by them), and what the kind adds (an
    embedder's checkpoint)."""
    tables = {
        "faces": params.faces.table_path,
        "folds": params.cv.path,
        "masks": params.masks.table_path,
        "compressed": params.compress.table_path,
    }
    return {
        "data": training_data(params.data, folds),
        "tables": {name: sha256_file(path) for name, path in tables.items()},
        **task.inputs,
    }


def fit(
    params: Params,
    fold: int,
    run: RunConfig | None = None,
    max_batches: int | None = None,
    out_dir: Path | None = None,
    curves_dir: Path | None = None,
) -> FitResult:
    """Train one fold of ``run`` (default: the ``train`` section; any registered kind);
    resume from ``last.pt`` when it was made with the same config; keep the best epoch by
    video log loss, or the last (``run.keep``)."""
    params.cv.check_fold(fold)  # --fold 5 of 2 folds: one line, before anything is read
    run = params.train if run is None else run
    rt = make_runtime(params.base.device, run.amp, run.channels_last)
    models_dir = Path(params.base.models_dir)
    out = Path(out_dir) if out_dir is not None else fold_dir(models_dir, run.run, fold)
    curves = Path(curves_dir) if curves_dir is not None else live_dir(models_dir, run.run, fold)
    _seed_everything(params.base.seed + fold)

    # Everything the kind trains from, read once; the run's saved config and its resume key,
    # computed once (not every epoch).
    ctx, folds, val_v = _context(params, run, fold, rt)
    config = resolved_config(params, run, folds)
    task = get_kind(run.kind).task(ctx)
    # The code that trains (the loop and the run's kind; not the notebook's drawing code).
    code = code_digest("dfdc.training.loop", kinds=(run.kind,))
    key = config_hash(params, run, fold, _inputs(params, folds, task), code, max_batches)
    model = task.model
    steps = min(task.steps_per_epoch, max_batches or task.steps_per_epoch)
    optimizer = make_optimizer(model, run)
    scheduler = make_scheduler(optimizer, run, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=rt.amp)
    net = model
    if rt.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None
        )

    last = out / "last.pt"
    resume = read_resume(
        last, key, run.epochs, fold, model, optimizer, scheduler, scaler, rt.device
    )
    start, best, best_epoch, history = (
        (resume.epoch, resume.best, resume.best_epoch, resume.history)
        if resume
        else (0, {"video_logloss": float("inf")}, -1, [])
    )

    live = None
    if rt.main:
        from dvclive import Live

        out.mkdir(parents=True, exist_ok=True)
        # DVC deleted the curves before rerunning the stage: the epochs kept are written again.
        live = Live(dir=str(curves), resume=False, save_dvc_exp=False, dvcyaml=None, report=None)
        for row in history:
            _log_epoch(live, {k: v for k, v in row.items() if k != "epoch"})
        (out / "config.json").write_text(
            json.dumps({"fold": fold, "params": config}, indent=1) + "\n"
        )

    epochs = progress(
        range(start, run.epochs),
        desc=f"{run.run} fold {fold}",
        unit="epoch",
        initial=start,
        total=run.epochs,
        disable=not rt.main,
    )
    images, seconds = 0, 0.0
    for epoch in epochs:
        t0 = time.perf_counter()
        loader = task.train_loader(epoch)
        tr = train_one_epoch(
            net, loader, optimizer, scheduler, scaler, run, rt, max_batches, task.loss
        )
        images, seconds = images + tr["images"], seconds + time.perf_counter() - t0
        if rt.main:
            if epoch == run.epochs - 1 or (epoch + 1) % run.val_every == 0:
                metrics, preds = _epoch_metrics(task, model, rt, fold, val_v, tr)
            else:  # no validation this epoch (val_every): the training side only
                metrics, preds = {"train_loss": tr["loss"], "lr": tr["lr"]}, None
            history.append({"epoch": epoch, **metrics})
            _log_epoch(live, metrics)
            log.info(
                "fold %d epoch %d: %s", fold, epoch, {k: round(v, 4) for k, v in metrics.items()}
            )
            better = preds is not None and metrics["video_logloss"] < best["video_logloss"]
            if (run.keep == "last" and epoch == run.epochs - 1) or (run.keep == "best" and better):
                best, best_epoch = metrics, epoch
                save_best(
                    out / "best.pt", config, fold, epoch, metrics, model, task.checkpoint_extra
                )
                write_parquet(preds, out / "oof.parquet")
                best = {**best, **_score_copies(task, model, rt, fold, val_v, out)}
            save_last(
                last, key, epoch, model, optimizer, scheduler, scaler, best, best_epoch, history
            )
        if rt.world > 1:
            import torch.distributed as dist

            dist.barrier()
    if rt.main:
        write_json({"fold": fold, "best_epoch": best_epoch, **best}, out / "metrics.json")
        live.end()
    return FitResult(out, best_epoch, best, history, model, images, seconds)
