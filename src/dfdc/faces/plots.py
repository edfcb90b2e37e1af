"""Pictures of the extraction stage: detection rates, crops, boxes on frames, time per video."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dfdc.core.video import iter_frames
from dfdc.faces.store import decode_crop, load_video_faces

__all__ = [
    "AGREEMENT",
    "detection_summary",
    "detector_agreement",
    "plot_boxes_on_frames",
    "plot_crop_grid",
    "plot_detection_rate",
    "plot_detector_agreement",
    "plot_seconds",
]

_COLOURS = ["#00e676", "#ff9100", "#2979ff", "#ff1744"]


def detection_summary(status: pd.DataFrame, frames: int) -> pd.DataFrame:
    """Per video: share of sampled frames with a face, tracks, and whether boxes were reused."""
    s = status.copy()
    s["face_rate"] = (s.get("frames_with_face", 0).fillna(0) / frames).round(3)
    cols = [
        c
        for c in [
            "video",
            "part",
            "status",
            "reason",
            "tracks",
            "face_rate",
            "reused_original",
            "seconds",
        ]
        if c in s
    ]
    return s[cols].sort_values(["face_rate", "video"])


AGREEMENT = ["mtcnn_faces", "blazeface_faces", "agreed_faces"]


def detector_agreement(status: pd.DataFrame) -> pd.DataFrame | None:
    """With ``faces.detector: both``, per detecting video: the faces each detector found on the
    detection frames, those both found (kept), and the share of each detector's faces the other
    confirmed; None when the run used one detector."""
    if not set(AGREEMENT) <= set(status.columns):
        return None
    s = status.dropna(subset=AGREEMENT).copy()
    if s.empty:
        return None
    s[AGREEMENT] = s[AGREEMENT].astype(int)
    s["mtcnn_confirmed"] = (s["agreed_faces"] / s["mtcnn_faces"].clip(lower=1)).round(3)
    s["blazeface_confirmed"] = (s["agreed_faces"] / s["blazeface_faces"].clip(lower=1)).round(3)
    cols = ["video", *AGREEMENT, "mtcnn_confirmed", "blazeface_confirmed"]
    return s[cols].sort_values(["mtcnn_confirmed", "video"]).reset_index(drop=True)


def plot_detector_agreement(agreement: pd.DataFrame) -> plt.Figure:
    """Per video, side by side: MTCNN's faces, BlazeFace's, and the faces both found."""
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(agreement)), 3))
    x = np.arange(len(agreement))
    for k, (col, label) in enumerate(zip(AGREEMENT, ["MTCNN", "BlazeFace", "both (kept)"],
                                         strict=True)):  # fmt: skip
        ax.bar(x + (k - 1) * 0.27, agreement[col], width=0.27, label=label)
    ax.set_xticks(x, agreement["video"], rotation=90, fontsize=6)
    ax.set_ylabel("faces on detection frames")
    ax.set_title("faces.detector: both, per video")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_detection_rate(summary: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(summary)), 3))
    colours = ["#4c9f70" if st == "ok" else "#d1495b" for st in summary["status"]]
    ax.bar(range(len(summary)), summary["face_rate"], color=colours)
    ax.set_xticks(range(len(summary)), summary["video"], rotation=90, fontsize=6)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("frames with a face")
    ax.set_title("Detection rate per video (red: no crops)")
    fig.tight_layout()
    return fig


def plot_seconds(summary: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 3))
    reused = (
        summary.get("reused_original", pd.Series(False, index=summary.index))
        .fillna(False)
        .astype(bool)
    )
    for flag, label in ((False, "detected"), (True, "reused original's boxes")):
        vals = summary.loc[reused == flag, "seconds"].dropna()
        if len(vals):
            ax.hist(vals, bins=15, alpha=0.7, label=f"{label} (median {vals.median():.2f} s)")
    ax.set_xlabel("seconds per video (one worker)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_crop_grid(table: pd.DataFrame, n_videos: int = 8, per_video: int = 6) -> plt.Figure | None:
    if table.empty:
        return None
    videos = table["video"].drop_duplicates().head(n_videos).tolist()
    fig, axes = plt.subplots(
        len(videos), per_video, figsize=(1.6 * per_video, 1.7 * len(videos)), squeeze=False
    )
    for row, video in zip(axes, videos, strict=True):
        rows = table[table["video"] == video]
        vf = load_video_faces(rows["file"].iloc[0])
        pick = np.linspace(0, len(vf.crops) - 1, min(per_video, len(vf.crops))).round().astype(int)
        for ax in row:
            ax.axis("off")
        for ax, i in zip(row, pick, strict=False):
            ax.imshow(decode_crop(vf.crops[i]))
            tag = "det" if vf.detected[i] else "trk"
            ax.set_title(f"f{vf.frame[i]} t{vf.track[i]} {tag}", fontsize=6)
        row[0].text(
            -0.1,
            0.5,
            video,
            transform=row[0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=6,
        )
    fig.tight_layout()
    return fig


def plot_boxes_on_frames(
    table: pd.DataFrame, video_path: str, video: str, n: int = 3
) -> plt.Figure | None:
    """Frames of one video with every track's box and 5 landmarks drawn."""
    rows = table[table["video"] == video]
    if rows.empty:
        return None
    frames_wanted = np.unique(rows["frame"])
    pick = frames_wanted[
        np.linspace(0, len(frames_wanted) - 1, min(n, len(frames_wanted))).round().astype(int)
    ]
    frames = list(iter_frames(video_path, pick))
    fig, axes = plt.subplots(1, len(frames), figsize=(4.2 * len(frames), 3), squeeze=False)
    for ax, fr in zip(axes[0], frames, strict=True):
        ax.imshow(fr.image)
        for r in rows[rows["frame"] == fr.index].itertuples():
            c = _COLOURS[int(r.track) % len(_COLOURS)]
            ax.add_patch(
                plt.Rectangle((r.x1, r.y1), r.x2 - r.x1, r.y2 - r.y1, fill=False, color=c, lw=1.5)
            )
            xs = [getattr(r, f"lm{k}_x") for k in range(5)]
            ys = [getattr(r, f"lm{k}_y") for k in range(5)]
            ax.scatter(xs, ys, s=6, color=c)
            label = f"t{r.track} p={r.prob:.3f}" if r.detected else f"t{r.track} carried"
            ax.text(r.x1, r.y1 - 4, label, color=c, fontsize=7)
        ax.set_title(f"{video} frame {fr.index}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig
