"""Sampled frames kept as decoded YUV planes, converted to RGB only where a face is cropped.

On a 1080p clip, converting 32 whole frames to RGB costs about 40 % of decoding all 300 of them.
The stage needs full resolution only inside the face crops, and a small RGB picture only for
the frames MTCNN looks at. So each sampled frame keeps its Y, U and V planes (a copy, 3 MB), the
detection frames also get a small RGB version from FFmpeg's scaler, and crops are converted
from YUV after resizing, which costs a fraction of a millisecond each.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from dfdc.core.video import VideoError, _open, _rotation, _short, _upright, decode_indexed

log = logging.getLogger(__name__)

__all__ = ["SampledFrame", "crop_square", "decode_sampled"]


@dataclass
class SampledFrame:
    index: int
    width: int  # upright
    height: int
    # Either YUV 4:2:0 planes (stored orientation; rotation 0) or an upright RGB image.
    planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    rgb: np.ndarray | None
    small: np.ndarray | None = None  # RGB for detection, when this frame is a detection frame

    def crop(self, box: Sequence[float], size: int) -> np.ndarray:
        """Square ``box`` (x1, y1, x2, y2; inside the frame) resized to ``size`` x ``size`` RGB."""
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        if self.rgb is not None:
            return cv2.resize(self.rgb[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_AREA)
        y, u, v = self.planes
        # Chroma is subsampled 2x: take the matching (even-aligned) region of each plane.
        cx1, cy1, cx2, cy2 = x1 // 2, y1 // 2, (x2 + 1) // 2, (y2 + 1) // 2
        interp = cv2.INTER_AREA if (x2 - x1) > size else cv2.INTER_LINEAR
        yy = cv2.resize(y[y1:y2, x1:x2], (size, size), interpolation=interp).astype(np.float32)
        uu = cv2.resize(u[cy1:cy2, cx1:cx2], (size, size), interpolation=cv2.INTER_LINEAR).astype(
            np.float32
        )
        vv = cv2.resize(v[cy1:cy2, cx1:cx2], (size, size), interpolation=cv2.INTER_LINEAR).astype(
            np.float32
        )
        return _yuv_to_rgb(yy, uu, vv)


def _yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.601 limited range, FFmpeg's default for untagged H.264."""
    y = 1.164 * (y - 16.0)
    u = u - 128.0
    v = v - 128.0
    rgb = np.stack([y + 1.596 * v, y - 0.392 * u - 0.813 * v, y + 2.017 * u], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _plane(frame: av.VideoFrame, i: int) -> np.ndarray:
    p = frame.planes[i]
    arr = np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]
    return arr.copy()


def crop_square(box: Sequence[float], margin: float, width: int, height: int) -> np.ndarray:
    """The square around ``box`` grown by ``margin`` on each side, moved (not cut) to fit."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    side = min(side, width, height)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = float(np.clip(cx - side / 2, 0, width - side))
    top = float(np.clip(cy - side / 2, 0, height - side))
    return np.array([left, top, left + side, top + side], dtype=np.float32)


def decode_sampled(
    path: str | Path,
    indices: Sequence[int],
    detect: set[int],
    detect_max_side: int,
    threads: int = 0,
) -> list[SampledFrame]:
    """Decode forward once (the frames nothing wanted refers to skipped:
    :func:`~dfdc.core.video.decode_indexed`); keep the ``indices`` frames, with a small RGB
    copy for ``detect``."""
    path = Path(path)
    container = _open(path)
    wanted = set(int(i) for i in indices)
    out: list[SampledFrame] = []
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if threads:
            stream.codec_context.thread_count = threads
        rotation = None
        try:
            for i, frame in decode_indexed(path, container, stream, wanted):
                if rotation is None:
                    rotation = _rotation(stream, frame)
                out.append(_keep(frame, i, rotation, i in detect, detect_max_side))
        except (av.error.FFmpegError, ValueError) as exc:
            if not out:
                raise VideoError(f"{path}: decode failed ({_short(exc)})") from None
            log.warning(
                "%s: decoding stopped early after frame %d (%s)", path, out[-1].index, _short(exc)
            )
    if not out:
        raise VideoError(f"{path}: no decodable frame")
    return out


def _keep(frame: av.VideoFrame, i: int, rotation: int, detect: bool, max_side: int) -> SampledFrame:
    sw, sh = frame.width, frame.height
    uw, uh = (sh, sw) if rotation in (90, 270) else (sw, sh)
    if rotation == 0 and frame.format.name == "yuv420p":
        kept = SampledFrame(i, uw, uh, (_plane(frame, 0), _plane(frame, 1), _plane(frame, 2)), None)
    else:
        # Rare formats (full-range, 10-bit, rotated): convert the whole frame once.
        kept = SampledFrame(i, uw, uh, None, _upright(frame.to_ndarray(format="rgb24"), rotation))
    if detect:
        scale = min(1.0, max_side / max(uw, uh))
        tw, th = max(1, round(uw * scale)), max(1, round(uh * scale))
        if kept.rgb is not None:
            kept.small = cv2.resize(kept.rgb, (tw, th), interpolation=cv2.INTER_AREA)
        else:
            kept.small = frame.reformat(
                width=tw, height=th, format="rgb24", interpolation="AREA"
            ).to_ndarray()
    return kept
