"""Heads on a timm backbone beyond its one-logit classifier, and the wrapper they share.

- :class:`SegmentationAux`: a small decoder on the backbone's last feature map predicts which
  pixels were altered (the ``masks`` stage's difference masks; the DFDC winner's and seed
  004's auxiliary target). The classifier's logit stays the output; the decoder only adds a
  training loss (``train.masks.weight``).
- :class:`AttentionHead`: WS-DAN (Hu et al., 2019; the DFDC 2nd place, seed 001): M attention
  maps pool the features (bilinear attention pooling); in training one map crops and zooms a
  second view and another is erased from a third, so the model cannot lean on one region; at
  inference the view cropped by the mean map is averaged in.

In training, a wrapped model returns a dict (``logits``: (B, views), ``seg``: (B, 1, h, w)) that
:func:`dfdc.crops.losses.frame_loss` reads; in eval it returns (B, 1) logits like any timm
model, so validation, ``dfdc predict`` and the kernel use it unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AttentionHead", "SegmentationAux", "TimmWrapper", "attention_crop_boxes"]


class TimmWrapper(nn.Module):
    """Answers like the timm model it wraps (``forward_features``, ``forward_head``,
    ``num_features``, ``get_classifier``, ``pretrained_cfg``), so the loop, the sequence kind's
    embedder and inference need not know it is wrapped."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.net.forward_head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @property
    def num_features(self) -> int:
        return int(self.net.num_features)

    @property
    def pretrained_cfg(self) -> dict:
        return getattr(self.net, "pretrained_cfg", {})

    def get_classifier(self) -> nn.Module:
        return self.net.get_classifier()

    def reset_classifier(self, num_classes: int) -> None:
        self.net.reset_classifier(num_classes)


class SegmentationAux(TimmWrapper):
    """A timm model plus a two-layer decoder on its last feature map (one altered-pixel logit
    per feature cell; the target mask is pooled to that grid)."""

    def __init__(self, net: nn.Module, hidden: int = 64) -> None:
        super().__init__(net)
        self.decoder = nn.Sequential(
            nn.Conv2d(self.num_features, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        f = self.forward_features(x)
        logits = self.forward_head(f)
        if not self.training:
            return logits
        return {"logits": logits, "seg": self.decoder(f)}


def attention_crop_boxes(maps: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """(B, 4) boxes (x1, y1, x2, y2, end exclusive, in the maps' pixels) around each map's
    region above ``threshold`` times its maximum (``maps``: (B, H, W) non-negative)."""
    b, h, w = maps.shape
    peak = maps.flatten(1).amax(1).clamp_min(1e-12)
    region = maps >= (threshold * peak).view(b, 1, 1)
    rows, cols = region.any(2), region.any(1)
    ar_h = torch.arange(h, device=maps.device)
    ar_w = torch.arange(w, device=maps.device)
    y1 = torch.where(rows, ar_h, h).amin(1)
    y2 = torch.where(rows, ar_h, -1).amax(1) + 1
    x1 = torch.where(cols, ar_w, w).amin(1)
    x2 = torch.where(cols, ar_w, -1).amax(1) + 1
    return torch.stack([x1, y1, x2, y2], 1)


def crop_resize_matrix(
    start: torch.Tensor, length: torch.Tensor, out_size: int, full: int
) -> torch.Tensor:
    """(B, out_size, full): rows that cut ``[start, start + length)`` out of a ``full``-long
    axis and resize it to ``out_size`` as ``F.interpolate(mode="bilinear",
    align_corners=False)`` does (source index ``(i + 0.5) * length / out_size - 0.5``, clamped
    at 0; the next index clamped to the crop). One matrix product a side crops and resizes a
    whole batch, each image by its own box, in tensor ops that trace (so the model exports to
    ONNX with a dynamic batch)."""
    start, length = start[:, None], length[:, None]
    i = torch.arange(out_size, device=start.device, dtype=start.dtype)[None]
    src = ((i + 0.5) * (length / out_size) - 0.5).clamp_min(0)
    i0 = torch.minimum(src.floor(), length - 1)
    lam = src - i0
    i1 = torch.minimum(i0 + 1, length - 1)
    axis = torch.arange(full, device=start.device, dtype=start.dtype)[None, None]
    first = (axis == (start + i0)[..., None]).to(start.dtype)
    second = (axis == (start + i1)[..., None]).to(start.dtype)
    return (1 - lam)[..., None] * first + lam[..., None] * second


class AttentionHead(TimmWrapper):
    """WS-DAN on a timm backbone: ``maps`` attention maps (1x1 conv, BN, ReLU) over the last
    feature map; bilinear attention pooling (each map weights the features, averaged over the
    grid, signed square root, L2 norm) feeds a linear logit. The timm classifier is unused."""

    # Its eval logit averages in an attention crop's: the pooled features alone do not give it.
    logit_from_pooled = False

    def __init__(
        self,
        net: nn.Module,
        maps: int,
        crop: tuple[float, float] = (0.4, 0.6),
        drop: tuple[float, float] = (0.2, 0.5),
        eval_crop: float = 0.5,
        drop_rate: float = 0.2,
    ) -> None:
        super().__init__(net)
        # The timm classifier goes (its logit is not used): no parameter without a gradient,
        # which DistributedDataParallel would reject.
        net.reset_classifier(0)
        c = self.num_features
        self.maps = maps
        self.crop, self.drop, self.eval_crop = crop, drop, eval_crop
        self.attention = nn.Sequential(
            nn.Conv2d(c, maps, 1, bias=False), nn.BatchNorm2d(maps), nn.ReLU(inplace=True)
        )
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(maps * c, 1)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def get_classifier(self) -> nn.Module:
        return self.fc

    @property
    def pooled_features(self) -> int:
        return self.maps * self.num_features

    def pool(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled features (B, M * C), attention maps (B, M, h, w)) of a feature map."""
        a = self.attention(f)
        h, w = f.shape[-2:]
        bap = torch.einsum("bmhw,bchw->bmc", a, f) / (h * w)
        bap = torch.sign(bap) * torch.sqrt(bap.abs() + 1e-12)
        return F.normalize(bap.flatten(1), dim=1), a

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled, _ = self.pool(x)
        return pooled if pre_logits else self.fc(self.dropout(pooled))

    def _logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, a = self.pool(self.forward_features(x))
        return self.fc(self.dropout(pooled)), a

    def crop_view(
        self, x: torch.Tensor, maps: torch.Tensor, threshold: torch.Tensor
    ) -> torch.Tensor:
        """Each image cropped to its map's region above ``threshold`` (of the map's max), then
        resized back to the input size."""
        h, w = x.shape[-2:]
        up = F.interpolate(maps.unsqueeze(1), size=(h, w), mode="bilinear", align_corners=False)
        boxes = attention_crop_boxes(up.squeeze(1), threshold).to(x.dtype)
        rows = crop_resize_matrix(boxes[:, 1], boxes[:, 3] - boxes[:, 1], h, h)
        cols = crop_resize_matrix(boxes[:, 0], boxes[:, 2] - boxes[:, 0], w, w)
        return rows[:, None] @ x @ cols[:, None].transpose(-1, -2)

    def drop_view(
        self, x: torch.Tensor, maps: torch.Tensor, threshold: torch.Tensor
    ) -> torch.Tensor:
        """Each image with its map's region above ``threshold`` (of the map's max) erased."""
        up = F.interpolate(
            maps.unsqueeze(1), size=x.shape[-2:], mode="bilinear", align_corners=False
        )
        peak = up.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
        keep = (up < threshold.view(-1, 1, 1, 1) * peak).to(x.dtype)
        return x * keep

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        logits, a = self._logits(x)
        b = x.shape[0]
        with torch.no_grad():
            a = a.detach().float()
            if not self.training:  # the crop view by the mean map, its probability averaged in
                t = torch.full((b,), self.eval_crop, device=x.device)
                crop_logits, _ = self._logits(self.crop_view(x, a.mean(1), t))
                p = (torch.sigmoid(logits.float()) + torch.sigmoid(crop_logits.float())) / 2
                return torch.logit(p.clamp(1e-7, 1 - 1e-7)).to(logits.dtype)
            # One map each for cropping and dropping, drawn in proportion to its mean activation.
            weight = a.mean((2, 3)) + 1e-12
            pick = torch.multinomial(weight, 2, replacement=True)
            rows = torch.arange(b, device=x.device)
            crop_map, drop_map = a[rows, pick[:, 0]], a[rows, pick[:, 1]]
            tc = torch.empty(b, device=x.device).uniform_(*self.crop)
            td = torch.empty(b, device=x.device).uniform_(*self.drop)
            cropped = self.crop_view(x, crop_map, tc)
            dropped = self.drop_view(x, drop_map, td)
        views, _ = self._logits(torch.cat([cropped, dropped]))
        return {"logits": torch.cat([logits, views[:b], views[b:]], 1)}
