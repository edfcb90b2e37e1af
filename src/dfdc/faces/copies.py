"""Compressed copies of every video's face crops, pixel-aligned with the crops they copy.

A detector trained on FaceForensics++ c23 with flips only had never seen heavy compression and
was confidently wrong on c40 (log loss 0.92, worse than a constant 0.5). JPEG on crops is not
what the data sees: x264 quantises 16x16 macroblocks of whole frames, predicts them from the
frames around, and blurs chroma. The compress stage re-encodes the videos themselves, at each
level of ``compress`` (a CRF, optionally after a downscale), and cuts each copy's crops with the
original crops' own squares (scaled with the frame) from the same frames: a crop and its copy
show the same pixels, and a fake's copy and its original's copy of a frame still differ only
where the face was manipulated, so ``balance: pairs`` keeps working on copies.

Only the frames the crops come from are encoded, each after the ``context - 1`` frames that
precede it in the clip, as one x264 stream: the sampled frame is then a predicted frame (P or B)
coded at the level's CRF from its neighbours, as in a whole-clip encode, for 32 x 4 frames
instead of a clip's hundreds (a 32 s 480p clip: 8 s a level whole, about 1.5 s this way). The
GOP boundaries and rate control differ from a whole-clip encode's; the c40-like validation copies
are made the same way (see docs/robustness.md for how their CRF was matched to FF++ c40).

Nor is the whole frame encoded: only a region around the frame's crops, ``pad`` pixels wider on
each side (x264's motion search and deblocking see the face's surroundings), its size whole
16-pixel macroblocks and its corner on the frame's own macroblock grid where the frame's edge
allows, so blocks fall where a whole-frame encode puts them. One size serves the whole video (the
largest region it needs), so every window goes into the same stream. At 480p that is about a
fifth of the frame's pixels; at DFDC's 1080p, a twentieth (``pad: -1`` encodes whole frames).

That still decodes every window again, after the faces stage decoded the same frames: at
DFDC's size the copies cost 1.8x the faces stage. ``source: crops`` (:func:`copy_crops`)
encodes the training levels from the stored crops instead: no video is decoded, each track's
crops go into one stream at their size in the frame, and they cost 0.3-0.4x the faces stage.
Their artifacts differ: each crop is predicted from the track's previous sampled crop, not the
frame before it, so it is a little further from its crop at the same CRF, and a `make real`
trained on them scored lower on the c40-like copies (docs/robustness.md), so it is not the
default. The validation levels always come from the video: they stand for a real
re-encode, and the c40-like figures are measured on them.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd

from dfdc.core.config import CompressConfig
from dfdc.core.executor import process_pool
from dfdc.core.io import write_json, write_parquet
from dfdc.core.progress import progress
from dfdc.core.provenance import config_digest
from dfdc.core.video import VideoError, add_streaming_h264, encode_rgb, iter_frames
from dfdc.faces.copy_levels import CopyLevel, copy_levels, copy_tables
from dfdc.faces.frames import decode_sampled
from dfdc.faces.store import (
    VideoFaces,
    decode_crop,
    encode_crop,
    load_video_faces,
    read_params_hash,
    save_video_faces,
)

log = logging.getLogger(__name__)

__all__ = [
    "CopyLevel",
    "copy_crops",
    "copy_levels",
    "copy_tables",
    "copy_video",
    "crop_regions",
    "frame_windows",
    "made_from",
    "run_copies",
    "track_rows",
]  # fmt: skip  (CopyLevel, copy_levels, copy_tables: dfdc.faces.copy_levels, re-exported)

# Bumped when what a copy's file holds changes, so old copies are redone, not misread.
COPY_VERSION = 2  # 2: regions around the crops, not whole frames


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def frame_windows(frames: np.ndarray, context: int) -> list[int]:
    """Every frame to encode: each sampled frame and the ``context - 1`` frames before it."""
    want: set[int] = set()
    for f in np.unique(frames):
        want.update(range(max(0, int(f) - context + 1), int(f) + 1))
    return sorted(want)


def _encode(images: list[np.ndarray], size: tuple[int, int], crf: int, fps: float, out: Path):
    """``images`` (RGB, in order) as one H.264 stream at ``crf``, resized to ``size``."""
    with av.open(str(out), mode="w", format="mp4") as container:
        stream = add_streaming_h264(container, size, fps, crf)
        for img in images:
            if (img.shape[1], img.shape[0]) != size:
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            encode_rgb(container, stream, img)
        container.mux(stream.encode())


MACROBLOCK = 16  # x264's block grid, in pixels


def crop_regions(
    frames: np.ndarray, boxes: np.ndarray, pad: int, size: tuple[int, int]
) -> tuple[tuple[int, int], dict[int, tuple[int, int]]]:
    """The region encoded around each sampled frame's crops: its (width, height), one for the
    whole video, and each frame's top-left corner. ``boxes`` (one a crop, in the frame's pixels
    at ``size``) of ``frames``. Every frame's crops fit inside with ``pad`` pixels around where
    the frame allows; the size is whole macroblocks (even at most, no larger than the frame);
    each corner is on the macroblock grid unless that would cut a crop. ``pad`` < 0: the frame."""
    full = (size[0] // 2 * 2, size[1] // 2 * 2)
    unions = {}
    for f in np.unique(frames):
        b = boxes[frames == f]
        unions[int(f)] = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    if pad < 0 or not unions:
        return full, {f: (0, 0) for f in unions}
    extent = np.array([(u[2] - u[0], u[3] - u[1]) for u in unions.values()]).max(axis=0)
    region = tuple(
        min(int(np.ceil((e + 2 * pad) / MACROBLOCK)) * MACROBLOCK, limit)
        for e, limit in zip(extent, full, strict=True)
    )
    corners = {}
    for f, u in unions.items():
        corner = []
        for lo, hi, side, limit in (
            (u[0], u[2], region[0], full[0]),
            (u[1], u[3], region[1], full[1]),
        ):
            at = int(round(((lo + hi) / 2 - side / 2) / MACROBLOCK)) * MACROBLOCK
            at = min(at, int(np.floor(lo)) // 2 * 2)  # never cut a crop for the grid's sake
            at = max(at, (int(np.ceil(hi)) - side + 1) // 2 * 2)
            corner.append(max(0, min(at, limit - side)))
        corners[f] = (corner[0], corner[1])
    return region, corners


def copy_video(
    video: str | Path,
    faces: VideoFaces,
    levels: list[CopyLevel],
    crop_size: int,
    crop_format: str,
    jpeg_quality: int,
    context: int = 4,
    fps: float = 25.0,
    pad: int = 32,
) -> dict[str, VideoFaces]:
    """``faces`` (a video's crops) re-cut from each level's re-encode of ``video``: the same
    rows, frames and crop squares, one crop for each of the original's, in its order. Each
    sampled frame's window (it and the ``context - 1`` frames before it) is encoded as the
    region around that frame's crops (``pad``; -1: whole frames). Raises
    :class:`~dfdc.core.video.VideoError` when the video cannot be read to its last crop's frame."""
    images = {f.index: f.image for f in iter_frames(video, frame_windows(faces.frame, context))}
    sampled = sorted(set(int(f) for f in faces.frame))
    missing = [f for f in sampled if f not in images]
    if missing:
        raise VideoError(f"{video}: frame {missing[0]} of the crops could not be decoded")
    h, w = images[sampled[0]].shape[:2]
    out: dict[str, VideoFaces] = {}
    with tempfile.TemporaryDirectory(prefix="dfdc-copy-") as tmp:
        for level in levels:
            size = (_even(w * level.scale), _even(h * level.scale))
            sx, sy = size[0] / w, size[1] / h
            boxes = np.stack([
                np.clip(faces.crop_box[:, 0] * sx, 0.0, size[0] - 1.0),
                np.clip(faces.crop_box[:, 1] * sy, 0.0, size[1] - 1.0),
                np.minimum(faces.crop_box[:, 2] * sx, float(size[0])),
                np.minimum(faces.crop_box[:, 3] * sy, float(size[1])),
            ], axis=1) if len(faces.frame) else np.zeros((0, 4))  # fmt: skip
            region, corner = crop_regions(faces.frame, boxes, pad, size)
            scaled = images if size == (w, h) else {
                i: cv2.resize(img, size, interpolation=cv2.INTER_AREA) for i, img in images.items()
            }  # fmt: skip
            stream, position = [], {}
            for f in sampled:
                x0, y0 = corner[f]
                for i in range(max(0, f - context + 1), f + 1):
                    if i in images:
                        stream.append(scaled[i][y0 : y0 + region[1], x0 : x0 + region[0]])
                position[f] = len(stream) - 1
            path = Path(tmp) / f"{level.name}.mp4"
            _encode(stream, region, level.crf, fps, path)
            wanted = sorted(position.values())
            decoded = {f.index: f for f in decode_sampled(path, wanted, set(), 640)}
            if len(decoded) != len(position):
                raise VideoError(f"{video}: the {level.name} copy lost frames in its re-encode")
            crops = []
            for frame, box in zip(faces.frame, boxes, strict=True):
                x0, y0 = corner[int(frame)]
                local = (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
                crop = decoded[position[int(frame)]].crop(local, crop_size)
                crops.append(encode_crop(crop, crop_format, jpeg_quality))
            status = {"status": "ok", "level": level.name, "crf": level.crf, "scale": level.scale,
                      "made_from": "video", "frames_encoded": len(stream), "region": list(region),
                      "copy_bytes": path.stat().st_size}  # fmt: skip
            out[level.name] = replace(faces, status=status, crops=crops)
    return out


def _track_side(boxes: np.ndarray, scale: float) -> int:
    """One frame size for a track's stream: its crops' median side in the frame's pixels,
    times ``scale``, even and at least two macroblocks (x264 needs one size a stream)."""
    return max(2 * MACROBLOCK, _even(float(np.median(boxes[:, 2] - boxes[:, 0])) * scale))


def _resize(img: np.ndarray, side: int) -> np.ndarray:
    if img.shape[0] == side:
        return img
    how = cv2.INTER_AREA if side < img.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(img, (side, side), interpolation=how)


def track_rows(faces: VideoFaces) -> list[np.ndarray]:
    """Each track's row indices in frame order: the order :func:`copy_crops` encodes them."""
    rows = [np.flatnonzero(faces.track == t) for t in np.unique(faces.track)]
    return [r[np.argsort(faces.frame[r], kind="stable")] for r in rows]


def copy_crops(
    faces: VideoFaces,
    levels: list[CopyLevel],
    crop_format: str,
    jpeg_quality: int,
    fps: float = 25.0,
) -> dict[str, VideoFaces]:
    """``faces`` (a video's crops) re-encoded from the crops themselves, no video decoded:
    each track's crops in frame order as one x264 stream a level, each crop at its square's
    size in the frame (times the level's scale, so x264's blocks cover the face as they do in a
    re-encode of the video), then back to the crop's size. A crop is then predicted from the
    track's previous sampled crop, not the frame before it, and x264 sees the crop's margin but
    nothing outside it; the same rows and order as ``faces``."""
    crops = [decode_crop(c) for c in faces.crops]
    out: dict[str, VideoFaces] = {}
    size = crops[0].shape[0]  # a faces file holds at least one crop (the stage's table rows)
    tracks = track_rows(faces)
    with tempfile.TemporaryDirectory(prefix="dfdc-copy-") as tmp:
        for level in levels:
            made: list[bytes] = [b""] * len(crops)
            encoded, streams = 0, []
            for k, rows in enumerate(tracks):
                side = _track_side(faces.crop_box[rows], level.scale)
                streams.append([side, len(rows)])
                path = Path(tmp) / f"{level.name}-{k}.mp4"
                _encode([_resize(crops[i], side) for i in rows], (side, side), level.crf, fps, path)
                encoded += path.stat().st_size
                frames = [f.image for f in iter_frames(path)]
                if len(frames) != len(rows):
                    raise VideoError(f"{faces.video}: the {level.name} copy lost crops")
                for i, frame in zip(rows, frames, strict=True):
                    made[i] = encode_crop(_resize(frame, size), crop_format, jpeg_quality)
            status = {"status": "ok", "level": level.name, "crf": level.crf, "scale": level.scale,
                      "made_from": "crops", "frames_encoded": len(crops),
                      "streams": streams, "copy_bytes": encoded}  # fmt: skip
            out[level.name] = replace(faces, status=status, crops=made)
    return out


def _key(faces_hash: str, level: CopyLevel, cfg: CompressConfig, made_from: str) -> str:
    fields = {"faces": faces_hash, "crf": level.crf, "scale": level.scale}
    if made_from == "video":  # the keys copies from the video have always had
        fields.update(context=cfg.context, pad=cfg.pad, version=COPY_VERSION)
    else:
        fields.update(made_from=made_from)
    return config_digest(fields)


def made_from(cfg: CompressConfig) -> dict[CopyLevel, str]:
    """Each level's source: a validation level from the video always (it stands for a real
    re-encode, what the c40-like figures measure); a training level from ``cfg.source``."""
    validate = set(copy_levels(cfg, "validate"))
    return {lv: "video" if lv in validate else cfg.source for lv in copy_levels(cfg)}


def copy_file(out_dir: str | Path, level: CopyLevel, faces_file: str | Path) -> Path:
    """Where the ``level`` copy of the faces file ``faces_file`` is kept: the same part and
    name under ``out_dir/<level>``."""
    faces_file = Path(faces_file)
    return Path(out_dir) / level.name / faces_file.parent.name / faces_file.name


@dataclass(frozen=True)
class _Job:
    video: str
    path: str
    faces_file: str
    fps: float


_settings: dict = {}


def _init(cfg: CompressConfig, crop_size: int, crop_format: str, jpeg_quality: int) -> None:
    cv2.setNumThreads(1)
    _settings.update(cfg=cfg, crop=(crop_size, crop_format, jpeg_quality))


def _run(job: _Job) -> list[dict]:
    cfg: CompressConfig = _settings["cfg"]
    size, fmt, quality = _settings["crop"]
    faces = load_video_faces(job.faces_file)
    rows, todo = [], {"video": [], "crops": []}
    for level, source in made_from(cfg).items():
        out = copy_file(cfg.out_dir, level, job.faces_file)
        key = _key(faces.params_hash, level, cfg, source)
        row = {"video": job.video, "level": level.name, "file": str(out), "status": "ok",
               "reason": None, "source": job.faces_file}  # fmt: skip
        rows.append(row)
        if read_params_hash(out) != key:
            todo[source].append((level, out, key, row))
    for source, jobs in todo.items():
        if not jobs:
            continue
        levels = [t[0] for t in jobs]
        try:
            if source == "video":
                copies = copy_video(
                    job.path, faces, levels, size, fmt, quality, cfg.context, job.fps, cfg.pad
                )
            else:
                copies = copy_crops(faces, levels, fmt, quality, job.fps)
        except Exception as exc:  # one broken video never ends a long run
            for _, _, _, row in jobs:
                row.update(status="failed", reason=str(exc).splitlines()[0][:300])
            continue
        for level, out, key, _ in jobs:
            save_video_faces(replace(copies[level.name], params_hash=key), out)
    return rows


def run_copies(
    index: pd.DataFrame,
    faces_table: pd.DataFrame,
    cfg: CompressConfig,
    crop_size: int,
    crop_format: str = "jpg",
    jpeg_quality: int = 95,
) -> pd.DataFrame:
    """Every level's copy of every video with crops (resumable: a copy made with the same
    faces, level and context is kept), and the copies table (one row a video and level:
    its file, ``ok`` or ``failed`` with the reason), written to ``cfg.table_path``."""
    meta = index.set_index("name")
    files = faces_table.drop_duplicates("video")[["video", "file"]]
    jobs = [
        _Job(v, str(meta.loc[v, "path"]), f, float(meta.loc[v, "fps"] or 25.0))
        for v, f in zip(files["video"], files["file"], strict=True)
        if v in meta.index
    ]
    rows: list[dict] = []
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    levels = {
        lv.name: {"crf": lv.crf, "scale": lv.scale, "made_from": src}
        for lv, src in made_from(cfg).items()
    }
    write_json({"levels": levels, "context": cfg.context, "pad": cfg.pad}, out_dir / "levels.json")
    if jobs and levels:
        init = (cfg, crop_size, crop_format, jpeg_quality)
        if cfg.workers > 1:
            with process_pool(cfg.workers, _init, init, context=None) as pool:
                results = pool.map(_run, jobs)
                for r in progress(results, total=len(jobs), desc="compress", unit="video"):
                    rows.extend(r)
        else:  # in this process: its OpenCV threads as they were afterwards (it may train next)
            before = cv2.getNumThreads()
            try:
                _init(*init)
                for job in progress(jobs, desc="compress", unit="video"):
                    rows.extend(_run(job))
            finally:
                cv2.setNumThreads(before)
    table = pd.DataFrame(rows, columns=["video", "level", "file", "status", "reason", "source"])
    for r in table[table["status"] != "ok"].itertuples():
        log.warning("%s: no %s copy (%s)", r.video, r.level, r.reason)
    write_parquet(table, cfg.table_path)
    return table
