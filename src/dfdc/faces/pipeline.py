"""One video -> tracked face crops: the per-video face pipeline.

The faces stage's batch job (:mod:`dfdc.faces.batch`) and the one inference path
(``dfdc predict``, the ensemble's test videos, the kernel) call :func:`extract_video` with the
same params, so training and test crops cannot drift apart.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from dfdc.core.config import FacesConfig, to_dict
from dfdc.core.provenance import config_digest
from dfdc.core.video import VideoError, even_indices, frame_count
from dfdc.faces.detect import Detection, Detector
from dfdc.faces.frames import SampledFrame, crop_square, decode_sampled
from dfdc.faces.store import (
    VideoFaces,
    encode_crop,
)
from dfdc.faces.track import Track, TrackBox, build_tracks, iou

log = logging.getLogger(__name__)

__all__ = ["STORE_VERSION", "extract_video", "faces_params_hash", "video_faces_path"]

# Keys that change what is stored for a video; workers and paths do not.
_HASH_EXCLUDE = {
    "out_dir", "table_path", "status_path", "workers", "splits", "executor", "ray_address",
}  # fmt: skip


# Bumped when what a video's file holds changes, so old files are redone, not misread.
STORE_VERSION = 2


def faces_params_hash(cfg: FacesConfig) -> str:
    d = {k: v for k, v in to_dict(cfg).items() if k not in _HASH_EXCLUDE}
    d["store_version"] = STORE_VERSION
    return config_digest(d)


def _detect_positions(n: int, every: int) -> list[int]:
    pos = list(range(0, n, max(1, every)))
    if n and pos[-1] != n - 1:
        pos.append(n - 1)  # the last frame too, so tracks end on a detection, not a guess
    return pos


def extract_video(
    path: str | Path,
    cfg: FacesConfig,
    detector: Detector | None,
    reuse: VideoFaces | None = None,
    threads: int = 0,
    name: str | None = None,
    keep_frames: dict | None = None,
) -> VideoFaces:
    """Sample, detect, track and crop one video. Never raises for a bad video: the returned
    status says what happened (``ok``, ``no_face``, ``unreadable``). ``keep_frames``: filled
    with frame index -> the shrunken RGB copy of each detection frame (what a report draws on,
    so it need not decode the video again)."""
    path = Path(path)
    t0 = time.perf_counter()
    name = name or path.name
    status: dict = {"status": "ok", "reason": None, "frames_tried": 0, "reused_original": False}
    empty = VideoFaces(
        name, status, np.zeros(0, np.int32), np.zeros(0, np.int16), np.zeros((0, 4), np.float32),
        np.zeros(0, np.float32), np.zeros(0, bool), np.zeros((0, 5, 2), np.float32),
        np.zeros((0, 4), np.float32), [],
        faces_params_hash(cfg),
    )  # fmt: skip
    try:
        n_frames = frame_count(path)
        if reuse is not None and len(reuse.frame):
            indices = np.unique(reuse.frame)
            indices = indices[indices < n_frames]
        else:
            reuse = None
            indices = even_indices(n_frames, cfg.frames)
        det_pos = [] if reuse is not None else _detect_positions(len(indices), cfg.detect_every)
        frames = decode_sampled(
            path, indices, {int(indices[p]) for p in det_pos}, cfg.detect_max_side, threads
        )
    except VideoError as exc:
        status.update(status="unreadable", reason=str(exc).split(": ", 1)[-1])
        status["seconds"] = time.perf_counter() - t0
        return empty
    status["frames_tried"] = len(frames)
    by_index = {f.index: f for f in frames}
    if keep_frames is not None:
        keep_frames.update({f.index: (f.small, f.width) for f in frames if f.small is not None})
    rows: list[tuple[int, int, np.ndarray, float, bool, np.ndarray]] = []
    if reuse is not None:
        status["reused_original"] = True
        r = reuse
        for i in range(len(r.frame)):
            if int(r.frame[i]) in by_index:
                row = (
                    int(r.frame[i]),
                    int(r.track[i]),
                    r.box[i],
                    float(r.prob[i]),
                    bool(r.detected[i]),
                )
                rows.append((*row, r.landmarks[i]))
    else:
        assert detector is not None
        det_frames = [frames[p] for p in det_pos if p < len(frames)]
        found = detector.detect(
            [f.small for f in det_frames], [(f.width, f.height) for f in det_frames]
        )
        if cfg.detector == "both":  # per video, for the faces notebook's comparison
            status.update(detector.agreement)
        pos_of = {f.index: p for p, f in enumerate(frames)}
        detections: dict[int, list[Detection]] = {
            pos_of[f.index]: d for f, d in zip(det_frames, found, strict=True)
        }
        tracks = build_tracks(
            detections,
            n_positions=len(frames),
            iou_threshold=cfg.track_iou,
            max_gap=cfg.max_gap,
            min_fraction=cfg.min_track_fraction,
            max_tracks=cfg.max_tracks,
            carry=max(0, cfg.detect_every - 1),
        )
        _refine_between(tracks, frames, detector, cfg)
        for tid, track in enumerate(tracks):
            for pos, tb in sorted(track.boxes.items()):
                rows.append((frames[pos].index, tid, tb.box, tb.prob, tb.detected, tb.landmarks))
    if not rows:
        status.update(status="no_face", reason="no face track found")
        status["seconds"] = time.perf_counter() - t0
        return empty
    rows.sort(key=lambda r: (r[1], r[0]))
    crops, squares = [], []
    for frame_idx, _, box, _, _, _ in rows:
        f = by_index[frame_idx]
        square = crop_square(box, cfg.margin, f.width, f.height)
        squares.append(square)
        crops.append(encode_crop(f.crop(square, cfg.crop_size), cfg.crop_format, cfg.jpeg_quality))
    status["frames_with_face"] = len({r[0] for r in rows})
    status["tracks"] = len({r[1] for r in rows})
    status["seconds"] = time.perf_counter() - t0
    return VideoFaces(
        video=name,
        status=status,
        frame=np.array([r[0] for r in rows], np.int32),
        track=np.array([r[1] for r in rows], np.int16),
        box=np.stack([np.asarray(r[2], np.float32) for r in rows]),
        prob=np.array([r[3] for r in rows], np.float32),
        detected=np.array([r[4] for r in rows], bool),
        landmarks=np.stack([np.asarray(r[5], np.float32) for r in rows]),
        crop_box=np.stack(squares).astype(np.float32),
        crops=crops,
        params_hash=faces_params_hash(cfg),
    )


def _rerec(box: np.ndarray) -> np.ndarray:
    """The square with the same centre and the longer side (MTCNN's own squaring)."""
    side = max(box[2] - box[0], box[3] - box[1])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


def _refine_between(
    tracks: list[Track], frames: list[SampledFrame], detector: Detector, cfg: FacesConfig
) -> None:
    """Turn interpolated or carried boxes into detections with O-Net, batched per video.

    A box O-Net rejects keeps its interpolated position (marked not detected), so a brief
    occlusion does not break the track.
    """
    todo = [(t, pos) for t in tracks for pos, tb in t.boxes.items() if not tb.detected]
    if not todo or cfg.refine_steps <= 0:
        return
    boxes = np.stack([t.boxes[pos].box for t, pos in todo]).astype(np.float32)
    for _ in range(cfg.refine_steps):
        squares = []
        for (_, pos), box in zip(todo, boxes, strict=True):
            f = frames[pos]
            squares.append(crop_square(_rerec(box), 0.0, f.width, f.height))
        squares = np.stack(squares)
        crops = np.stack(
            [frames[pos].crop(sq, 48) for (_, pos), sq in zip(todo, squares, strict=True)]
        )
        probs, boxes, landmarks = detector.refine(crops, squares)
    for (t, pos), p, box, lm in zip(todo, probs, boxes, landmarks, strict=True):
        # O-Net only sees its crop, so it cannot jump to another face; the overlap check only
        # guards against a box that drifted off into the background.
        if p >= cfg.min_prob and iou(box, t.boxes[pos].box) > 0.1:
            t.boxes[pos] = TrackBox(box, lm, float(p), True)


def video_faces_path(out_dir: str | Path, part: str, video: str) -> Path:
    return Path(out_dir) / part / (Path(video).stem + ".npz")
