"""Training losses: the classification loss every run uses, and the frame kind's loss for
models that return more than one logit (WS-DAN's views) or an altered-pixel map (the
segmentation head) in training (:mod:`dfdc.kinds.heads`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dfdc.core.config import TrainConfig

__all__ = ["frame_loss", "mask_loss", "smoothed_bce"]


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


def mask_loss(seg: torch.Tensor, mask: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """BCE of the decoder's per-cell logits (B, 1, h, w) against the masks (B, H, W) pooled to
    that grid (the altered fraction of each cell), over the crops whose mask is ``known``
    (a fake without its original has none; it trains on the classification loss alone)."""
    target = F.adaptive_avg_pool2d(mask.unsqueeze(1).float(), seg.shape[-2:])
    per = F.binary_cross_entropy_with_logits(seg.float(), target, reduction="none").mean((1, 2, 3))
    known = known.float()
    return (per * known).sum() / known.sum().clamp_min(1.0)


def frame_loss(
    out: torch.Tensor | dict, targets: list[torch.Tensor], cfg: TrainConfig
) -> torch.Tensor:
    """The frame run's loss: the classification loss averaged over the model's views (one
    column of ``logits`` each), plus ``train.masks.weight`` times the mask loss when the model
    returns ``seg`` and the batch carries masks (``targets``: labels[, masks, known])."""
    y = targets[0]
    if not isinstance(out, dict):
        out = {"logits": out}
    logits = out["logits"].float()
    balance = cfg.balance == "loss"
    loss = torch.stack(
        [
            smoothed_bce(logits[:, v], y, cfg.label_smoothing, balance)
            for v in range(logits.shape[1])
        ]
    ).mean()
    if "seg" in out and len(targets) >= 3 and cfg.masks.weight > 0:
        loss = loss + cfg.masks.weight * mask_loss(out["seg"], targets[1], targets[2])
    return loss
