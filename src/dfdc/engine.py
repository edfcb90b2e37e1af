"""One training loop for every fold, backbone and seed: ``train_one_epoch`` and ``validate``.

``fit`` wires them to checkpoints (resume after an interruption), dvclive curves and the
out-of-fold predictions the ensemble reads. On CUDA it uses mixed precision and channels-last;
under ``torchrun`` it trains with DistributedDataParallel (NCCL on GPUs, gloo on CPUs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from dfdc.config import Params, TrainConfig, to_dict
from dfdc.data import CropDataset, CropItem, crop_items, epoch_plan
from dfdc.faces.detect import resolve_device
from dfdc.faces.store import decode_reduction
from dfdc.io import atomic_path, write_json, write_parquet
from dfdc.metrics import binary_metrics, log_loss
from dfdc.models import build_model, model_norm
from dfdc.transforms import eval_transform, train_transform

log = logging.getLogger(__name__)

__all__ = [
    "FitResult",
    "Task",
    "fit",
    "fold_dir",
    "live_dir",
    "train_fold",
    "train_one_epoch",
    "validate",
]


def fold_dir(params: Params, fold: int) -> Path:
    return Path(params.train.models_dir) / params.train.run / f"fold{fold}"


def live_dir(params: Params, fold: int) -> Path:
    """Training curves: small files kept in git beside the run (dvc plots reads them)."""
    return Path(params.train.models_dir) / params.train.run / "dvclive" / f"fold{fold}"


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def smoothed_bce(
    logits: torch.Tensor, y: torch.Tensor, smoothing: float, balance_halves: bool
) -> torch.Tensor:
    """BCE on label-smoothed targets; with ``balance_halves``, the mean of the real half's
    and the fake half's losses (the DFDC winner's answer to 5 fakes per real)."""
    target = y * (1 - smoothing) + 0.5 * smoothing
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if balance_halves and (y > 0.5).any() and (y < 0.5).any():
        return 0.5 * (loss[y > 0.5].mean() + loss[y < 0.5].mean())
    return loss.mean()


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
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
    opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return 0.01 + 0.99 * step / max(1, warmup)
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * t)) if cfg.schedule == "cosine" else (1 - t) ** 0.9

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@dataclass
class Runtime:
    device: torch.device
    amp: bool
    channels_last: bool
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return nullcontext()

    def to_input(self, x: torch.Tensor | tuple) -> torch.Tensor | tuple:
        if isinstance(x, tuple | list):  # (padded sequences, lengths): lengths stay on the CPU
            return tuple(
                t.to(self.device, non_blocking=True) if t.is_floating_point() else t for t in x
            )
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def logits(self, model: torch.nn.Module, x: torch.Tensor | tuple) -> torch.Tensor:
        x = self.to_input(x)
        with self.autocast():
            out = model(*x) if isinstance(x, tuple) else model(x)
        return out.squeeze(1).float()


def train_one_epoch(
    model: torch.nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    cfg: TrainConfig,
    rt: Runtime,
    max_batches: int | None = None,
) -> dict[str, float]:
    model.train()
    total, count = 0.0, 0
    for i, (x, y) in enumerate(tqdm(loader, desc="train", leave=False, disable=not rt.main)):
        if max_batches is not None and i >= max_batches:
            break
        y = y.to(rt.device, non_blocking=True)
        logits = rt.logits(model, x)
        loss = smoothed_bce(logits, y, cfg.label_smoothing, cfg.balance == "loss")
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
    return {"loss": total / max(1, count), "lr": optimizer.param_groups[0]["lr"]}


@torch.inference_mode()
def validate(
    model: torch.nn.Module, loader: Iterable, rt: Runtime, max_batches: int | None = None
) -> np.ndarray:
    """FAKE probabilities of the loader's units (frames or tracks), in its order."""
    model.eval()
    probs = []
    for i, (x, _) in enumerate(tqdm(loader, desc="validate", leave=False, disable=not rt.main)):
        if max_batches is not None and i >= max_batches:
            break
        probs.append(torch.sigmoid(rt.logits(model, x)).cpu().numpy())
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


def _config_hash(params: Params, fold: int) -> str:
    d = {
        "train": to_dict(params.train),
        "cv": to_dict(params.cv),
        "seed": params.base.seed,
        "fold": fold,
    }
    d["cv"].pop("folds")
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _runtime(params: Params) -> Runtime:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device_name = resolve_device(params.base.device)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_name == "cuda" else "gloo")
    if device_name == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    cuda = device.type == "cuda"
    return Runtime(
        device, params.train.amp and cuda, params.train.channels_last and cuda, rank, world
    )


def _loader(ds: CropDataset, cfg: TrainConfig, rt: Runtime, train: bool) -> DataLoader:
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=False,  # the epoch plan is already shuffled (and sliced per rank)
        num_workers=cfg.num_workers,
        pin_memory=rt.device.type == "cuda",
        drop_last=train and len(ds) > cfg.batch_size,
        persistent_workers=False,
        worker_init_fn=_reseed_worker,
    )


def _reseed_worker(worker_id: int) -> None:
    """Each loader worker gets its own, reproducible augmentation stream."""
    info = torch.utils.data.get_worker_info()
    ds = info.dataset
    seed = (info.seed + worker_id) % 2**32
    ds.rng = np.random.default_rng(seed)
    if hasattr(ds.transform, "set_random_seed"):
        ds.transform.set_random_seed(seed)


@dataclass
class Task:
    """What the loop needs from one kind of model: the model, its loaders, and how its
    validation units (frames or tracks) become per-crop rows of the out-of-fold table."""

    model: torch.nn.Module
    unit: str  # "frame" | "track": names the unit-level validation log loss
    steps_per_epoch: int
    train_loader: Callable[[int], Iterable]  # epoch -> loader
    val_loader: Iterable
    val_labels: np.ndarray  # one per validation unit
    to_crops: Callable[[np.ndarray], tuple[list, np.ndarray]]  # unit probs -> crop items, probs
    checkpoint_extra: dict = field(default_factory=dict)  # saved in best.pt (an embedder)


def _frame_task(
    params: Params,
    fold: int,
    rt: Runtime,
    faces: pd.DataFrame,
    train_labels: dict[str, str],
    val_labels: dict[str, str],
) -> Task:
    cfg = params.train
    train_items = crop_items(faces, train_labels, cfg.train_tracks)
    val_items = crop_items(faces, val_labels, None)
    if not train_items or not val_items:
        raise ValueError(
            f"fold {fold}: no crops to train on or to validate (check the faces stage)"
        )
    model = build_model(cfg.model).to(rt.device)
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last)
    mean, std = model_norm(model)
    size = cfg.model.input_size
    reduce = decode_reduction(params.faces.crop_size, size)
    seed = params.base.seed

    def train_loader(epoch: int) -> DataLoader:
        plan = epoch_plan(train_items, cfg, epoch, seed, rt.rank, rt.world)
        aug_seed = (seed * 1000 + epoch) * 64 + rt.rank
        ds = CropDataset(
            plan,
            train_transform(cfg.aug, size, mean, std, seed=aug_seed),
            cfg.aug.part_dropout_p,
            seed=aug_seed,
            reduce=reduce,
        )
        return _loader(ds, cfg, rt, train=True)

    steps = len(epoch_plan(train_items, cfg, 0, seed, rt.rank, rt.world)) // cfg.batch_size
    val_ds = CropDataset(val_items, eval_transform(size, mean, std), reduce=reduce)
    return Task(
        model=model,
        unit="frame",
        steps_per_epoch=max(1, steps),
        train_loader=train_loader,
        val_loader=_loader(val_ds, cfg, rt, train=False),
        val_labels=np.array([it.label for it in val_items]),
        to_crops=lambda probs: (val_items, probs),
    )


def fit(
    params: Params,
    fold: int,
    max_batches: int | None = None,
    out_dir: Path | None = None,
    curves_dir: Path | None = None,
) -> FitResult:
    """Train one fold of a frame or sequence model; resume from ``last.pt`` when it was made
    with the same config."""
    cfg = params.train
    rt = _runtime(params)
    out = Path(out_dir) if out_dir is not None else fold_dir(params, fold)
    curves = Path(curves_dir) if curves_dir is not None else live_dir(params, fold)
    _seed_everything(params.base.seed + fold)

    faces = pd.read_parquet(params.faces.table_path)
    folds = pd.read_parquet(params.cv.path)
    if fold not in set(folds["fold"]):
        raise ValueError(f"fold {fold} is not in {params.cv.path} (folds 0..{folds['fold'].max()})")
    have = set(faces["video"])
    train_v = folds[(folds["fold"] != fold) & folds["name"].isin(have)]
    val_v = folds[(folds["fold"] == fold) & folds["name"].isin(have)]
    labels = {
        "train_labels": dict(zip(train_v["name"], train_v["label"], strict=True)),
        "val_labels": dict(zip(val_v["name"], val_v["label"], strict=True)),
    }
    if cfg.model.kind == "sequence":
        from dfdc.sequence import sequence_task

        task = sequence_task(params, fold, rt, faces, **labels)
    else:
        task = _frame_task(params, fold, rt, faces, **labels)
    model = task.model
    steps = task.steps_per_epoch
    if max_batches is not None:
        steps = min(steps, max_batches)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=rt.amp)
    net = model
    if rt.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None
        )

    chash = _config_hash(params, fold)
    start, best, best_epoch, history = 0, {"video_logloss": float("inf")}, -1, []
    last = out / "last.pt"
    if last.exists():
        state = torch.load(last, map_location=rt.device, weights_only=False)
        finished = state.get("epoch", -1) >= cfg.epochs - 1
        if finished:
            # DVC reruns a finished stage only when an input changed: train again.
            log.info("fold %d: %s is a finished run; training again", fold, last)
        elif state.get("config_hash") == chash:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            start, best, best_epoch, history = (
                state["epoch"] + 1,
                state["best"],
                state["best_epoch"],
                state["history"],
            )
            torch.set_rng_state(state["torch_rng"])
            log.info("fold %d: resuming after epoch %d", fold, state["epoch"])
        else:
            log.info("fold %d: %s was made with other params; starting over", fold, last)

    live = None
    if rt.main:
        from dvclive import Live

        out.mkdir(parents=True, exist_ok=True)
        live = Live(
            dir=str(curves), resume=start > 0, save_dvc_exp=False, dvcyaml=None, report=None
        )
        (out / "config.json").write_text(
            json.dumps({"fold": fold, "params": _resolved(params)}, indent=1) + "\n"
        )

    for epoch in range(start, cfg.epochs):
        tr = train_one_epoch(
            net,
            task.train_loader(epoch),
            optimizer,
            scheduler,
            scaler,
            cfg,
            rt,
            max_batches,
        )
        if rt.main:
            probs = validate(model, task.val_loader, rt)
            items, crop_probs = task.to_crops(probs)
            preds = video_predictions(items, crop_probs, fold, val_v)
            video = binary_metrics(preds["label"], preds["video_prob"])
            metrics = {
                "train_loss": tr["loss"],
                "lr": tr["lr"],
                f"{task.unit}_logloss": log_loss(task.val_labels[: len(probs)], probs),
                "video_logloss": video["logloss"],
                "video_auc": video["auc"],
                "video_accuracy": video["accuracy"],
            }
            history.append({"epoch": epoch, **metrics})
            for k, v in metrics.items():
                live.log_metric(("train/" if k in ("train_loss", "lr") else "val/") + k, v)
            live.next_step()
            log.info(
                "fold %d epoch %d: %s", fold, epoch, {k: round(v, 4) for k, v in metrics.items()}
            )
            if metrics["video_logloss"] < best["video_logloss"]:
                best, best_epoch = metrics, epoch
                best_state = {"model": model.state_dict(), "epoch": epoch, "metrics": metrics}
                _save(
                    out / "best.pt",
                    {
                        **best_state,
                        **task.checkpoint_extra,
                        "config": _resolved(params),
                        "fold": fold,
                    },
                )
                write_parquet(preds, out / "oof.parquet")
            _save(
                last,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch,
                    "best": best,
                    "best_epoch": best_epoch,
                    "history": history,
                    "config_hash": chash,
                    "torch_rng": torch.get_rng_state(),
                },
            )
        if rt.world > 1:
            import torch.distributed as dist

            dist.barrier()
    if rt.main:
        write_json({"fold": fold, "best_epoch": best_epoch, **best}, out / "metrics.json")
        live.end()
    return FitResult(out, best_epoch, best, history, model)


def _resolved(params: Params) -> dict:
    """What rebuilds the model without params.yaml: model, train and faces settings."""
    return {
        "train": to_dict(params.train),
        "faces": to_dict(params.faces),
        "cv": to_dict(params.cv),
        "base": to_dict(params.base),
    }


def _save(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train_fold(
    params_path: str, fold: int, smoke: bool = False, section: str = "train"
) -> FitResult:
    """The train stages' entry: folds come from the folds stage, settings from params.yaml's
    ``train`` section (or ``sequence``, the second run). ``smoke`` runs 2 batches an epoch,
    for tests of the wiring."""
    from dfdc.config import for_run, load_params

    params = for_run(load_params(params_path), section)
    return fit(params, fold, max_batches=2 if smoke else None)
