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

The kind is here; its network (:mod:`dfdc.kinds.sequence_head`), its embeddings and their cache
(:mod:`dfdc.kinds.embeddings`) and its track pipeline (:mod:`dfdc.kinds.tracks`) are modules
of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from dfdc.core.config import ModelConfig, SequenceRunConfig, to_dict
from dfdc.core.runtime import Runtime
from dfdc.crops.transforms import eval_transform
from dfdc.kinds.backbones import build_model, model_norm
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
from dfdc.kinds.embeddings import (
    Embedder,
    copy_embeddings,
    load_embedder,
    run_embeddings,
)
from dfdc.kinds.registry import register_kind
from dfdc.kinds.sequence_head import SequenceHead
from dfdc.kinds.tracks import (
    TrackDataset,
    TrackItem,
    collate_tracks,
    track_items,
    track_plan,
    track_probs,
)

log = logging.getLogger(__name__)

__all__ = ["SequenceKind"]


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
