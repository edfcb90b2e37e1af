"""Per-frame face embeddings for the sequence kind: the embedder (a frame run's fold model or a
frozen backbone), its pass over a video's crops, and the per-fold cache (keyed by the
embedder and the crops, so a changed model or faces table is embedded again).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from dfdc.core.config import FacesConfig, ModelConfig, SequenceRunConfig, to_dict
from dfdc.core.io import atomic_path
from dfdc.core.layout import fold_checkpoint
from dfdc.core.progress import progress
from dfdc.core.provenance import config_digest, sha256_file
from dfdc.crops.transforms import eval_transform
from dfdc.faces.store import decode_crop, decode_reduction, load_video_faces
from dfdc.kinds.backbones import build_model, model_norm, pooled_features
from dfdc.kinds.base import (
    TrainContext,
)
from dfdc.kinds.checkpoint import read_checkpoint
from dfdc.kinds.registry import get_kind

log = logging.getLogger(__name__)

__all__ = [
    "Embedder",
    "LoadedEmbedder",
    "copy_embeddings",
    "embed_crops",
    "fold_embeddings",
    "load_embedder",
    "run_embeddings",
]


class Embedder(nn.Module):
    """A timm model's pooled pre-logit features: what its classifier sees."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    @property
    def dim(self) -> int:
        # A WS-DAN head pools maps x channels features; any other head, the backbone's.
        return int(getattr(self.net, "pooled_features", self.net.num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pooled_features(self.net, x)


@dataclass
class LoadedEmbedder:
    module: Embedder
    model_config: ModelConfig
    identity: str  # changes whenever the embeddings would


def load_embedder(
    run: SequenceRunConfig, fold: int, models_dir: str | Path, seed: int
) -> LoadedEmbedder:
    """The fold's embedder: the frame run's best.pt for this fold, or the frozen backbone."""
    seq = run.sequence
    if seq.embed in ("run", "oof"):
        ckpt = fold_checkpoint(models_dir, seq.embed_run, fold)
        if not ckpt.exists():
            raise FileNotFoundError(
                f"{ckpt}: model.sequence.embed_run '{seq.embed_run}' has no fold {fold} model "
                "(train that frame run first: dvc repro train)"
            )
        frame_ckpt = read_checkpoint(ckpt)
        if not get_kind(frame_ckpt.kind).embeds:
            raise ValueError(
                f"{ckpt}: embed_run must be a run whose models embed crops, not {frame_ckpt.kind}"
            )
        mcfg = replace(frame_ckpt.run.model, pretrained=False, pretrained_file="")
        net = build_model(mcfg)
        net.load_state_dict(frame_ckpt.model)
        identity = f"run:{sha256_file(ckpt)}"
    else:
        mcfg = run.embed_model
        torch.manual_seed(seed)  # a random backbone is still a fixed one
        net = build_model(mcfg)
        weights = sha256_file(mcfg.pretrained_file) if mcfg.pretrained_file else ""
        identity = "backbone:" + json.dumps(
            [mcfg.backbone, mcfg.pretrained, weights, seed, mcfg.input_size]
        )
    return LoadedEmbedder(Embedder(net).eval(), mcfg, identity)


@torch.inference_mode()
def embed_crops(
    embedder: Embedder,
    crops: list[bytes],
    transform: object,
    reduce: int,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
) -> np.ndarray:
    """Embeddings of JPEG/PNG crops through the embedder's eval ``transform``, stored as float16
    (the cache's precision, used at prediction time too so training and inference see the same
    numbers)."""
    out = []
    for i in range(0, len(crops), batch_size):
        batch = crops[i : i + batch_size]
        x = torch.stack([transform(image=decode_crop(c, reduce))["image"] for c in batch])
        out.append(embedder(x.to(device)).float().cpu().numpy().astype(np.float16))
    return np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float16)


def fold_embeddings(
    run: SequenceRunConfig,
    fold: int,
    faces: pd.DataFrame,
    faces_cfg: FacesConfig,
    models_dir: str | Path,
    seed: int,
    device: str | torch.device = "cpu",
    tag: str = "",
) -> tuple[np.ndarray, LoadedEmbedder]:
    """One embedding per row of ``faces`` (the faces table), cached per fold under a key of the
    embedder and the crops; a changed backbone, checkpoint or faces table gives a new key.
    ``tag`` names another cache of the fold (a compressed copy level's crops)."""
    emb = load_embedder(run, fold, models_dir, seed)
    seq = run.sequence
    faces_id = hashlib.sha256(pd.util.hash_pandas_object(faces, index=False).values).hexdigest()
    key = config_digest([emb.identity, faces_id, to_dict(faces_cfg)])
    # Under the embedder's name, not the sequence run's: runs that embed with the same models
    # (another seed, another head) share the pass; the key still tells the models apart.
    source = seq.embed_run if seq.embed != "backbone" else "backbone"
    path = Path(seq.cache_dir) / source / f"fold{fold}{tag}-{key}.npy"
    if path.exists():
        try:
            cached = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # a truncated cache: made again
            log.warning("%s: unreadable (%s); treated as missing", path, type(exc).__name__)
            cached = None
        if cached is not None and len(cached) == len(faces):
            log.info("fold %d: embeddings from cache %s", fold, path)
            return cached, emb
    module = emb.module.to(device)
    size = emb.model_config.input_size
    transform = eval_transform(size, *model_norm(module.net))
    reduce = decode_reduction(faces_cfg.crop_size, size)
    parts = np.zeros((len(faces), module.dim), np.float16)
    positions = np.arange(len(faces))
    for file, rows in progress(
        faces.assign(_pos=positions).groupby("file", sort=True), desc=f"embed fold {fold}"
    ):
        crops = load_video_faces(file).crops
        parts[rows["_pos"].to_numpy()] = embed_crops(
            module,
            [crops[i] for i in rows["crop_index"]],
            transform,
            reduce,
            device,
        )
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, parts)
    for stale in path.parent.glob(f"fold{fold}{tag}-*.npy"):
        if stale != path:
            stale.unlink()
    return parts, emb


def run_embeddings(ctx: TrainContext, rows: pd.DataFrame, tag: str = "") -> tuple[np.ndarray, str]:
    """(embeddings of ``rows`` for this fold's head, the identity of what embedded them).

    ``embed: oof`` embeds each video's rows with the frame model of the video's own fold,
    one that never trained on it: the fold's own model has fitted its training videos, so their
    embeddings separate the classes far better than an unseen video's, and a head trained on
    them learns nothing the frame model does not already say. Each video is embedded once, by
    one model, and the caches are shared by every fold's head."""
    run: SequenceRunConfig = ctx.run
    if run.sequence.embed != "oof":
        vectors, emb = fold_embeddings(
            run, ctx.fold, rows, ctx.faces, ctx.models_dir, ctx.seed, ctx.rt.device, tag
        )
        return vectors, emb.identity
    own = rows["video"].map(ctx.folds.set_index("name")["fold"])
    if own.isna().any():
        raise ValueError(f"fold {ctx.fold}: {rows['video'][own.isna()].iloc[0]} is in no fold")
    out: np.ndarray | None = None
    identities = []
    for j, idx in sorted(own.astype(int).groupby(own.astype(int)).indices.items()):
        part = rows.iloc[idx].reset_index(drop=True)
        vectors, emb = fold_embeddings(
            run, int(j), part, ctx.faces, ctx.models_dir, ctx.seed, ctx.rt.device, f"{tag}~own"
        )
        if out is None:
            out = np.zeros((len(rows), vectors.shape[1]), vectors.dtype)
        out[idx] = vectors
        identities.append(f"{j}={emb.identity}")
    if out is None:
        return np.zeros((0, 0), np.float16), "oof:"
    return out, "oof:" + ",".join(identities)


def copy_embeddings(
    ctx: TrainContext, faces: pd.DataFrame, level: str, fallback: np.ndarray
) -> np.ndarray:
    """Embeddings of copy level ``level``'s crops, row for row with ``faces`` (the fold's
    labelled rows): the training videos' rows embedded from the level's copy (the compress
    stage's faces table of the level, ``ctx.train_copies``), every other row ``fallback``'s
    (the originals'): a video without a copy, and the validation videos, which training never
    reads (embedding them would cost a third more for nothing)."""
    key = ["video", "crop_index"]
    table = ctx.train_copies[level]
    rows = table[table["video"].isin(ctx.train_labels)].reset_index(drop=True)
    out = fallback.copy()
    if rows.empty:
        return out
    vectors, _ = run_embeddings(ctx, rows, f"+{level}")
    where = (
        faces[key]
        .assign(_at=np.arange(len(faces)))
        .merge(rows[key].assign(_copy=np.arange(len(rows))), on=key)
    )
    out[where["_at"].to_numpy()] = vectors[where["_copy"].to_numpy()]
    return out
