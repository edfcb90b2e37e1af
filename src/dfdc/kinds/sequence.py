"""The temporal model (a run section's ``kind: sequence``, as ``sequence`` has): per-frame face
embeddings along a track into an LSTM or GRU, one logit per track (a Long-term Recurrent
Convolutional Network).

Face swaps are made frame by frame, so a fake face tends to flicker; a recurrent head over the
track can see that where a frame classifier averaged over frames cannot, or so the claim goes.
Embeddings come from the same fold's trained frame model (or a frozen backbone), computed once
per fold and cached, so the head trains in seconds. Temporal augmentation works on the cached
embeddings: sub-sequences, frame-rate changes and reversal. One track's probability is given to
each of its crops, so out-of-fold tables, ``dfdc predict`` and the kernel aggregate sequence
and frame models with the same code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import Dataset

from dfdc.core.config import FacesConfig, ModelConfig, SequenceConfig, SequenceRunConfig, to_dict
from dfdc.core.io import atomic_path
from dfdc.core.layout import fold_checkpoint
from dfdc.core.progress import progress
from dfdc.core.provenance import config_digest, sha256_file
from dfdc.core.runtime import Runtime
from dfdc.crops.datasets import balanced_videos
from dfdc.crops.transforms import eval_transform
from dfdc.faces.store import decode_crop, decode_reduction, load_video_faces
from dfdc.kinds.backbones import build_model, model_norm, pooled_features
from dfdc.kinds.base import (
    CropBatch,
    ExportParts,
    LoadedModel,
    ModelKind,
    Task,
    TrainContext,
    make_loader,
    model_inputs,
)
from dfdc.kinds.checkpoint import read_checkpoint
from dfdc.kinds.registry import get_kind, register_kind

log = logging.getLogger(__name__)

__all__ = [
    "Embedder",
    "SequenceHead",
    "SequenceKind",
    "TrackDataset",
    "TrackItem",
    "augment_track",
    "collate_tracks",
    "copy_embeddings",
    "embed_crops",
    "fold_embeddings",
    "load_embedder",
    "run_embeddings",
    "track_items",
    "track_probs",
]


class SequenceHead(nn.Module):
    """LayerNorm, then a (bi)LSTM/GRU over the packed sequence; the last hidden states and the
    mean of the outputs over the real steps feed one logit. Packing means padding never
    reaches the recurrence, so a padded step cannot change a track's output."""

    def __init__(self, in_dim: int, cfg: SequenceConfig) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.dirs = 2 if cfg.bidirectional else 1
        self.norm = nn.LayerNorm(in_dim)
        rnn = nn.LSTM if cfg.rnn == "lstm" else nn.GRU
        self.rnn = rnn(
            in_dim,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(2 * self.dirs * cfg.hidden, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.norm(x), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, h = self.rnn(packed)
        h = h[0] if isinstance(h, tuple) else h  # LSTM: (h_n, c_n)
        last = h[-self.dirs :].transpose(0, 1).reshape(x.shape[0], -1)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        steps = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        mean = (out * steps[..., None]).sum(1) / lengths.to(x.device)[:, None].clamp(min=1)
        return self.fc(self.drop(torch.cat([last, mean], dim=1)))

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` of tracks with every step real (lengths all ``T``), without packing:
        the graph ONNX exports, since inference scores one whole track at a time."""
        out, h = self.rnn(self.norm(x))
        h = h[0] if isinstance(h, tuple) else h
        last = h[-self.dirs :].transpose(0, 1).reshape(x.shape[0], -1)
        return self.fc(self.drop(torch.cat([last, out.mean(1)], dim=1)))


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


@dataclass(frozen=True)
class TrackItem:
    video: str
    track: int
    label: float
    rows: tuple[int, ...]  # rows of the faces table (and the embeddings), in frame order
    frames: tuple[int, ...]


def track_items(
    faces: pd.DataFrame, labels: dict[str, str], max_tracks: int | None
) -> list[TrackItem]:
    """One item per face track of the labelled videos (tracks ``< max_tracks`` when given)."""
    table = faces.assign(_pos=np.arange(len(faces)))
    table = table[table["video"].isin(labels)]
    if max_tracks is not None:
        table = table[table["track"] < max_tracks]
    items = []
    for (video, track), g in table.sort_values("frame").groupby(["video", "track"], sort=True):
        items.append(
            TrackItem(
                video,
                int(track),
                float(labels[video] == "FAKE"),
                tuple(int(r) for r in g["_pos"]),
                tuple(int(f) for f in g["frame"]),
            )
        )
    return items


def augment_track(x: np.ndarray, cfg: SequenceConfig, rng: np.random.Generator) -> np.ndarray:
    """Sub-sequence, frame-rate change (drop every other step, or repeat each) and reversal."""
    n = len(x)
    lo = min(cfg.min_len, n)
    if rng.random() < cfg.subseq_p and n > lo:
        length = int(rng.integers(lo, n + 1))
        start = int(rng.integers(0, n - length + 1))
        x = x[start : start + length]
    if rng.random() < cfg.rate_p:
        if rng.random() < 0.5 and len(x) // 2 >= lo:
            x = x[int(rng.integers(0, 2)) :: 2]
        else:
            x = np.repeat(x, 2, axis=0)
    if rng.random() < cfg.reverse_p:
        x = x[::-1]
    return np.ascontiguousarray(x)


class TrackDataset(Dataset):
    """Tracks of cached embeddings, temporally augmented when ``cfg`` is given. With
    ``copies`` (per compression level, embeddings of the same rows cut from that level's
    copies, :func:`copy_embeddings`) a track is read from one level, drawn uniformly, with
    probability ``copy_p``, so the head also trains on the embeddings a compressed video gives
    (on the shared FF++ clips this changed nothing: the frame model that embeds them trained on
    the copies too, and the head fit them as tightly; docs/robustness.md)."""

    def __init__(
        self,
        items: list[TrackItem],
        embeddings: np.ndarray,
        cfg: SequenceConfig | None = None,
        seed: int = 0,
        copies: list[np.ndarray] | None = None,
        copy_p: float = 0.0,
    ) -> None:
        self.items, self.embeddings, self.cfg = items, embeddings, cfg
        self.rng = np.random.default_rng(seed)
        self.copies = copies or []
        self.copy_p = copy_p if self.copies else 0.0

    def __len__(self) -> int:
        return len(self.items)

    def _source(self) -> np.ndarray:
        if self.copy_p <= 0 or self.rng.random() >= self.copy_p:
            return self.embeddings
        return self.copies[int(self.rng.integers(len(self.copies)))]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        it = self.items[i]
        x = self._source()[list(it.rows)].astype(np.float32)
        if self.cfg is not None:
            x = augment_track(x, self.cfg, self.rng)
        return torch.from_numpy(x), torch.tensor(it.label, dtype=torch.float32)


def collate_tracks(
    batch: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Pad to the longest track; the lengths travel with the batch for packing."""
    xs, ys = zip(*batch, strict=True)
    lengths = torch.tensor([len(x) for x in xs], dtype=torch.int64)
    return (pad_sequence(list(xs), batch_first=True), lengths), torch.stack(ys)


def track_plan(
    items: list[TrackItem], clips: int, balance: str, epoch: int, seed: int, rank: int, world: int
) -> list[TrackItem]:
    """One epoch: the tracks of the balanced videos, each ``clips`` times (each draw gets its
    own temporal augmentation), shuffled, and this rank's equal share."""
    rng = np.random.default_rng([seed, epoch])
    by_video: dict[str, list[TrackItem]] = {}
    for it in items:
        by_video.setdefault(it.video, []).append(it)
    chosen = balanced_videos({v: ts[0].label for v, ts in by_video.items()}, balance, rng)
    plan = [t for v in chosen for t in by_video[v] for _ in range(clips)]
    plan = [plan[i] for i in rng.permutation(len(plan))]
    per_rank = len(plan) // world
    return plan[rank * per_rank : (rank + 1) * per_rank]


@torch.inference_mode()
def track_probs(
    head: SequenceHead,
    embeddings: np.ndarray,
    tracks: np.ndarray,
    frames: np.ndarray,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Each crop gets its track's probability (tracks ordered by frame, as in training)."""
    probs = np.zeros(len(tracks), np.float64)
    if len(tracks) == 0:
        return probs
    head.eval()
    for t in np.unique(tracks):
        idx = np.flatnonzero(tracks == t)
        idx = idx[np.argsort(frames[idx], kind="stable")]
        x = torch.from_numpy(embeddings[idx].astype(np.float32))[None].to(device)
        logit = head(x, torch.tensor([len(idx)]))
        probs[idx] = float(torch.sigmoid(logit.float()).squeeze())
    return probs


def _validation(
    items: list[TrackItem], embeddings: np.ndarray, cfg: SequenceRunConfig, rt: Runtime
) -> tuple[Iterable, Callable[[np.ndarray], tuple[list, np.ndarray]]]:
    """(loader over the tracks ``items``, track probabilities -> per-crop rows of the
    out-of-fold table, in track order)."""
    crop_rows = [
        SimpleNamespace(video=it.video, frame=f, track=it.track) for it in items for f in it.frames
    ]
    sizes = np.array([len(it.frames) for it in items])

    def to_crops(probs: np.ndarray) -> tuple[list, np.ndarray]:
        n = len(probs)
        return crop_rows[: int(sizes[:n].sum())], np.repeat(probs, sizes[:n])

    ds = TrackDataset(items, embeddings)
    return make_loader(ds, cfg.batch_size, cfg.num_workers, rt, False, collate_tracks), to_crops


@register_kind
class SequenceKind(ModelKind):
    name = "sequence"
    section = "sequence"
    config_class = SequenceRunConfig
    embeds = False

    def task(self, ctx: TrainContext) -> Task:
        cfg: SequenceRunConfig = ctx.run
        seq, fold, rt, seed = cfg.sequence, ctx.fold, ctx.rt, ctx.seed
        labelled = set(ctx.train_labels) | set(ctx.val_labels)
        faces = ctx.crops[ctx.crops["video"].isin(labelled)].reset_index(drop=True)
        embeddings, embedded_by = run_embeddings(ctx, faces)
        # The fold's own embedder goes into the checkpoint: at inference every video is unseen.
        emb = load_embedder(cfg, fold, ctx.models_dir, seed)
        train_items = track_items(faces, ctx.train_labels, cfg.train_tracks)
        val_items = track_items(faces, ctx.val_labels, None)
        if not train_items or not val_items:
            raise ValueError(f"fold {fold}: no face tracks to train on or to validate")
        model = SequenceHead(embeddings.shape[1], seq).to(rt.device)

        def plan(epoch: int) -> list[TrackItem]:
            return track_plan(
                train_items, seq.clips_per_track, cfg.balance, epoch, seed, rt.rank, rt.world
            )

        # compress: each training track's embeddings from a compressed copy with probability p.
        copies = []
        if cfg.compress.p > 0:
            copies = [copy_embeddings(ctx, faces, level, embeddings) for level in ctx.train_copies]
            if not copies:
                log.warning("fold %d: sequence compress.p is %g but there are no copies "
                            "(compress stage)", fold, cfg.compress.p)  # fmt: skip

        def train_loader(epoch: int):
            aug_seed = (seed * 1000 + epoch) * 64 + rt.rank
            ds = TrackDataset(plan(epoch), embeddings, seq, aug_seed, copies, cfg.compress.p)
            return make_loader(ds, cfg.batch_size, cfg.num_workers, rt, True, collate_tracks)

        val_loader, to_crops = _validation(val_items, embeddings, cfg, rt)
        copy_validation = {}
        for level, table in ctx.val_copies.items():
            rows = table[table["video"].isin(ctx.val_labels)].reset_index(drop=True)
            items = track_items(rows, ctx.val_labels, None)
            if items:
                vectors, _ = run_embeddings(ctx, rows, f"@{level}")
                copy_validation[level] = _validation(items, vectors, cfg, rt)
        return Task(
            model=model,
            unit="track",
            steps_per_epoch=max(1, len(plan(0)) // cfg.batch_size),
            train_loader=train_loader,
            val_loader=val_loader,
            val_labels=np.array([it.label for it in val_items]),
            to_crops=to_crops,
            copy_validation=copy_validation,
            checkpoint_extra={
                "embedder": {
                    "model_config": to_dict(emb.model_config),
                    "state": emb.module.net.state_dict(),
                    "identity": emb.identity,
                }
            },
            inputs={"embedder": embedded_by},
        )

    def load(self, checkpoint, rt: Runtime) -> LoadedModel:
        """The head, and the embedder saved inside the checkpoint (so the kernel needs no
        frame run beside it)."""
        saved = checkpoint.extra["embedder"]
        ecfg = ModelConfig(**{**saved["model_config"], "pretrained": False, "pretrained_file": ""})
        net = build_model(ecfg)
        net.load_state_dict(saved["state"])
        embedder = Embedder(net).eval().to(rt.device)
        head = SequenceHead(embedder.dim, checkpoint.run.sequence)
        head.load_state_dict(checkpoint.model)
        mean, std = model_norm(net)
        return LoadedModel(
            checkpoint.name,
            self,
            head.eval().to(rt.device),
            ecfg.input_size,
            eval_transform(ecfg.input_size, mean, std),
            checkpoint.faces,
            embedder=embedder,
            # "run:<sha256 of the frame checkpoint>" when it embeds with a frame run's fold:
            # the same id as that frame model's, so the two share one backbone pass.
            backbone_id=saved.get("identity", ""),
            input_key=(ecfg.input_size, mean, std),
        )

    @torch.inference_mode()
    def explain(self, model: LoadedModel, batch: CropBatch, picks: list[int]) -> dict:
        """Occlusion over time: each crop's ``frame_effect`` is its track's probability minus
        the probability with that one frame left out (positive: the frame pushed toward fake)."""
        pooled = batch.pooled(model.backbone_id, model_inputs(model, batch), model.embedder)
        if not pooled:
            return {}
        emb = np.concatenate([f.float().cpu().numpy().astype(np.float16) for f in pooled])
        tracks, frames, device = batch.tracks, batch.frames, batch.rt.device
        effect = np.zeros(len(tracks), np.float64)

        def zeros(rows: np.ndarray) -> np.ndarray:  # one track: every row in track 0
            return np.zeros(len(rows), np.int64)

        for t in np.unique(tracks):
            idx = np.flatnonzero(tracks == t)
            idx = idx[np.argsort(frames[idx], kind="stable")]
            full = track_probs(model.model, emb[idx], zeros(idx), frames[idx], device)[0]
            for k, i in enumerate(idx):
                rest = np.delete(idx, k)
                if len(rest) == 0:
                    continue
                left = track_probs(model.model, emb[rest], zeros(rest), frames[rest], device)[0]
                effect[i] = full - left
        return {"frame_effect": effect}

    def export_parts(self, model: LoadedModel) -> ExportParts:
        return ExportParts(
            _Pooled(model.embedder), ("pooled",), "pooled", head=_FullTrack(model.model)
        )

    def crop_probs(self, model: LoadedModel, batch: CropBatch) -> np.ndarray:
        # The embedder's pass is shared with the frame model of the same checkpoint, when the
        # ensemble holds it (CropBatch); float16 as in the training cache.
        pooled = batch.pooled(model.backbone_id, model_inputs(model, batch), model.embedder)
        emb = (
            np.concatenate([f.float().cpu().numpy().astype(np.float16) for f in pooled])
            if pooled
            else np.zeros((0, model.embedder.dim), np.float16)
        )
        return track_probs(model.model, emb, batch.tracks, batch.frames, batch.rt.device)


class _Pooled(nn.Module):
    """Crops -> pooled features (float32; the engine rounds them to float16 as the cache)."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedder(x)


class _FullTrack(nn.Module):
    """One track's embeddings (1, T, D) -> its logit (1,)."""

    def __init__(self, head: SequenceHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.forward_full(x)[:, 0]
