"""Frame classifiers: any timm backbone by name with a single-logit head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import timm
import torch

from dfdc.core.config import ModelConfig
from dfdc.core.provenance import sha256_file
from dfdc.kinds.heads import AttentionHead, SegmentationAux
from dfdc.kinds.residuals import NoiseResidualInput
from dfdc.kinds.weights import package_weights

__all__ = ["build_model", "grad_cam", "model_norm", "pooled_classifier", "pooled_features"]


def build_model(cfg: ModelConfig, seg_head: bool = False) -> torch.nn.Module:
    """A timm backbone with one logit. ``pretrained: true`` uses timm's own loader (ImageNet
    weights, for users with internet); ``pretrained: package`` converts the weights an
    installed package ships (:mod:`dfdc.kinds.weights`); ``pretrained_file`` loads any local
    file. The last two go through timm's ``pretrained_cfg_overlay`` (the 1000-class classifier
    dropped since its shape differs), offline. Where the weights came from, with their digest,
    is ``model.pretrained_weights`` (saved in the checkpoint). ``cfg.srm`` adds the noise
    residual input, ``cfg.wsdan_maps`` the WS-DAN head, ``seg_head`` the altered-pixel decoder
    (:mod:`dfdc.kinds.heads`)."""
    kwargs: dict = {
        "num_classes": 1,
        "drop_rate": cfg.drop_rate,
        "drop_path_rate": cfg.drop_path_rate or None,
        # With SRM residuals the stem takes 6 channels; timm spreads pretrained stem weights.
        "in_chans": 6 if cfg.srm else None,
    }
    pretrained = bool(cfg.pretrained)
    origin: dict = {"source": "timm (download)"} if cfg.pretrained is True else {}
    if cfg.pretrained_file:
        path = Path(cfg.pretrained_file)
        if not path.exists():
            raise FileNotFoundError(f"{path}: train.model.pretrained_file does not exist")
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        pretrained = True
        origin = {"file": str(path), "sha256": sha256_file(path), "source": "pretrained_file"}
    elif cfg.pretrained == "package":
        weights = package_weights(cfg.backbone, cfg.weights_dir)
        kwargs["pretrained_cfg_overlay"] = {"file": str(weights.path)}
        origin = weights.as_dict()
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        model = timm.create_model(cfg.backbone, pretrained=pretrained, **kwargs)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ValueError(f"train.model.backbone: timm has no model {cfg.backbone!r}") from None
        raise
    except TypeError as exc:
        if "drop_path_rate" in str(exc):
            raise ValueError(
                f"train.model.drop_path_rate: {cfg.backbone} has no drop path; set it to 0"
            ) from None
        raise
    if cfg.srm:
        model = NoiseResidualInput(model)
    _small_head(model)
    if cfg.wsdan_maps:
        model = AttentionHead(
            model,
            cfg.wsdan_maps,
            cfg.wsdan_crop,
            cfg.wsdan_drop,
            cfg.wsdan_eval_crop,
            cfg.drop_rate,
        )
    if seg_head:
        model = SegmentationAux(model)
    model.pretrained_weights = origin
    return model


def _small_head(model: torch.nn.Module) -> None:
    """Start the one-logit head near p = 0.5. timm's EfficientNet initialises a classifier
    uniformly in +-1/sqrt(outputs): with one output that is +-1 per weight, and the first
    logits on real face crops were -13 to +16 (std 9 over 8 FF++ crops), so the first epochs
    of a pretrained fine-tune (train loss 3.7 in epoch 0) were spent undoing the head,
    disturbing the pretrained features on the way."""
    head = model.get_classifier()
    if isinstance(head, torch.nn.Linear):
        torch.nn.init.normal_(head.weight, std=0.01)
        torch.nn.init.zeros_(head.bias)


def model_norm(model: torch.nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std the backbone was (or would be) pretrained with."""
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    return tuple(cfg.get("mean", (0.485, 0.456, 0.406))), tuple(
        cfg.get("std", (0.229, 0.224, 0.225))
    )


def pooled_features(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A timm model's pooled pre-logit features: what its classifier sees, and what a sequence
    run embeds each crop with."""
    return net.forward_head(net.forward_features(x), pre_logits=True)


@torch.inference_mode()
def pooled_classifier(model: torch.nn.Module, input_size: int) -> torch.nn.Module | None:
    """The module that turns :func:`pooled_features` into the model's eval logit, where that is
    exactly what the model computes, else None. A head whose eval logit needs more than the
    pooled features says so (``logit_from_pooled = False``: WS-DAN's also looks at an
    attention crop of the input); for the rest it is checked on a probe input."""
    if not getattr(model, "logit_from_pooled", True):  # a head that says so (WS-DAN)
        return None
    try:
        head = model.get_classifier()
    except (AttributeError, NotImplementedError):
        return None
    if not isinstance(head, torch.nn.Module):
        return None
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(0)
    param = next(model.parameters())
    x = torch.randn(2, 3, input_size, input_size, generator=gen).to(param.device)
    full = model(x)
    split = head(pooled_features(model, x))
    model.train(was_training)
    if not isinstance(full, torch.Tensor) or full.shape != split.shape:
        return None
    return head if torch.allclose(full, split, rtol=0, atol=1e-6) else None


def grad_cam(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """(N, S, S) Grad-CAM maps in [0, 1] of the FAKE logit (Selvaraju et al.): the last feature
    map's channels weighted by the mean gradient of the logit on each, summed, rectified,
    upsampled bilinearly to the input and scaled by each map's maximum. Where a map is all zero
    (no positive evidence) it stays zero."""
    was_training = model.training
    model.eval()
    with torch.enable_grad():
        feats = model.forward_features(x.detach())
        logit = model.forward_head(feats)
        logit = logit if logit.dim() == 1 else logit[:, 0]
        (grads,) = torch.autograd.grad(logit.sum(), feats)
    model.train(was_training)
    weights = grads.mean((2, 3), keepdim=True)
    cam = torch.relu((weights * feats).sum(1, keepdim=True)).detach()
    cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear",
                                          align_corners=False)[:, 0]  # fmt: skip
    peak = cam.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return (cam / peak).float().cpu().numpy()
