"""The browser page (web/): its geometry, tracking and aggregation against the Python code it
mirrors (run in Node), and the built page in headless Chromium against ``dfdc predict``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dfdc.core.config import to_dict
from dfdc.core.video import even_indices
from dfdc.faces.detect import Detection
from dfdc.faces.frames import SampledFrame, crop_square
from dfdc.faces.pipeline import _detect_positions, _rerec
from dfdc.faces.track import build_tracks
from dfdc.inference.aggregate import video_score
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.export import export_fitted
from dfdc.inference.web import CHROMEDRIVER as DRIVER
from dfdc.inference.web import CHROMIUM, browser_scores
from tests.offline import pages_loading_remote

WEB = Path(__file__).resolve().parents[2] / "web"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="needs Node.js (the page's code runs in it)")


def node(script: str, data) -> object:
    """Run an ES-module ``script`` with ``input`` (the JSON of ``data``) in scope; it prints
    its answer as JSON."""
    code = f"const input = JSON.parse(await new Promise(r => {{ let s = ''; process.stdin.on('data', d => s += d); process.stdin.on('end', () => r(s)); }}));\n{script}"  # noqa: E501
    res = subprocess.run(
        [NODE, "--input-type=module", "-e", code], input=json.dumps(data),
        capture_output=True, text=True, cwd=WEB, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)


@needs_node
def test_the_page_samples_and_squares_as_the_faces_stage():
    """Same box in, same crop box out; same frame indices and detection positions."""
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(300):
        w, h = int(rng.integers(64, 1920)), int(rng.integers(64, 1920))
        x1, y1 = rng.uniform(-20, w), rng.uniform(-20, h)
        box = np.array([x1, y1, x1 + rng.uniform(5, w / 2), y1 + rng.uniform(5, h / 2)], np.float32)
        cases.append({"box": box.tolist(), "margin": float(rng.choice([0.0, 0.2, 0.3, 0.5])),
                      "w": w, "h": h})  # fmt: skip
    counts = [(int(n), int(k)) for n, k in rng.integers(1, 600, size=(100, 2))] + [(300, 32)]
    got = node(
        "import { cropSquare, rerec, evenIndices, detectPositions } from './src/geometry.js';\n"
        "console.log(JSON.stringify({crops: input.cases.map(c => cropSquare(c.box, c.margin,"
        " c.w, c.h)), squares: input.cases.map(c => rerec(c.box)), indices: input.counts.map("
        "([n, k]) => evenIndices(n, k)), positions: input.counts.map(([n, k]) =>"
        " detectPositions(k, 8))}));",
        {"cases": cases, "counts": counts},
    )
    for c, js in zip(cases, got["crops"], strict=True):
        py = crop_square(np.array(c["box"], np.float32), c["margin"], c["w"], c["h"])
        np.testing.assert_allclose(js, py, rtol=0, atol=1e-4)
    for c, js in zip(cases, got["squares"], strict=True):
        np.testing.assert_allclose(js, _rerec(np.array(c["box"], np.float32)), atol=1e-4)
    for (n, k), js in zip(counts, got["indices"], strict=True):
        assert js == even_indices(n, k).tolist()
    for (_, k), js in zip(counts, got["positions"], strict=True):
        assert js == _detect_positions(k, 8)


@needs_node
def test_the_page_cuts_the_same_pixels_from_a_yuv_frame():
    """The crop of a decoded I420 frame (YUV resampled, then BT.601): within a grey level on
    average of the faces stage's (OpenCV rounds its fixed-point resize differently)."""
    rng = np.random.default_rng(1)
    w, h = 320, 240
    yy, xx = np.mgrid[0:h, 0:w]
    y = (128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + rng.normal(0, 8, (h, w))).clip(16, 235)
    u = (128 + 40 * np.sin(xx[::2, ::2] / 7.0)).clip(16, 240)
    v = (128 + 40 * np.cos(yy[::2, ::2] / 5.0)).clip(16, 240)
    planes = tuple(p.astype(np.uint8) for p in (y, u, v))
    frame = SampledFrame(0, w, h, planes, None)
    boxes = [[10.4, 20.6, 210.4, 220.6], [100.0, 50.0, 148.0, 98.0], [0.0, 0.0, 30.2, 30.2]]
    got = node(
        "import { cropYuv } from './src/geometry.js';\n"
        "const f = {width: input.w, height: input.h, y: Uint8Array.from(input.y),"
        " u: Uint8Array.from(input.u), v: Uint8Array.from(input.v)};\n"
        "console.log(JSON.stringify(input.boxes.flatMap(b => [224, 48].map(s =>"
        " Array.from(cropYuv(f, b, s))))));",
        {"w": w, "h": h, "y": planes[0].ravel().tolist(), "u": planes[1].ravel().tolist(),
         "v": planes[2].ravel().tolist(), "boxes": boxes},
    )  # fmt: skip
    k = 0
    for box in boxes:
        for size in (224, 48):
            py = frame.crop(box, size).astype(float)
            js = np.asarray(got[k], float).reshape(size, size, 3)
            k += 1
            assert np.abs(js - py).mean() < 1.0, (box, size, np.abs(js - py).mean())
            assert np.abs(js - py).max() <= 6


@needs_node
def test_the_page_builds_the_same_tracks():
    rng = np.random.default_rng(2)
    for trial in range(30):
        n_pos = int(rng.integers(8, 40))
        runs = _detect_positions(n_pos, int(rng.integers(1, 9)))
        faces = [rng.uniform(0, 500, 2) for _ in range(int(rng.integers(1, 4)))]
        det: dict[int, list[Detection]] = {}
        for pos in runs:
            det[pos] = []
            for c in faces:
                if rng.random() < 0.75:
                    c = c + rng.normal(0, 4, 2)
                    s = rng.uniform(40, 90)
                    box = np.array([c[0], c[1], c[0] + s, c[1] + s], np.float32)
                    lm = rng.uniform(0, 500, (5, 2)).astype(np.float32)
                    det[pos].append(Detection(box, float(rng.uniform(0.9, 1)), lm))
        opts = {"iou_threshold": 0.3, "max_gap": 2, "min_fraction": 0.3, "max_tracks": 2,
                "carry": 7}  # fmt: skip
        py = build_tracks(det, n_pos, **opts)
        js = node(
            "import { buildTracks } from './src/track.js';\n"
            "const d = new Map(input.det.map(([p, ds]) => [p, ds]));\n"
            "const t = buildTracks(d, input.n, {iouThreshold: 0.3, maxGap: 2, minFraction: 0.3,"
            " maxTracks: 2, carry: 7});\n"
            "console.log(JSON.stringify(t.map(tr => [...tr.boxes].sort((a, b) => a[0] - b[0])"
            ".map(([p, b]) => [p, b.box, b.detected]))));",
            {"n": n_pos, "det": [[p, [{"box": d.box.tolist(), "prob": d.prob,
                                       "landmarks": d.landmarks.tolist()} for d in ds]]
                                 for p, ds in det.items()]},
        )  # fmt: skip
        assert len(js) == len(py), trial
        for jt, pt in zip(js, py, strict=True):
            assert [p for p, _, _ in jt] == sorted(pt.boxes), trial
            for p, box, detected in jt:
                assert detected == pt.boxes[p].detected
                np.testing.assert_allclose(box, pt.boxes[p].box, atol=1e-3)


@needs_node
def test_the_page_aggregates_and_calibrates_as_the_ensemble():
    rng = np.random.default_rng(3)
    cases = []
    for _ in range(40):
        n = int(rng.integers(1, 40))
        probs = rng.beta(0.5, 0.5, n).tolist()
        tracks = rng.integers(0, 2, n).tolist()
        cases.append({"probs": probs, "tracks": tracks})
    ens = Ensemble(["a", "b"], [0.7, 0.3], rule="confident", temperature=1.7, clip=0.02, frames=12)
    # Frame scores near 0 and 1 too: the logit's clip (EPS) must be the same number in both.
    frame_probs = {m: [1e-9, 0.01, 0.5, 0.93, 1 - 1e-9] for m in ("a/fold0", "a/fold1", "b/f0")}
    frame_probs["a/fold1"] = [0.2, 0.4, 0.6, 0.8, 0.99]
    got = node(
        "import { videoScore, ensembleProb, ensembleFrameScores, scoredFrames }"
        " from './src/score.js';\n"
        "const out = [];\n"
        "for (const c of input.cases) for (const rule of ['mean', 'confident', 'weighted'])"
        " for (const comb of ['max', 'mean'])"
        " out.push(videoScore(c.probs, c.tracks, rule, comb));\n"
        "const ens = ensembleProb(input.ens, {'a/fold0': 0.9, 'a/fold1': 0.7, 'b/fold0': 0.2});\n"
        "const frames = ensembleFrameScores(input.ens, input.frames);\n"
        "const counts = [input.ens, {...input.ens, frames: 0}].map((e) =>"
        " scoredFrames({ensemble: e, faces: {frames: 32}}));\n"
        "console.log(JSON.stringify({out, ens, frames, counts}));",
        {"cases": cases, "ens": ens.as_dict(), "frames": frame_probs},
    )
    # Frames sampled: the ensemble's count when it has one (what its calibration was fitted
    # for), else the faces settings', as dfdc predict's Predictor takes them.
    assert got["counts"] == [12, 32]
    k = 0
    for c in cases:
        for rule in ("mean", "confident", "weighted"):
            for comb in ("max", "mean"):
                assert got["out"][k] == pytest.approx(
                    video_score(c["probs"], c["tracks"], rule, comb)
                )
                k += 1
    want = ens.prob({"a/fold0": 0.9, "a/fold1": 0.7, "b/fold0": 0.2})
    assert got["ens"] == pytest.approx(want, abs=1e-12)
    assert got["frames"] == pytest.approx(ens.frame_scores(frame_probs).tolist(), abs=1e-12)


# The page against dfdc predict with the same export: same frames and tracks, boxes within
# 2 px of the detection image (the page resamples it from YUV itself, FFmpeg's scaler does in
# Python), every member's per-frame probability and the video probability within 0.02.
AGREE_PROB, AGREE_DETECTION_PX = 0.02, 2.0


@pytest.fixture(scope="module")
def web_export(four_kinds, tmp_path_factory):
    """The tiny sample's frame model and its sequence twin, exported with MTCNN, as params."""
    base, _ = four_kinds
    tmp = tmp_path_factory.mktemp("web")
    ens = Ensemble(["frame", "seq"], [0.6, 0.4], clip=0.01)
    ens.save(tmp / "ensemble.json")
    export_fitted(base.base.models_dir, ens, tmp / "export")
    raw = to_dict(base)
    raw["ensemble"]["ensemble_path"] = str(tmp / "ensemble.json")
    raw["inference"] = {"engine": "onnx", "export_dir": str(tmp / "export")}
    (tmp / "params.yaml").write_text(json.dumps(raw))
    return tmp


needs_browser = pytest.mark.skipif(
    NODE is None or shutil.which("npm") is None or not (CHROMIUM.exists() and DRIVER.exists()),
    reason="needs Node.js with npm and Debian's chromium and chromium-driver (apt-get install "
    "chromium chromium-driver; .ci/run installs them)",
)


@pytest.fixture(scope="module")
def site(web_export) -> Path:
    """The page built by ``dfdc export --web`` from the tiny sample's export."""
    out = web_export / "site"
    res = subprocess.run(
        [sys.executable, "-m", "dfdc.cli", "export", "--params", str(web_export / "params.yaml"),
         "--web", str(out)], capture_output=True, text=True, cwd=web_export,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    return out


@needs_browser
def test_the_page_scores_shared_clips_as_dfdc_predict(web_export, site, shared_dfdc,
                                                      shared_ffpp_c23):  # fmt: skip
    clips = [sorted(shared_dfdc.rglob("*.mp4"))[0], sorted(shared_ffpp_c23.rglob("*.mp4"))[0]]
    assert (site / "vendor" / "ort-wasm-simd-threaded.jsep.wasm").is_file()
    assert json.loads((site / "build.json").read_text())["packages"]["onnxruntime-web"]
    res = subprocess.run(
        [sys.executable, "-m", "dfdc.cli", "predict", *map(str, clips), "--json", "--params",
         str(web_export / "params.yaml")], capture_output=True, text=True, cwd=web_export,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    want = {Path(p["video"]).name: p for p in json.loads(res.stdout)}
    side = json.loads((web_export / "params.yaml").read_text())["faces"]["detect_max_side"]
    got = browser_scores(site, clips, web_export / "page.png")
    assert (web_export / "page.png").stat().st_size > 10_000
    for r in got["results"]:
        w = want[r["video"]]
        assert r["status"] == w["status"] == "ok", r
        assert r["frames"] == w["frames"] and r["tracks"] == w["tracks"]
        px = max(1.0, max(r["width"], r["height"]) / side)  # full-frame px per detection px
        assert np.abs(np.subtract(r["boxes"], w["boxes"])).max() <= AGREE_DETECTION_PX * px
        for name, probs in w["frame_probs"].items():
            assert np.abs(np.subtract(r["frameProbs"][name], probs)).max() <= AGREE_PROB, name
        # The one frame score (the boxes' labels), as --json and the report have it.
        assert np.abs(np.subtract(r["frameScores"], w["frame_scores"])).max() <= AGREE_PROB
        assert abs(r["prob"] - w["prob"]) <= AGREE_PROB, (r["prob"], w["prob"])
    assert not got["errors"], got["errors"]
    # The box labels are as large on screen as small print (once 8 px: drawn for the full
    # canvas, shown at 40 % of it).
    assert got["label_px"] and min(got["label_px"]) >= 12, got["label_px"]


@needs_browser
def test_the_page_says_what_it_cannot_score(site, tiny_raw, tmp_path):
    """No face, one frame, a portrait clip, a file that is not a video: each gets its line
    (and 0.5 where nothing could be scored); opened from file:// it says how to serve it."""
    from dfdc.core.video import write_video

    assert pages_loading_remote(site) == {}  # the built page loads nothing remote
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.mp4"
    write_video(noise, iter(rng.integers(0, 255, (12, 240, 320, 3), dtype=np.uint8)))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + rng.bytes(2000))
    portrait = next(
        p for p in sorted(tiny_raw.rglob("*.mp4")) if _size(p)[1] > _size(p)[0]
    )  # the sample renders one part portrait
    got = browser_scores(site, [noise, broken, portrait], tmp_path / "odd.png")
    by = {r["video"]: r for r in got["results"]}
    assert by["noise.mp4"]["status"] == "no_face" and by["noise.mp4"]["prob"] == 0.5
    assert by["broken.mp4"]["status"] == "unreadable" and "broken.mp4" in by["broken.mp4"]["reason"]
    assert by[portrait.name]["status"] in ("ok", "no_face")
    assert by[portrait.name]["height"] > by[portrait.name]["width"]
    assert not got["errors"], got["errors"]
    assert "file://" in page_status(f"file://{site / 'index.html'}")


def _size(path: Path) -> tuple[int, int]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.width, s.height


def page_status(url: str) -> str:
    """The page's status line a moment after opening ``url``."""
    from selenium.webdriver.common.by import By

    from dfdc.inference.web import chromium

    driver = chromium()
    try:
        driver.get(url)
        time.sleep(1.0)
        return driver.find_element(By.ID, "status").text
    finally:
        driver.quit()
