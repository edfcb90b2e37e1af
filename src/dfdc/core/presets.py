"""Named presets: the frame run's recipes and training methods, each a partial ``train``
section that params.yaml's own keys override (``train.recipe``, ``train.method``; e.g.
``dvc exp run -S train.method=sbi``). Research conclusions live here, apart from the schema
(:mod:`dfdc.core.config`) and the loader (:mod:`dfdc.core.typed`).

Resolution, lowest first: the schema's defaults, the recipe, the method, params.yaml.
"""

from __future__ import annotations

from typing import Any

__all__ = ["METHODS", "RECIPES", "merge", "recipe_name"]

# The frame run's recipes: the base values of the train section's training keys (a key given in
# params.yaml overrides its recipe's value); which backbone and weights is params.yaml's. sample:
# what trains the generated sample within make repro's budget (4 epochs of 12 crops a video: at
# lr 3e-4 the 2-fold out-of-fold log loss was 0.603, at 1e-3 0.406, at 2e-3 0.266). real: what
# learned real FaceForensics++ deepfakes on a 2-core CPU (docs/real-data.md): 224 px crops (at
# 128 px fold AUCs were 0.1 lower), each fake beside its original's crop of the same frame, no
# augmentation beyond flips (heavier augmentation underfit in the epochs a CPU affords), the final
# epoch kept (no choice made on the validation videos); half the draws from the compress stage's
# x264 copies over 7 epochs instead of 5 (flips only on c23 was confidently wrong on c40-like
# copies: out of fold AUC 0.65, log loss 0.79; with them 0.73 / 0.63 at about the same c23
# score); label smoothing 0.1 (without it the folds ended at a training loss of 0.12-0.17 and
# were overconfident out of fold, their best temperature about 1.5; with it every fold of the same
# seed had a lower log loss on c23 and on the copies). 12 pairs a fake, copies at p 0.7 and
# Lite1 each lost: docs/robustness.md has every attempt.
RECIPES: dict[str, dict[str, Any]] = {
    "sample": {
        "epochs": 4, "batch_size": 32, "frames_per_video": 12, "balance": "sample",
        "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4, "schedule": "cosine",
        "warmup_epochs": 1.0, "label_smoothing": 0.05, "grad_clip": 1.0,
        "model": {"input_size": 128, "drop_rate": 0.2},
        "aug": {"jpeg_p": 0.3, "jpeg_quality": [50, 100], "noise_p": 0.1, "blur_p": 0.1,
                "flip_p": 0.5, "downscale_p": 0.2, "downscale_range": [0.4, 0.9], "color_p": 0.4,
                "gray_p": 0.05, "affine_p": 0.3, "rotate_limit": 10.0, "part_dropout_p": 0.2},
    },
    "real": {
        "epochs": 7, "batch_size": 32, "frames_per_video": 8, "balance": "pairs",
        "optimizer": "adamw", "lr": 3e-4, "weight_decay": 1e-4, "schedule": "cosine",
        "warmup_epochs": 0.0, "label_smoothing": 0.1, "grad_clip": 1.0, "keep": "last",
        "val_every": 5,
        "model": {"input_size": 224, "drop_rate": 0.2},
        "aug": {"jpeg_p": 0.0, "noise_p": 0.0, "blur_p": 0.0, "flip_p": 0.5, "downscale_p": 0.0,
                "color_p": 0.0, "gray_p": 0.0, "affine_p": 0.0, "part_dropout_p": 0.0},
        "compress": {"p": 0.5},
    },
}  # fmt: skip


# The training methods: one switch each on top of the recipe (``benchmarks/methods.py`` compares
# them on real clips; docs/training.md has the table).
#   plain     the recipe as is
#   sbi       self-blended pseudo-fakes beside half of the real crops
#   sbi_only  reals and their self-blends only, no real fakes (SBI's own setting)
#   masks     segmentation head on the difference masks, part dropout drawn toward them
#   wsdan     WS-DAN head with 8 attention maps
#   srm       SRM noise-residual input channels
METHODS: dict[str, dict[str, Any]] = {
    "plain": {},
    "sbi": {"sbi": {"p": 0.5, "only": False}},
    "sbi_only": {"sbi": {"p": 1.0, "only": True}},
    "masks": {"masks": {"weight": 1.0, "guide_dropout": True}, "aug": {"part_dropout_p": 0.3}},
    "wsdan": {"model": {"wsdan_maps": 8}},
    "srm": {"model": {"srm": True}},
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def recipe_name(raw: dict[str, Any]) -> str:
    """The frame run's recipe for a whole params dict: ``train.recipe``, where ``auto`` (the
    default) follows ``data.source``."""
    name = (raw.get("train") or {}).get("recipe", "auto")
    if name == "auto":
        source = (raw.get("data") or {}).get("source", "sample")
        return "sample" if source == "sample" else "real"
    return name
