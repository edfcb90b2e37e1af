"""Video probing and frame reading with PyAV.

DFDC clips are long-GOP H.264: seeking to a frame decodes from the previous keyframe, which
costs hundreds of milliseconds a frame. Frames are therefore read by decoding forward once,
converting only the frames that are wanted. Nor is every frame decoded: a picture no other
picture refers to (H.264's ``nal_ref_idc`` 0; about half of a DFDC clip, its unreferenced B
frames) is sent to the decoder only when it is itself wanted, so the wanted frames come out
bit-identical to a full decode for about half the decoding work (:func:`decode_indexed`).
Decoding uses FFmpeg's frame threads, which is where most of the time goes.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dfdc.core.errors import UserError

log = logging.getLogger(__name__)

__all__ = [
    "Frame",
    "VideoError",
    "VideoInfo",
    "add_streaming_h264",
    "decode_indexed",
    "encode_rgb",
    "even_indices",
    "iter_frames",
    "probe",
    "read_frames",
]

# A streaming service's kind of re-encode (the robustness distortions, the compress stage's
# copies): x264 ``superfast`` with 2 threads, about 3x faster than single-threaded ``veryfast``
# on a 720p clip here, with deblocking kept (``ultrafast`` drops it, and its blocks would not
# look like a streaming encode's).
STREAMING_PRESET = "superfast"
ENCODER_THREADS = 2


class VideoError(UserError, RuntimeError):
    """A video that cannot be opened or decoded; the message names the file and the problem."""


@dataclass(frozen=True)
class VideoInfo:
    width: int | None = None
    height: int | None = None
    # Degrees the stored picture must be turned counter-clockwise to display upright.
    rotation: int = 0
    fps: float | None = None
    frame_count: int | None = None
    duration: float | None = None
    codec: str | None = None
    has_audio: bool = False
    bytes: int = 0
    readable: bool = False
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Frame:
    index: int
    # RGB, uint8, upright (rotation applied).
    image: np.ndarray


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(f"{path}: not a readable video ({_short(exc)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    return container


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # FFmpeg messages end with the file name; the caller already names the file.
    return text.split(": '")[0][:160]


def _rotation(stream: av.video.stream.VideoStream, first: av.VideoFrame | None) -> int:
    """Display rotation in degrees, counter-clockwise, normalised to 0/90/180/270."""
    angle = 0.0
    if first is not None:
        angle = float(getattr(first, "rotation", 0) or 0)
    if not angle:
        tag = stream.metadata.get("rotate")
        if tag:
            # The legacy tag is clockwise.
            angle = -float(tag)
    return int(round(angle / 90.0)) * 90 % 360


def probe(path: str | Path) -> VideoInfo:
    """Container properties plus whether the first frame decodes; never raises for bad files."""
    path = Path(path)
    size = path.stat().st_size if path.exists() else 0
    try:
        container = _open(path)
    except VideoError as exc:
        return VideoInfo(bytes=size, readable=False, reason=str(exc).split(": ", 1)[1])
    with container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else None
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        frame_count = stream.frames or (round(duration * fps) if duration and fps else None)
        first = None
        reason = None
        try:
            first = next(container.decode(stream), None)
            if first is None:
                reason = "no decodable frame"
        except (av.error.FFmpegError, ValueError) as exc:
            reason = f"decode failed ({_short(exc)})"
        # A file cut short keeps its header (with faststart, the frame table too): check that
        # a packet near the end is really there, one seek instead of reading the whole file.
        if reason is None and stream.frames and not _tail_present(container, stream):
            reason = f"truncated: the frames near the end of {stream.frames} are missing"
        rotation = _rotation(stream, first)
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            width=width or None,
            height=height or None,
            rotation=rotation,
            fps=fps,
            frame_count=frame_count,
            duration=duration,
            codec=stream.codec_context.name,
            has_audio=bool(container.streams.audio),
            bytes=size,
            readable=reason is None,
            reason=reason,
        )


def _tail_present(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> bool:
    if not stream.duration:
        return True  # nothing to check against
    target = (stream.start_time or 0) + int(stream.duration * 0.99)
    try:
        container.seek(target, stream=stream, any_frame=True, backward=True)
        return any(packet.size > 0 for packet in itertools.islice(container.demux(stream), 1))
    except (av.error.FFmpegError, ValueError):
        return False


def even_indices(frame_count: int, n: int) -> np.ndarray:
    """``n`` frame indices spread evenly over the video, first and last frame included."""
    if frame_count <= 0 or n <= 0:
        return np.zeros(0, dtype=int)
    if n >= frame_count:
        return np.arange(frame_count)
    return np.unique(np.linspace(0, frame_count - 1, n).round().astype(int))


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=rotation // 90))


def _reference_test(stream: av.video.stream.VideoStream) -> Callable[[bytes], bool] | None:
    """For an H.264 stream, a test of whether a packet holds a picture other pictures may refer
    to (any slice with ``nal_ref_idc`` > 0); None for any other codec (every packet decoded).
    MP4's ``avcC`` packets are length-prefixed, its size in the extradata; Annex B streams use
    start codes."""
    if stream.codec_context.name != "h264":
        return None
    extra = stream.codec_context.extradata or b""
    length_size = (extra[4] & 3) + 1 if len(extra) > 4 and extra[0] == 1 else None

    def headers(data: bytes) -> Iterator[int]:
        if length_size is None:  # Annex B: each unit follows 00 00 01
            at = data.find(b"\0\0\1")
            while 0 <= at < len(data) - 3:
                yield data[at + 3]
                at = data.find(b"\0\0\1", at + 3)
            return
        at = 0
        while at + length_size < len(data):
            size = int.from_bytes(data[at : at + length_size], "big")
            yield data[at + length_size]
            at += length_size + size

    def is_reference(data: bytes) -> bool:
        for header in headers(data):
            if header & 0x1F in (1, 2, 5):  # a slice (or its partition A)
                return bool(header >> 5 & 3)
        return True  # no slice found: decode it rather than guess

    return is_reference


def _display_ranks(path: Path) -> dict[int, int] | None:
    """Each video packet's timestamp -> its frame's index in display order, from one pass of
    the demuxer (reading packets, decoding none); None when timestamps cannot say it (missing,
    repeated, or the file breaks), and the caller then decodes every frame."""
    try:
        with av.open(str(path), mode="r") as container:
            stream = container.streams.video[0]
            pts = [p.pts for p in container.demux(stream) if p.size]
    except (av.error.FFmpegError, ValueError, IndexError):
        return None
    if not pts or None in pts or len(set(pts)) != len(pts):
        return None
    return {p: i for i, p in enumerate(sorted(pts))}


def decode_indexed(
    path: Path,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    wanted: set[int] | None,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """``(index, frame)`` for each wanted frame (every frame when ``wanted`` is None) in display
    order, decoding forward and stopping after the last wanted one. A packet is decoded only
    when it is wanted, a keyframe, or a picture others refer to, so what comes out is what a
    full decode gives. FFmpeg's errors propagate; the callers decide what a broken file means."""
    is_reference = _reference_test(stream) if wanted is not None else None
    ranks = _display_ranks(path) if is_reference is not None else None
    if wanted is not None and not wanted:
        return
    if ranks is None or is_reference is None:
        last = max(wanted) if wanted is not None else None
        for i, frame in enumerate(container.decode(stream)):
            if wanted is None or i in wanted:
                yield i, frame
            if last is not None and i >= last:
                return
        return
    remaining = set(wanted)
    for packet in container.demux(stream):
        rank = ranks.get(packet.pts) if packet.size else None
        if (
            rank is not None
            and rank not in remaining
            and not packet.is_keyframe
            and not is_reference(bytes(packet))
        ):
            continue
        for frame in packet.decode():
            i = ranks.get(frame.pts)
            if i in remaining:
                remaining.discard(i)
                yield i, frame
        if not remaining:
            return


def iter_frames(
    path: str | Path,
    indices: Sequence[int] | None = None,
    threads: bool = True,
) -> Iterator[Frame]:
    """Decode forward once and yield the wanted frames (all of them when ``indices`` is None).

    A video that ends early yields what it had; a video that cannot be opened, or breaks
    before the first wanted frame, raises :class:`VideoError`.
    """
    path = Path(path)
    container = _open(path)
    wanted = None if indices is None else set(int(i) for i in indices)
    yielded = 0
    with container:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        rotation = None
        try:
            for i, frame in decode_indexed(path, container, stream, wanted):
                if rotation is None:
                    rotation = _rotation(stream, frame)
                image = _upright(frame.to_ndarray(format="rgb24"), rotation)
                yielded += 1
                yield Frame(i, image)
        except (av.error.FFmpegError, ValueError) as exc:
            if yielded == 0:
                raise VideoError(f"{path}: decode failed ({_short(exc)})") from None
            log.warning("%s: decoding stopped early after %d frames (%s)", path, yielded, exc)


def frame_count(path: str | Path) -> int:
    """Frames in the video: the header's count, else the number of video packets."""
    container = _open(Path(path))
    with container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for p in container.demux(stream) if p.size)


def read_frames(path: str | Path, n: int) -> list[Frame]:
    """``n`` frames evenly spaced over the video, decoded forward."""
    return list(iter_frames(path, even_indices(frame_count(path), n)))


def rgb_to_yuv420(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3), even sides -> planar YUV 4:2:0 (BT.601, limited range) stacked as
    PyAV's ``yuv420p`` array ((H * 3 / 2, W)).

    Integer arithmetic only, so the encoder's input is the same bytes on every CPU: FFmpeg's
    own converter (swscale) picks SIMD kernels at run time whose rounding differs from its C
    path, which made the sample's bytes depend on the machine that rendered them.
    """
    rgb = image.astype(np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = (66 * r + 129 * g + 25 * b + 128 + (16 << 8)) >> 8
    h, w = r.shape

    # Chroma from the mean of each 2x2 block (rounded), as 4:2:0 subsampling does.
    def pool(c: np.ndarray) -> np.ndarray:
        return (c.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3)) + 2) >> 2

    rr, gg, bb = pool(r), pool(g), pool(b)
    u = (-38 * rr - 74 * gg + 112 * bb + 128 + (128 << 8)) >> 8
    v = (112 * rr - 94 * gg - 18 * bb + 128 + (128 << 8)) >> 8
    planes = [np.clip(p, 0, 255).astype(np.uint8) for p in (y, u, v)]
    return np.concatenate([q.ravel() for q in planes]).reshape(h * 3 // 2, w)


def add_streaming_h264(
    container: av.container.OutputContainer, size: tuple[int, int], fps: float, crf: int
) -> av.video.stream.VideoStream:
    """An H.264 stream of ``size`` (width, height) at ``crf`` in ``container``, encoded as a
    streaming re-encode is (:data:`STREAMING_PRESET`, yuv420p); the frame rate as a fraction, so
    29.97 stays 30000/1001."""
    stream = container.add_stream("libx264", rate=Fraction(fps or 25).limit_denominator(1001))
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.codec_context.thread_count = ENCODER_THREADS
    stream.options = {"crf": str(crf), "preset": STREAMING_PRESET}
    return stream


def encode_rgb(
    container: av.container.OutputContainer, stream: av.video.stream.VideoStream, image: np.ndarray
) -> None:
    """One RGB uint8 frame into ``stream`` (FFmpeg's RGB -> YUV: these re-encodes are a cache,
    not data that must be the same bytes on every CPU, unlike :func:`write_video`'s)."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    container.mux(stream.encode(frame.reformat(format="yuv420p")))


def write_video(
    path: str | Path,
    frames: Iterator[np.ndarray],
    fps: int = 30,
    qp: int = 23,
    audio_seconds: float | None = None,
    faststart: bool = False,
) -> None:
    """Encode RGB frames as H.264 (yuv420p) in MP4 as DFDC clips are, plus a quiet audio track
    when ``audio_seconds`` is given (DFDC clips carry one). Byte-reproducible on any x86 CPU:

    - the RGB -> YUV conversion is integer NumPy (:func:`rgb_to_yuv420`), not swscale;
    - single-threaded x264, whose assembly is bit-exact with its C code;
    - a constant quantiser ``qp``, so the rate control cannot move the whole frame's
      quantiser when only the face changed (a fake then differs from its original inside the
      face, not across the frame);
    - lossless ALAC audio from 16-bit samples: FFmpeg's AAC encoder is floating point with
      CPU-dispatched kernels, and gave other bytes under AVX2/FMA than under SSE.
    """
    path = Path(path)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    h, w = first.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"{path}: frame size {w}x{h} must be even on both sides (4:2:0)")
    options = {"movflags": "+faststart"} if faststart else {}
    container = av.open(str(path), mode="w", format="mp4", options=options)
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = h, w
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"qp": str(qp), "preset": "veryfast"}
        audio = _add_audio(container) if audio_seconds else None
        for image in itertools.chain([first], frames):
            yuv = rgb_to_yuv420(np.ascontiguousarray(image))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")))
        container.mux(stream.encode())
        if audio is not None:
            _write_tone(container, audio, audio_seconds)
    finally:
        container.close()


def _add_audio(
    container: av.container.OutputContainer, rate: int = 16000
) -> av.audio.stream.AudioStream:
    audio = container.add_stream("alac", rate=rate)
    audio.layout = "mono"
    return audio


def _write_tone(
    container: av.container.OutputContainer, audio: av.audio.stream.AudioStream, seconds: float
) -> None:
    rate = audio.codec_context.sample_rate
    # Integer samples from a 220 Hz tone (an exact 1/ rate fraction per step, rounded once).
    # One period through the C library's sine: numpy's vector sine may differ by CPU (AVX-512).
    period = rate // math.gcd(220, rate)
    tone = [round(1600 * math.sin(2 * math.pi * (220 * k % rate) / rate)) for k in range(period)]
    samples = np.resize(np.array(tone, np.int16), int(seconds * rate))
    step = audio.codec_context.frame_size or 4096
    for start in range(0, len(samples), step):
        frame = av.AudioFrame.from_ndarray(
            samples[None, start : start + step], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = start
        container.mux(audio.encode(frame))
    container.mux(audio.encode())
