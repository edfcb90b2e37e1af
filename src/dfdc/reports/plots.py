"""Training and validation pictures shared by the notebooks: curves, ROC, reliability."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["plot_curves", "plot_masks", "plot_prediction", "plot_roc_reliability"]


def plot_curves(history: list[dict]) -> plt.Figure:
    h = pd.DataFrame(history)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    axes[0].plot(h["epoch"], h["train_loss"], label="train loss")
    for unit in ("frame", "track"):
        if f"{unit}_logloss" in h:
            axes[0].plot(h["epoch"], h[f"{unit}_logloss"], label=f"val {unit} log loss")
    axes[0].plot(h["epoch"], h["video_logloss"], label="val video log loss")
    axes[0].axhline(np.log(2), color="grey", ls=":", label="constant 0.5")
    axes[0].legend(fontsize=7)
    axes[0].set_xlabel("epoch")
    axes[1].plot(h["epoch"], h["video_auc"], label="val video AUC")
    axes[1].plot(h["epoch"], h["video_accuracy"], label="val video accuracy")
    axes[1].set_ylim(0, 1.02)
    axes[1].legend(fontsize=7)
    axes[1].set_xlabel("epoch")
    axes[2].plot(h["epoch"], h["lr"])
    axes[2].set_title("learning rate (end of epoch)", fontsize=8)
    axes[2].set_xlabel("epoch")
    fig.tight_layout()
    return fig


def plot_roc_reliability(y: np.ndarray, p: np.ndarray, bins: int = 8) -> plt.Figure:
    from sklearn.metrics import roc_curve

    y, p = np.asarray(y), np.asarray(p)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        axes[0].plot(fpr, tpr)
    axes[0].plot([0, 1], [0, 1], color="grey", ls=":")
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    centres, rates = [], []
    for b in range(bins):
        m = which == b
        if m.any():
            centres.append(p[m].mean())
            rates.append(y[m].mean())
    axes[1].plot(centres, rates, "o-")
    axes[1].plot([0, 1], [0, 1], color="grey", ls=":")
    axes[1].set(xlabel="predicted P(fake)", ylabel="observed fake rate", title="Reliability")
    for label, colour in ((0, "#4c9f70"), (1, "#d1495b")):
        axes[2].hist(
            p[y == label], bins=edges, alpha=0.6, color=colour, label="FAKE" if label else "REAL"
        )
    axes[2].legend(fontsize=7)
    axes[2].set(xlabel="predicted P(fake)", title="Scores by label")
    fig.tight_layout()
    return fig


def plot_prediction(pred, max_crops: int = 16) -> plt.Figure:
    """A video's face crops, each with its score (mean over the models), and the video score."""
    from dfdc.faces.store import decode_crop

    scores = np.mean(np.array(list(pred.frame_probs.values())), axis=0)
    pick = np.linspace(0, len(pred.crops) - 1, min(max_crops, len(pred.crops))).round().astype(int)
    cols = min(8, len(pick))
    rows = int(np.ceil(len(pick) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), pick, strict=False):
        ax.imshow(decode_crop(pred.crops[i]))
        colour = "#d1495b" if scores[i] >= 0.5 else "#4c9f70"
        ax.set_title(
            f"f{pred.frames[i]} t{pred.tracks[i]} {scores[i]:.2f}", fontsize=7, color=colour
        )
    fig.suptitle(f"{pred.video}: P(fake) = {pred.prob:.3f}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_masks(masks: pd.DataFrame, faces: pd.DataFrame, n: int = 6) -> plt.Figure | None:
    """Fake crops beside their original's crop of the same frame and the difference mask (the
    masks stage), for the ``n`` most altered crops of different videos."""
    from dfdc.faces.store import decode_crop, load_video_faces
    from dfdc.masks.store import MaskStore, same_frame_crops

    if masks.empty:
        return None
    rows = masks.sort_values("area", ascending=False).drop_duplicates("video").head(n)
    files = faces.groupby("video")["file"].first()
    store = MaskStore(masks)
    fig, axes = plt.subplots(len(rows), 3, figsize=(6, 2 * len(rows)), squeeze=False)
    for ax, (_, r) in zip(axes, rows.iterrows(), strict=True):
        fake = load_video_faces(files[r["video"]])
        real = load_video_faces(files[r["original"]])
        i = int(r["crop_index"])
        j = same_frame_crops(fake, real)[i]
        ax[0].imshow(decode_crop(real.crops[j]))
        ax[1].imshow(decode_crop(fake.crops[i]))
        ax[2].imshow(store.get(r["video"], i), cmap="magma", vmin=0, vmax=1)
        ax[0].set_ylabel(r["video"][:14], fontsize=7)
        for a, title in zip(ax, ("original", "fake", f"mask {r['area']:.0%}"), strict=True):
            a.set_xticks([])
            a.set_yticks([])
            a.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
