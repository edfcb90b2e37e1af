"""The ``train`` section: the frame run, its augmentation, self-blending and mask settings;
its recipe and method give the keys params.yaml leaves out (:func:`preset_base`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dfdc.core.presets import METHODS, RECIPES, merge, recipe_name
from dfdc.core.sections.loop import LoopConfig
from dfdc.core.sections.model import ModelConfig
from dfdc.core.typed import ConfigError, build, ranged

__all__ = ["AugConfig", "MaskTrainConfig", "SelfBlendConfig", "TrainConfig", "preset_base"]


@dataclass(frozen=True)
class AugConfig:
    """Train-time augmentation; each has a probability (0 turns it off)."""

    jpeg_p: float = ranged(0.3, 0, 1)
    jpeg_quality: tuple[int, int] = ranged((50, 100), 1, 100)
    noise_p: float = ranged(0.1, 0, 1)
    blur_p: float = ranged(0.1, 0, 1)
    flip_p: float = ranged(0.5, 0, 1)
    downscale_p: float = ranged(0.2, 0, 1)
    downscale_range: tuple[float, float] = ranged((0.4, 0.9), 0, 1, lo_open=True)
    color_p: float = ranged(0.4, 0, 1)
    gray_p: float = ranged(0.05, 0, 1)
    affine_p: float = ranged(0.3, 0, 1)
    rotate_limit: float = ranged(10.0, 0, 180)
    # Blank out one face part (eyes, nose or mouth), located by the landmarks.
    part_dropout_p: float = ranged(0.2, 0, 1)
    # Overlay patches: 1-3 rectangles of random colour over 10-30 % of the crop's side each,
    # the crop-level stand-in for the black-box set's distractors (robustness: overlay).
    overlay_p: float = ranged(0.0, 0, 1)


@dataclass(frozen=True)
class SelfBlendConfig:
    """Self-blended pseudo-fakes (SBI): a real crop blended with a transformed copy of itself
    through a landmark-placed, feathered face mask, labelled fake (``dfdc.crops.sbi``).
    """

    # Probability that a real crop drawn for training also yields a pseudo-fake (0: off).
    p: float = ranged(0.0, 0, 1)
    # Train on reals and pseudo-fakes only, no real fakes (the paper's setting that generalises
    # best across datasets).
    only: bool = False
    color_gain: float = ranged(0.1, 0, 0.5)  # per-channel gain in 1 +- this
    color_shift: float = ranged(12.0, 0, 64)  # per-channel shift in +- grey levels
    # Down-then-up resampling of the copy (else it is sharpened).
    resample_p: float = ranged(0.5, 0, 1)
    resample_range: tuple[float, float] = ranged((0.4, 0.8), 0.05, 1)
    scale: float = ranged(0.05, 0, 0.3)  # the copy's scale about the face in 1 +- this
    shift: float = ranged(0.02, 0, 0.2)  # and its shift, as a fraction of the crop side
    mask_jitter: float = ranged(0.15, 0, 0.5)  # the mask's half-axes in 1 +- this
    blend_ratios: tuple[float, ...] = ranged((0.5, 0.75, 1.0, 1.0, 1.0), 0, 1, lo_open=True)

    def __post_init__(self) -> None:
        lo, hi = self.resample_range
        if not 0.05 <= lo <= hi <= 1.0:
            raise ConfigError(
                f"train.sbi.resample_range must be [low, high] in [0.05, 1], got {[lo, hi]}"
            )
        if not self.blend_ratios or not all(0 < r <= 1 for r in self.blend_ratios):
            raise ConfigError(
                f"train.sbi.blend_ratios must be numbers in (0, 1], got {list(self.blend_ratios)}"
            )
        if self.only and self.p <= 0:
            raise ConfigError("train.sbi.only needs train.sbi.p > 0 (pseudo-fakes are its fakes)")


@dataclass(frozen=True)
class MaskTrainConfig:
    """How a frame run uses the difference masks (the ``masks`` stage): an auxiliary
    segmentation head that predicts the altered pixels, and face-part dropout guided to them."""

    # Weight of the segmentation loss beside the classification loss (0: no segmentation head).
    weight: float = ranged(0.0, 0, 10)
    # Face-part dropout picks the part (eyes, nose, mouth) in proportion to its altered pixels.
    guide_dropout: bool = False

    @property
    def used(self) -> bool:
        return self.weight > 0 or self.guide_dropout


@dataclass(frozen=True)
class TrainConfig(LoopConfig):
    """A frame run (the ``train`` section, DVC ``train@k``): a CNN scores each crop."""

    # frame: a CNN per crop (the kinds of the methods to come are frame kinds too).
    kind: Literal["frame"] = "frame"
    # The base values of every other key (RECIPES; keys given in params.yaml override them):
    # auto takes sample for data.source sample and real for any real dataset. Resolved, it
    # names the recipe used.
    recipe: Literal["auto", "sample", "real"] = "auto"
    # A training method on top of the recipe (dfdc.core.presets.METHODS): plain, sbi,
    # sbi_only, masks, wsdan, srm; keys given in params.yaml still override it.
    method: Literal["plain", "sbi", "sbi_only", "masks", "wsdan", "srm"] = "plain"
    # Crops drawn from each video in each epoch.
    frames_per_video: int = ranged(16, 1, 10_000)
    model: ModelConfig = field(default_factory=ModelConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    sbi: SelfBlendConfig = field(default_factory=SelfBlendConfig)
    masks: MaskTrainConfig = field(default_factory=MaskTrainConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model.wsdan_maps and self.masks.weight > 0:
            raise ConfigError(
                "train.model.wsdan_maps and train.masks.weight: the WS-DAN head and the "
                "segmentation head cannot be combined; set one of them to 0"
            )


def preset_base(raw: dict[str, Any], source: str) -> tuple[dict[str, Any], TrainConfig]:
    """(``raw`` with ``train.recipe`` resolved to the recipe's name, the ``train`` section the
    recipe and method make): every key params.yaml leaves out of ``train`` comes from its
    recipe (:data:`dfdc.core.presets.RECIPES`, ``auto`` following ``data.source``) and its
    method (:data:`dfdc.core.presets.METHODS`)."""
    train = raw.get("train") or {}
    name = recipe_name(raw) if isinstance(train, dict) else "sample"
    if name not in RECIPES:
        raise ConfigError(
            f"{source}: key 'train.recipe' must be one of 'auto', 'sample', 'real', got {name!r}"
        )
    method = train.get("method", "plain") if isinstance(train, dict) else "plain"
    if method not in METHODS:
        choices = ", ".join(repr(m) for m in METHODS)
        raise ConfigError(f"{source}: key 'train.method' must be one of {choices}, got {method!r}")
    if isinstance(train, dict):  # the resolved name is what the run records
        raw = {**raw, "train": {**train, "recipe": name}}
    preset = merge(RECIPES[name], METHODS[method])
    return raw, build(TrainConfig, {**preset, "recipe": name}, "train.", f"recipe {name}")
