"""The frame kind (a run section's ``kind: frame``, as ``train`` has): a timm CNN scores each
face crop."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from dfdc.core.config import TrainConfig
from dfdc.core.provenance import sha256_file
from dfdc.core.runtime import Runtime
from dfdc.crops.datasets import (
    CropDataset,
    collate_groups,
    crop_items,
    epoch_plan,
    fake_originals,
    plan_group,
    sbi_skipped,
)
from dfdc.crops.losses import frame_loss
from dfdc.crops.transforms import eval_transform, train_transform
from dfdc.faces.store import decode_reduction
from dfdc.kinds.backbones import (
    build_model,
    grad_cam,
    model_norm,
    pooled_classifier,
    pooled_features,
)
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
from dfdc.kinds.registry import register_kind
from dfdc.masks.store import MaskStore

log = logging.getLogger(__name__)

__all__ = ["FrameKind"]


@register_kind
class FrameKind(ModelKind):
    name = "frame"
    section = "train"
    config_class = TrainConfig
    embeds = True  # its pooled features can embed crops for a sequence run

    def task(self, ctx: TrainContext) -> Task:
        cfg: TrainConfig = ctx.run
        fold, rt, seed = ctx.fold, ctx.rt, ctx.seed
        train_items = crop_items(ctx.crops, ctx.train_labels, cfg.train_tracks)
        val_items = crop_items(ctx.crops, ctx.val_labels, None)
        if not train_items or not val_items:
            raise ValueError(
                f"fold {fold}: no crops to train on or to validate (check the faces stage)"
            )
        model = rt.place(build_model(cfg.model, seg_head=cfg.masks.weight > 0))
        mean, std = model_norm(model)
        size = cfg.model.input_size
        reduce = decode_reduction(ctx.faces.crop_size, size)
        group = plan_group(cfg)
        originals = fake_originals(ctx.folds, ctx.train_labels)
        masks = MaskStore.open(ctx.masks_table) if cfg.masks.used else None
        if masks is not None:
            fake = [it for it in train_items if it.label == 1.0]
            without = sum(1 for it in fake if (it.video, it.crop_index) not in masks)
            log.info(
                "fold %d: %d of %d training fake crops have no difference mask (no original): "
                "classification loss only", fold, without, len(fake),
            )  # fmt: skip
        if cfg.sbi.p > 0 and (skipped := sbi_skipped(train_items)):
            log.info(
                "fold %d: %d real crops without usable landmarks get no self-blend", fold, skipped
            )

        # train.compress: each draw from a compressed copy's crops with probability p.
        copies = [
            dict(zip(t["source_file"], t["file"], strict=True))
            for t in (_file_map(table) for table in ctx.train_copies.values())
        ]
        if cfg.compress.p > 0 and not copies:
            log.warning("fold %d: train.compress.p is %g but there are no copies (compress "
                        "stage)", fold, cfg.compress.p)  # fmt: skip

        def plan(epoch: int) -> list:
            return epoch_plan(train_items, cfg, epoch, seed, rt.rank, rt.world, originals)

        def train_loader(epoch: int):
            aug_seed = (seed * 1000 + epoch) * 64 + rt.rank
            ds = CropDataset(
                plan(epoch),
                train_transform(cfg.aug, size, mean, std, seed=aug_seed, pairs=group == 2),
                cfg.aug.part_dropout_p,
                seed=aug_seed,
                reduce=reduce,
                group=group,
                sbi=cfg.sbi,
                masks=masks,
                mask_targets=cfg.masks.weight > 0,
                guide=cfg.masks.guide_dropout,
                copies=copies,
                copy_p=cfg.compress.p,
            )
            # A batch holds batch_size crops: batch_size / 2 pairs when the plan is of pairs.
            collate = collate_groups if group == 2 else None
            return make_loader(ds, cfg.batch_size // group, cfg.num_workers, rt, True, collate)

        first = plan(0)
        if not first:
            raise ValueError(
                f"fold {fold}: the epoch plan is empty (balance {cfg.balance!r}; with pairs, "
                "the training fakes need their originals' crops of the same frames)"
            )
        steps = len(first) // cfg.batch_size
        val_ds = CropDataset(val_items, eval_transform(size, mean, std), reduce=reduce)
        copy_validation = {}
        for level, table in ctx.val_copies.items():
            items = crop_items(table, ctx.val_labels, None)
            if items:
                ds = CropDataset(items, eval_transform(size, mean, std), reduce=reduce)
                loader = make_loader(ds, cfg.batch_size, cfg.num_workers, rt, train=False)
                copy_validation[level] = (loader, lambda probs, items=items: (items, probs))
        return Task(
            model=model,
            unit="frame",
            steps_per_epoch=max(1, steps),
            train_loader=train_loader,
            val_loader=make_loader(val_ds, cfg.batch_size, cfg.num_workers, rt, train=False),
            val_labels=np.array([it.label for it in val_items]),
            to_crops=lambda probs: (val_items, probs),
            checkpoint_extra={"weights": getattr(model, "pretrained_weights", {})},
            loss=lambda out, targets: frame_loss(out, targets, cfg),
            copy_validation=copy_validation,
        )

    def load(self, checkpoint, rt: Runtime) -> LoadedModel:
        # The weights come from the checkpoint: never fetch or read pretrained ones again.
        mcfg = replace(checkpoint.run.model, pretrained=False, pretrained_file="")
        model = build_model(mcfg, seg_head=checkpoint.run.masks.weight > 0)
        model.load_state_dict(checkpoint.model)
        model = rt.place(model).eval()
        mean, std = model_norm(model)
        # Its pooled features are shared with the sequence models that embed with this same
        # file (their embedder's identity is the same digest) when its logit is their image.
        shared = pooled_classifier(model, mcfg.input_size) is not None
        return LoadedModel(
            checkpoint.name,
            self,
            model,
            mcfg.input_size,
            eval_transform(mcfg.input_size, mean, std),
            checkpoint.faces,
            backbone_id=f"run:{sha256_file(checkpoint.path)}" if shared else "",
            input_key=(mcfg.input_size, mean, std),
        )

    def explain(self, model: LoadedModel, batch: CropBatch, picks: list[int]) -> dict:
        """Grad-CAM of the FAKE logit on the last feature map, for the picked crops."""
        if not picks:
            return {}
        x = torch.cat(model_inputs(model, batch))[picks]
        return {"heatmaps": grad_cam(model.model, x.to(batch.rt.device))}

    def export_parts(self, model: LoadedModel) -> ExportParts:
        if model.backbone_id:  # its pooled features are shared: both outputs from one pass
            return ExportParts(_PooledAndLogit(model.model), ("pooled", "logit"), "logit")
        return ExportParts(_Logit(model.model), ("logit",), "logit")

    @torch.inference_mode()
    def crop_probs(self, model: LoadedModel, batch: CropBatch) -> np.ndarray:
        xs = model_inputs(model, batch)
        if model.backbone_id:
            head = model.model.get_classifier()
            pooled = batch.pooled(model.backbone_id, xs, lambda x: pooled_features(model.model, x))
            logits = [head(f).squeeze(1).float() for f in pooled]
        else:
            logits = [batch.rt.logits(model.model, x) for x in xs]
        probs = [torch.sigmoid(z).cpu().numpy() for z in logits]
        return np.concatenate(probs) if probs else np.zeros(0)


class _PooledAndLogit(torch.nn.Module):
    """Crops -> (pooled features, logit): the frame model's pass that its sequence twins share."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = pooled_features(self.net, x)
        return pooled, self.net.get_classifier()(pooled)[:, 0]


class _Logit(torch.nn.Module):
    """Crops -> logit, for a model whose logit is not its classifier of the pooled features."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


def _file_map(copies: pd.DataFrame) -> pd.DataFrame:
    """(source_file, file) of a copy level's table: each faces file and its copy's."""
    return copies.drop_duplicates("video")[["source_file", "file"]]
