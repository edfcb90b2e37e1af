"""Pictures of the robustness report: log loss against severity, and a frame of each
distortion."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from dfdc.core.video import read_frames

__all__ = ["plot_distortion_frames", "plot_robustness"]


def plot_robustness(metrics: dict) -> plt.Figure:
    """One panel a distortion: video log loss (and AUC, dashed, right axis) from clean
    (severity 0) to its strongest level."""
    names = list(metrics["distortions"])
    cols = min(5, max(1, len(names)))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    clean = metrics.get("clean", {})
    for ax, name in zip(axes.ravel(), names, strict=False):
        levels = metrics["distortions"][name]["levels"]
        labels = ["clean", *levels]
        ll = [clean.get("logloss")] + [m.get("logloss") for m in levels.values()]
        auc = [clean.get("auc")] + [m.get("auc") for m in levels.values()]
        x = range(len(labels))
        ax.plot(x, [v if v is not None else float("nan") for v in ll], "o-", color="C3")
        ax.set_xticks(list(x), labels, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("log loss", fontsize=8)
        twin = ax.twinx()
        twin.plot(x, [v if v is not None else float("nan") for v in auc], "s--", color="C0")
        twin.set_ylim(0, 1)
        twin.set_ylabel("AUC", fontsize=8)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_distortion_frames(examples: dict[str, Path]) -> plt.Figure | None:
    """The middle frame of one clip, clean and under each distortion's strongest level."""
    if not examples:
        return None
    cols = min(4, len(examples))
    rows = (len(examples) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.5 * cols, 2.4 * rows), squeeze=False)
    for ax, (name, path) in zip(axes.ravel(), examples.items(), strict=False):
        frames = read_frames(path, 3)
        ax.imshow(frames[len(frames) // 2].image)
        ax.set_title(f"{name} ({frames[0].image.shape[1]}x{frames[0].image.shape[0]})", fontsize=8)
        ax.axis("off")
    for ax in axes.ravel()[len(examples) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig
