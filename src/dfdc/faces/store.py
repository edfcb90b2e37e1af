"""One file per video: every crop of the video, encoded, plus its rows of the faces table.

The full DFDC is 120k videos and, at 32 frames, about 4 million crops. As loose image files they
make ``dvc status``/``push`` crawl and fill inodes; as one ``.npz`` per video they are 120k
files that a data loader opens once per video and slices. Crops are stored as JPEG (quality 95
by default) or PNG bytes, concatenated, with offsets: a crop is decoded only when it is used.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dfdc.core.io import atomic_path

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pandas is imported where a table is made (a cold start needs none)
    import pandas as pd

__all__ = [
    "VideoFaces",
    "decode_crop",
    "decode_reduction",
    "encode_crop",
    "load_video_faces",
    "save_video_faces",
]

ROW_ARRAYS = ("frame", "track", "box", "prob", "detected", "landmarks", "crop_box")


@dataclass
class VideoFaces:
    video: str
    status: dict  # status, reason, frames_tried, ...
    frame: np.ndarray  # (n,) int32, absolute frame index
    track: np.ndarray  # (n,) int16
    box: np.ndarray  # (n, 4) float32
    prob: np.ndarray  # (n,) float32, NaN where carried
    detected: np.ndarray  # (n,) bool
    landmarks: np.ndarray  # (n, 5, 2) float32
    crop_box: np.ndarray  # (n, 4) float32: the square each crop was cut from
    crops: list[bytes]
    params_hash: str = ""

    def rows(self) -> pd.DataFrame:
        n = len(self.frame)
        lm = self.landmarks.reshape(n, 10)
        data = {
            "video": [self.video] * n,
            "frame": self.frame,
            "track": self.track,
            "x1": self.box[:, 0], "y1": self.box[:, 1], "x2": self.box[:, 2], "y2": self.box[:, 3],
            "prob": self.prob,
            "detected": self.detected,
        }  # fmt: skip
        for k in range(5):
            data[f"lm{k}_x"] = lm[:, 2 * k]
            data[f"lm{k}_y"] = lm[:, 2 * k + 1]
        for k, c in enumerate(("cx1", "cy1", "cx2", "cy2")):
            data[c] = self.crop_box[:, k]
        data["crop_index"] = np.arange(n)
        import pandas as pd

        return pd.DataFrame(data)


def encode_crop(rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover
        raise RuntimeError("crop encoding failed")
    return buf.tobytes()


_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def decode_crop(data: bytes | np.ndarray, reduce: int = 1) -> np.ndarray:
    """RGB crop; ``reduce`` 2, 4 or 8 decodes a JPEG at that fraction of its size directly
    (libjpeg scales in the DCT), several times faster than decoding and then resizing."""
    arr = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data
    return cv2.cvtColor(cv2.imdecode(arr, _REDUCED[reduce]), cv2.COLOR_BGR2RGB)


def decode_reduction(crop_size: int, input_size: int) -> int:
    """The largest of 1, 2, 4, 8 that still decodes a crop at least ``input_size`` wide."""
    r = 1
    while r < 8 and crop_size // (2 * r) >= input_size:
        r *= 2
    return r


def save_video_faces(vf: VideoFaces, path: str | Path) -> None:
    blobs = [np.frombuffer(c, np.uint8) for c in vf.crops]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    data = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            video=np.array(vf.video),
            status=np.array(json.dumps(vf.status)),
            params_hash=np.array(vf.params_hash),
            crop_data=data,
            crop_offsets=offsets,
            **{k: getattr(vf, k) for k in ROW_ARRAYS},
        )


def load_video_faces(path: str | Path, crops: bool = True) -> VideoFaces:
    with np.load(path, allow_pickle=False) as z:
        out = VideoFaces(
            video=str(z["video"]),
            status=json.loads(str(z["status"])),
            params_hash=str(z["params_hash"]),
            crops=[],
            **{k: z[k] for k in ROW_ARRAYS},
        )
        if crops:
            data, off = z["crop_data"], z["crop_offsets"]
            out.crops = [data[off[i] : off[i + 1]].tobytes() for i in range(len(off) - 1)]
    return out


def read_params_hash(path: str | Path) -> str | None:
    """The params hash of a finished video file, or None if it is missing or unreadable.

    An unreadable one (empty, or truncated by a run killed while the disk was full) is
    treated as missing, and said so in one warning that names it: every caller makes a file
    whose hash is not today's again, so a corrupt cache heals on the next run instead of
    failing every run until someone deletes it by hand."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["params_hash"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("%s: unreadable (%s); treated as missing", path, type(exc).__name__)
        return None
