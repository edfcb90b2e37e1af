import av
import numpy as np
import pytest

import dfdc.core.video as video
from dfdc.core.video import (
    VideoError,
    _reference_test,
    _upright,
    add_streaming_h264,
    even_indices,
    frame_count,
    iter_frames,
    probe,
    read_frames,
    write_video,
)


def _ramp(n, h=64, w=96):
    for t in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = (np.arange(w) * 2 + t * 8) % 256
        img[..., 1] = 128
        img[..., 2] = (t * 10) % 250
        yield img


def test_even_indices_cover_first_and_last():
    idx = even_indices(300, 32)
    assert idx[0] == 0 and idx[-1] == 299 and len(idx) == 32
    assert np.all(np.diff(idx) > 0)
    assert list(even_indices(5, 10)) == [0, 1, 2, 3, 4]
    assert len(even_indices(0, 10)) == 0


def test_write_probe_and_read_roundtrip(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, _ramp(20), fps=25, qp=18, audio_seconds=0.8)  # blue = 10 x frame
    info = probe(path)
    assert info.readable and info.codec == "h264" and info.has_audio
    assert (info.width, info.height, info.frame_count) == (96, 64, 20)
    assert info.fps == pytest.approx(25)
    frames = read_frames(path, 5)
    assert [f.index for f in frames] == [0, 5, 10, 14, 19]
    # Decoding forward returns the right frames: the blue channel encodes the frame number.
    for f in frames:
        assert abs(float(f.image[..., 2].mean()) - f.index * 10) < 6


def test_iter_frames_stops_after_last_wanted(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, _ramp(30))
    assert [f.index for f in iter_frames(path, [3, 7])] == [3, 7]
    assert frame_count(path) == 30


def _streaming_clip(path, n=60, fmt="mp4"):
    """Moving noise in x264's DFDC-like GOP: three B frames between P frames, the middle one
    a reference (B-pyramid), the other two referred to by nothing."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (96, 400, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", format=fmt) as container:
        stream = add_streaming_h264(container, (128, 96), 25, 23)
        stream.options = {**stream.options, "x264-params": "b-adapt=0:bframes=3:b-pyramid=normal"}
        for t in range(n):
            video.encode_rgb(
                container, stream, np.ascontiguousarray(texture[:, 3 * t : 3 * t + 128])
            )
        container.mux(stream.encode())


@pytest.mark.parametrize("fmt", ["mp4", "mpegts"])  # length-prefixed units, and Annex B
def test_wanted_frames_skip_unreferenced_pictures_and_match_a_full_decode(tmp_path, fmt):
    path = tmp_path / f"v.{fmt}"
    _streaming_clip(path, fmt=fmt)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        is_reference = _reference_test(s)
        refs = [is_reference(bytes(p)) for p in c.demux(s) if p.size]
    skippable = refs.count(False)
    assert 10 < skippable < len(refs)  # the clip has pictures nothing refers to

    decoded = []
    real = video._reference_test

    def counting(stream):
        test = real(stream)
        return lambda data: decoded.append(test(data)) or test(data)

    wanted = [0, 1, 2, 7, 13, 14, 29, 41, 42, 58]
    video._reference_test = counting
    try:
        fast = {f.index: f.image for f in iter_frames(path, wanted)}
    finally:
        video._reference_test = real
    every = {f.index: f.image for f in iter_frames(path)}
    assert sorted(fast) == wanted
    for i in wanted:  # bit-identical to the frame a full decode gives
        assert np.array_equal(fast[i], every[i]), i
    # Unreferenced pictures were left out, unless wanted: far fewer sent to the decoder.
    assert decoded.count(False) >= skippable - len(wanted) - 2  # wanted, or after the last


def test_frames_without_timestamps_are_all_decoded(tmp_path, monkeypatch):
    """When display order cannot be told from timestamps, every frame is decoded, as before."""
    path = tmp_path / "v.mp4"
    _streaming_clip(path, n=20)
    expected = {f.index: f.image for f in iter_frames(path, [3, 9])}
    monkeypatch.setattr(video, "_display_ranks", lambda p: None)
    fallback = {f.index: f.image for f in iter_frames(path, [3, 9])}
    assert sorted(fallback) == [3, 9]
    assert all(np.array_equal(expected[i], fallback[i]) for i in (3, 9))


def test_upright_rotation():
    img = np.arange(6).reshape(2, 3)
    assert _upright(img, 0) is img
    assert _upright(img, 90).shape == (3, 2)
    assert np.array_equal(_upright(img, 180), img[::-1, ::-1])


def test_bad_files_raise_one_line_errors(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 100)
    for path, fragment in [
        (empty, "0 bytes"),
        (junk, "not a readable video"),
        (tmp_path / "nope.mp4", "not found"),
    ]:
        with pytest.raises(VideoError) as err:
            list(iter_frames(path))
        assert str(path) in str(err.value) and fragment in str(err.value)
        assert "\n" not in str(err.value)


def test_truncated_faststart_file_is_flagged(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, _ramp(60, 128, 160), faststart=True)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    info = probe(cut)
    assert not info.readable
    assert "truncated" in info.reason


def test_real_clips_decode_only_what_is_needed_and_give_the_same_frames(
    shared_dfdc, shared_ffpp_c23
):
    """On a DFDC clip (1080p, B-pyramid) and an FF++ one, the 32 sampled frames come out the
    same as from a full decode; about half the DFDC clip's pictures are referred to by nothing
    (so left undecoded unless sampled: the skipping itself is tested on a made clip above)."""
    clips = [sorted(shared_dfdc.rglob("*.mp4"))[0], sorted(shared_ffpp_c23.rglob("*.mp4"))[0]]
    for path in clips:
        wanted = set(even_indices(frame_count(path), 32).tolist())
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            fast = {i: f.to_ndarray() for i, f in video.decode_indexed(path, c, s, wanted)}
            is_reference = _reference_test(s)
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            unreferenced = sum(1 for p in c.demux(s) if p.size and not is_reference(bytes(p)))
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            every = {i: f.to_ndarray() for i, f in enumerate(c.decode(s)) if i in wanted}
        assert sorted(fast) == sorted(every) == sorted(wanted), path.name
        assert all(np.array_equal(fast[i], every[i]) for i in wanted), path.name
        if "dfdc" in str(path):
            assert unreferenced > 0.4 * frame_count(path), unreferenced
