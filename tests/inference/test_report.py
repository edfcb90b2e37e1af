"""The per-video report (dfdc predict --report), its heatmaps, and the evaluation index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfdc.core.config import ModelConfig
from dfdc.core.video import read_frames, write_video
from dfdc.faces.detect import Detector
from dfdc.faces.pipeline import extract_video
from dfdc.inference.aggregate import video_score
from dfdc.inference.predict import load_bundle
from dfdc.inference.web import CHROMEDRIVER as DRIVER
from dfdc.inference.web import CHROMIUM
from dfdc.kinds.backbones import build_model, grad_cam
from dfdc.reports.video_report import PAGE_WIDTH, read_report, video_report
from tests.offline import pages_loading_remote

SIZE, PATCH = 128, 32  # crop side; the manipulated square's side (6.25 % of the crop)


def _patch_data(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Smooth random 'faces'; each fake is its real with a textured square pasted at a random
    place, the only difference between the two (the region is known)."""
    base = rng.normal(0, 1, (n, 3, 16, 16)).astype(np.float32)
    x = torch.nn.functional.interpolate(torch.from_numpy(base), size=SIZE, mode="bilinear")
    y = torch.zeros(n)
    regions = [None] * n
    for i in range(n // 2, n):
        r, c = rng.integers(0, SIZE - PATCH, 2)
        x[i, :, r : r + PATCH, c : c + PATCH] += torch.from_numpy(
            rng.normal(0, 1.5, (3, PATCH, PATCH)).astype(np.float32)
        )
        y[i] = 1
        regions[i] = (int(r), int(c))
    return x, y, regions


def _inside(cams: np.ndarray, regions: list) -> float:
    """Mean share of each map's mass inside its fake's square."""
    shares = []
    for cam, reg in zip(cams, regions, strict=True):
        r, c = reg
        shares.append(cam[r : r + PATCH, c : c + PATCH].sum() / max(cam.sum(), 1e-12))
    return float(np.mean(shares))


def test_the_heatmap_points_at_the_manipulated_region():
    """A frame model trained to tell pasted squares puts most of its Grad-CAM mass inside the
    square: at least 3x the square's share of the crop (6.25 %; a 4x4 final feature map at 128
    px cannot confine it to the square; 5.2x measured); the same architecture with shuffled
    weights does not reach 2x."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model(ModelConfig(backbone="resnet10t", input_size=SIZE, pretrained=False))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(40):  # 40 steps: accuracy 0.97 on the held-out batch, 5.2x the area
        x, y, _ = _patch_data(32, rng)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y, regions = _patch_data(64, np.random.default_rng(1))
    with torch.no_grad():
        acc = float(((model(x)[:, 0] > 0).float() == y).float().mean())
    assert acc > 0.9  # it learned the task
    fakes = [i for i in range(64) if y[i] == 1]
    area = PATCH**2 / SIZE**2
    trained = _inside(grad_cam(model, x[fakes]), [regions[i] for i in fakes])
    shuffled = build_model(ModelConfig(backbone="resnet10t", input_size=SIZE, pretrained=False))
    with torch.no_grad():
        for p in shuffled.parameters():
            p.copy_(p.flatten()[torch.randperm(p.numel())].view_as(p))
    random = _inside(grad_cam(shuffled.eval(), x[fakes]), [regions[i] for i in fakes])
    print(f"mass inside the square: trained {trained:.3f}, shuffled {random:.3f}, area {area}")
    assert trained >= 3 * area
    assert random < 2 * area


@pytest.fixture(scope="module")
def bundle(kernel_package):
    params, _, ens = kernel_package
    return load_bundle(params.base.models_dir, "cpu", ensemble=ens)


def test_the_reports_numbers_are_dfdc_predicts(bundle, tiny_raw, tmp_path):
    video = sorted((tiny_raw / "test_videos").glob("*.mp4"))[0]
    rep = video_report(bundle, video, tmp_path)
    data = read_report(rep.page.parent)
    assert data["prob"] == pytest.approx(bundle.score(video).prob, abs=1e-12)
    # Re-aggregating the JSON with the stated rule gives each member's score and the verdict.
    members = {
        name: video_score(probs, data["tracks"], data["rule"], data["faces_combine"])
        for name, probs in data["frame_probs"].items()
    }
    assert members == pytest.approx(data["member_scores"])
    assert bundle.ensemble.prob(members) == pytest.approx(data["prob"])
    # One frame score, the same number here, in dfdc predict --json and on the web page.
    assert data["frame_scores"] == bundle.score(video).as_dict()["frame_scores"]
    assert data["frame_scores"] == pytest.approx(
        bundle.ensemble.frame_scores(data["frame_probs"]).tolist(), abs=1e-6
    )
    # The boxes are the crops' boxes.
    cfg = bundle.predictor.faces_cfg
    vf = extract_video(video, cfg, Detector(cfg, "cpu"))
    assert np.allclose(data["crop_boxes"], vf.crop_box, atol=0.01)
    assert np.allclose(data["boxes"], vf.box, atol=0.01)
    assert {m["kind"] for m in data["members"]} == {"frame", "sequence"}
    assert all(len(m["sha256"]) == 64 for m in data["members"])
    assert data["heatmaps"] and data["frame_effect"] and data["decided"]
    page = rep.page.read_text()
    for img in ("frames.png", "timeline.png", "heatmaps.png"):
        assert (rep.page.parent / img).stat().st_size > 1000 and img in page
        # At most the page's width, so shown 1:1 and its labels as drawn (13 px text), not
        # shrunk to a few pixels as a 2,590-pixel grid of whole frames was.
        assert cv2.imread(str(rep.page.parent / img)).shape[1] <= PAGE_WIDTH, img
    assert "trained on" in page.lower() or "Models trained on" in page


def _odd_videos(tiny_raw: Path, out: Path) -> dict[str, Path]:
    src = sorted((tiny_raw / "test_videos").glob("*.mp4"))[0]
    frames = [f.image for f in read_frames(src, 12)]
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 40, (96, 128, 3), dtype=np.uint8) for _ in range(8)]
    videos = {"no_face": out / "noise.mp4", "one_frame": out / "one.mp4",
              "portrait": out / "portrait.mp4"}  # fmt: skip
    write_video(videos["no_face"], iter(noise))
    write_video(videos["one_frame"], iter(frames[:1]))
    write_video(videos["portrait"], (np.ascontiguousarray(np.rot90(f)) for f in frames))
    return videos


def test_odd_videos_get_a_report_that_says_so(bundle, tiny_raw, tmp_path):
    videos = _odd_videos(tiny_raw, tmp_path)
    no_face = read_report(video_report(bundle, videos["no_face"], tmp_path / "r").page.parent)
    assert no_face["status"] == "no_face" and no_face["prob"] == 0.5
    assert any("no face" in n for n in no_face["notes"])
    one = video_report(bundle, videos["one_frame"], tmp_path / "r")
    assert one.data["status"] in ("ok", "no_face")
    if one.data["status"] == "ok":
        assert any("one frame" in n for n in one.data["notes"])
    portrait = video_report(bundle, videos["portrait"], tmp_path / "r")
    assert portrait.page.exists() and portrait.data["status"] in ("ok", "no_face")


def test_predict_and_evaluate_write_reports(kernel_package, tiny_raw, tmp_path):
    params, _, _ = kernel_package
    from dfdc.core.config import to_dict

    (tmp_path / "params.yaml").write_text(json.dumps(to_dict(params)))
    videos = [str(p) for p in sorted((tiny_raw / "test_videos").glob("*.mp4"))[:2]]
    res = subprocess.run(
        [sys.executable, "-m", "dfdc.cli", "predict", *videos, "--params",
         str(tmp_path / "params.yaml"), "--report", str(tmp_path / "rep")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    for v in videos:
        assert (tmp_path / "rep" / Path(v).stem / "index.html").exists()
    res = subprocess.run(
        [sys.executable, "-m", "dfdc.cli", "evaluate", str(tiny_raw / "train"), "--params",
         str(tmp_path / "params.yaml"), "--report", str(tmp_path / "eval")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    index = (tmp_path / "eval" / "index.html").read_text()
    assert "Most confident false positives" in index and "Most confident false negatives" in index
    listed = json.loads((tmp_path / "eval" / "index.json").read_text())["mistakes"]
    for rows in listed.values():
        for row in rows:
            assert (tmp_path / "eval" / row["report"]).exists()
    assert pages_loading_remote(tmp_path) == {}  # every page opens offline


@pytest.mark.skipif(
    not (CHROMIUM.exists() and DRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver; .ci/run installs them)",
)
def test_the_report_renders_in_a_real_browser(bundle, tiny_raw, tmp_path):
    """Headless Chromium opens the page over a loopback server: every image loads, no console
    error; a screenshot is kept."""
    import functools
    import http.server
    import threading

    from dfdc.inference.web import chromium

    video = sorted((tiny_raw / "test_videos").glob("*.mp4"))[0]
    rep = video_report(bundle, video, tmp_path / "site")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(tmp_path / "site"))  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = chromium(window="1200,2400")
    try:
        driver.get(f"http://127.0.0.1:{server.server_port}/{video.stem}/index.html")
        loaded = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        )
        assert loaded and all(loaded), loaded
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        assert "P(fake)" in driver.page_source
        driver.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000
    finally:
        driver.quit()
        server.shutdown()
    assert rep.page.exists()
