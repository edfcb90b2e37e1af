"""Shared backbone passes, the ONNX export and the ONNX Runtime engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from dfdc.core.config import to_dict
from dfdc.core.onnx_sessions import RUNTIMES, SessionError
from dfdc.faces.detect import Detector
from dfdc.faces.pipeline import extract_video
from dfdc.faces.store import load_video_faces
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.export import export_ensemble, export_fitted, export_module
from dfdc.inference.onnx_engine import ExportError, OnnxEngine
from dfdc.inference.predict import load_bundle
from dfdc.inference.torch_engine import TorchEngine
from dfdc.kinds import CropBatch
from tests.conftest import run_offline_kernel

TOLERANCE = 1e-4  # the export stage's, in probability


def _crops(tiny_stage) -> list:
    table = pd.read_parquet(tiny_stage / "faces.parquet")
    return [load_video_faces(f) for f in table["file"].drop_duplicates().head(2)]


def test_a_shared_backbone_pass_gives_the_same_scores_as_two(four_kinds, tiny_stage):
    _, paths = four_kinds
    engine = TorchEngine.load([paths["frame"], paths["seq"]], "cpu")
    frame, seq = engine.models
    assert frame.backbone_id and frame.backbone_id == seq.backbone_id
    for vf in _crops(tiny_stage):
        shared = CropBatch(vf.crops, vf.track, vf.frame, engine.rt)
        apart = CropBatch(vf.crops, vf.track, vf.frame, engine.rt, share=False)
        one = {m.name: m.crop_probs(shared) for m in engine.models}
        two = {m.name: m.crop_probs(apart) for m in engine.models}
        assert shared.passes == 1 and apart.passes == 2
        for name in one:
            assert np.max(np.abs(one[name] - two[name])) <= 1e-6


def test_a_ws_dan_model_runs_its_own_pass(four_kinds):
    """Its eval logit also looks at an attention crop: its pooled features do not give it."""
    _, paths = four_kinds
    (ws,) = TorchEngine.load([paths["wsdan"]], "cpu").models
    (srm,) = TorchEngine.load([paths["srm"]], "cpu").models
    assert ws.backbone_id == "" and srm.backbone_id.startswith("run:")


@pytest.fixture(scope="session")
def exported(four_kinds, tmp_path_factory):
    _, paths = four_kinds
    engine = TorchEngine.load(list(paths.values()), "cpu")
    out = tmp_path_factory.mktemp("onnx")
    ens = Ensemble(["frame", "seq", "srm", "wsdan"], [0.4, 0.3, 0.2, 0.1], clip=0.01)
    result = export_ensemble(engine.models, ens, out, engine.checkpoints)
    return engine, out, result


def test_every_exported_graph_passes_the_checker_with_a_dynamic_batch(exported):
    _, out, result = exported
    manifest = json.loads((out / "export.json").read_text())
    # The frame model and the sequence model that embeds with it share one backbone file.
    by_name = {m["name"]: m for m in manifest["members"]}
    assert by_name["frame/fold0"]["backbone"] == by_name["seq/fold0"]["backbone"]
    assert len(manifest["backbones"]) == 3 and by_name["seq/fold0"]["head"]
    assert manifest["ensemble"]["weights"] == [0.4, 0.3, 0.2, 0.1]
    assert manifest["faces"]["crop_size"] == by_name["frame/fold0"]["crop_size"]
    for path in result.files:
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param or dims[1].dim_param  # batch (backbones) or track length


def _parity(
    engine: TorchEngine, folder: Path, videos, runtime: str = "onnxruntime"
) -> dict[str, float]:
    onnx_engine = OnnxEngine(folder, runtime=runtime)
    worst = {m.name: 0.0 for m in engine.models}
    for vf in videos:
        ref = engine.crop_probs(vf.crops, vf.track, vf.frame)
        got = onnx_engine.crop_probs(vf.crops, vf.track, vf.frame)
        for k in worst:
            worst[k] = max(worst[k], float(np.max(np.abs(ref[k] - got[k]))))
    return worst


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_onnx_runtime_matches_torch_on_the_samples_crops(exported, tiny_stage, runtime):
    engine, out, _ = exported
    worst = _parity(engine, out, _crops(tiny_stage), runtime)
    assert set(worst) == {"frame/fold0", "seq/fold0", "srm/fold0", "wsdan/fold0"}
    assert max(worst.values()) <= TOLERANCE, worst


@pytest.mark.shared
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_onnx_runtime_matches_torch_on_real_crops(exported, shared_dfdc, runtime):
    """Crops the faces pipeline makes of two real DFDC clips, on both runtimes."""
    engine, out, _ = exported
    cfg = engine.faces
    clips = sorted(shared_dfdc.rglob("*.mp4"))[:2]
    detector = Detector(cfg, "cpu")
    videos = [extract_video(p, cfg, detector) for p in clips]
    videos = [v for v in videos if v.status["status"] == "ok"]
    assert videos
    worst = _parity(engine, out, videos, runtime)
    assert max(worst.values()) <= TOLERANCE, worst


def test_a_missing_or_corrupt_export_file_is_one_line(exported, tmp_path):
    _, out, _ = exported
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    manifest = json.loads((broken / "export.json").read_text())
    victim = broken / manifest["members"][0]["backbone"]
    victim.write_bytes(victim.read_bytes()[:1000])
    for runtime in RUNTIMES:
        with pytest.raises(SessionError, match=rf"{victim}: not a loadable ONNX model"):
            OnnxEngine(broken, runtime=runtime)
    victim.unlink()
    with pytest.raises(SessionError, match=rf"{victim}: exported model file missing"):
        OnnxEngine(broken)
    (broken / "export.json").write_text("{not json")
    with pytest.raises(ExportError, match=r"export\.json: not a readable export manifest"):
        OnnxEngine(broken)
    with pytest.raises(FileNotFoundError, match="no ONNX export here"):
        OnnxEngine(tmp_path / "nowhere")


def test_a_layer_that_cannot_be_exported_is_named(tmp_path):
    class Inner(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(x.numpy() * 2)  # leaves the graph: no ONNX for it

    class Outer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 4, 3)
            self.odd = Inner()

        def forward(self, x):
            return self.odd(self.stem(x)).mean((1, 2, 3))

    with pytest.raises(
        ExportError, match=r"best\.pt: cannot export to ONNX at layer odd \(Inner\)"
    ):
        export_module(
            Outer(), torch.zeros(2, 3, 8, 8), tmp_path / "m.onnx", "crops", ("logit",),
            {"crops": {0: "n"}}, "models/x/fold0/best.pt",
        )  # fmt: skip
    assert not (tmp_path / "m.onnx").exists()


def test_a_stale_export_is_refused(four_kinds, tmp_path):
    """An export of other weights than the checkpoint beside it never scores silently."""
    _, paths = four_kinds
    models = tmp_path / "models" / "frame" / "fold0"
    models.mkdir(parents=True)
    shutil.copy(paths["frame"], models / "best.pt")
    ens = Ensemble(["frame"], [1.0])
    export_fitted(tmp_path / "models", ens, tmp_path / "export")
    bundle = load_bundle(tmp_path / "models", "cpu", ens, engine="onnx",
                         export_dir=tmp_path / "export")  # fmt: skip
    assert [m.name for m in bundle.predictor.models] == ["frame/fold0"]
    state = torch.load(models / "best.pt", weights_only=False)
    state["metrics"] = {"changed": True}
    torch.save(state, models / "best.pt")
    with pytest.raises(ExportError, match="stale export"):
        load_bundle(tmp_path / "models", "cpu", ens, engine="onnx", export_dir=tmp_path / "export")


def _onnx_params(base, ens: Ensemble, tmp_path: Path) -> dict:
    """Raw params of ``base`` scoring with ``ens`` on the onnx engine, its export made in
    ``tmp_path``."""
    ens.save(tmp_path / "ensemble.json")
    export_fitted(base.base.models_dir, ens, tmp_path / "export")
    raw = to_dict(base)
    raw["ensemble"]["ensemble_path"] = str(tmp_path / "ensemble.json")
    raw["inference"] = {"engine": "onnx", "export_dir": str(tmp_path / "export")}
    return raw


def test_predict_with_the_onnx_engine_agrees_with_torch(four_kinds, tiny_raw, tmp_path):
    base, _ = four_kinds
    ens = Ensemble(["frame", "seq"], [0.5, 0.5], clip=0.01)
    raw = _onnx_params(base, ens, tmp_path)
    (tmp_path / "params.yaml").write_text(json.dumps(raw))
    videos = [str(p) for p in sorted((tiny_raw / "test_videos").glob("*.mp4"))[:2]]
    probs = {}
    for engine in ("torch", "onnx"):
        res = subprocess.run(
            [sys.executable, "-m", "dfdc.cli", "predict", *videos, "--params",
             str(tmp_path / "params.yaml"), "--engine", engine],
            capture_output=True, text=True, cwd=tmp_path,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-2000:]
        probs[engine] = [float(line.split("\t")[1]) for line in res.stdout.splitlines()]
    assert len(probs["onnx"]) == 2
    assert np.max(np.abs(np.subtract(probs["onnx"], probs["torch"]))) <= TOLERANCE


def test_predict_with_a_broken_export_is_one_line(four_kinds, tiny_raw, tmp_path):
    base, _ = four_kinds
    raw = to_dict(base)
    raw["inference"] = {"engine": "onnx", "export_dir": str(tmp_path / "none")}
    (tmp_path / "params.yaml").write_text(json.dumps(raw))
    video = str(sorted((tiny_raw / "test_videos").glob("*.mp4"))[0])
    res = subprocess.run(
        [sys.executable, "-m", "dfdc.cli", "predict", video, "--params",
         str(tmp_path / "params.yaml"), "--models", str(Path(base.base.models_dir) / "frame")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("dfdc predict: error: ")
    assert "no ONNX export here" in res.stderr and "Traceback" not in res.stderr


def test_the_kernel_built_for_the_onnx_engine_runs_offline(four_kinds, tiny_raw, tmp_path):
    from dfdc.core.config import params_from_dict
    from dfdc.inference.kernel import build_kernel
    from dfdc.inference.submission import make_submission

    base, _ = four_kinds
    ens = Ensemble(["frame", "seq"], [0.6, 0.4], clip=0.01)
    raw = _onnx_params(base, ens, tmp_path)
    raw["package"] = {"owner": "someone", "out_dir": str(tmp_path / "package"), "time_videos": 0}
    build_kernel(params_from_dict(raw))
    out = tmp_path / "package"
    assert not list((out / "models").rglob("*.pt"))  # the graphs travel, not the checkpoints
    assert list((out / "code").glob("onnxruntime-*.whl"))
    res = run_offline_kernel(out, tiny_raw, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    bundle = load_bundle(out / "models", "cpu", ensemble=ens, engine="onnx",
                         export_dir=out / "models" / "export")  # fmt: skip
    order = pd.read_csv(tiny_raw / "sample_submission.csv")["filename"].tolist()
    videos = sorted((tiny_raw / "test_videos").glob("*.mp4"))
    make_submission(videos, order, bundle, tmp_path / "workspace.csv")
    assert (tmp_path / "submission.csv").read_bytes() == (tmp_path / "workspace.csv").read_bytes()


def test_predict_with_the_onnx_engine_imports_no_torch(four_kinds, tiny_raw, tmp_path):
    """The cold start: faces (MTCNN's exported networks) and models without torch or timm."""
    base, _ = four_kinds
    ens = Ensemble(["frame", "seq"], [0.5, 0.5], clip=0.01)
    raw = _onnx_params(base, ens, tmp_path)
    (tmp_path / "params.yaml").write_text(json.dumps(raw))
    video = str(sorted((tiny_raw / "test_videos").glob("*.mp4"))[0])
    code = (
        "import sys\nfrom dfdc.cli import main\n"
        f"code = main(['predict', {video!r}, '--params', {str(tmp_path / 'params.yaml')!r}])\n"
        "heavy = sorted(m for m in ('torch', 'timm', 'facenet_pytorch', 'torchvision', 'pandas')"
        " if m in sys.modules)\n"
        "print('LOADED', heavy, code)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "LOADED [] 0" in res.stdout, res.stdout
    assert f"{video}\t" in res.stdout


def test_auto_takes_the_export_on_a_cpu_and_falls_back_in_one_line(four_kinds, tmp_path, capfd):
    from dfdc.inference.predict import resolve_engine

    base, _ = four_kinds
    assert resolve_engine("auto", "cpu") == "onnx" and resolve_engine("auto", "cuda") == "torch"
    assert resolve_engine("auto", "cpu", purpose="explain") == "torch"
    assert resolve_engine("onnx", "cpu", purpose="explain") == "onnx"
    ens = Ensemble(["frame", "seq"], [0.5, 0.5])
    models = base.base.models_dir
    missing = load_bundle(models, "cpu", ens, engine="auto", export_dir=tmp_path / "none")
    assert missing.spec["engine"] == "torch"
    lines = [x for x in capfd.readouterr().err.splitlines() if "inference.engine auto" in x]
    assert len(lines) == 1 and "no ONNX export here" in lines[0]
    export_fitted(models, ens, tmp_path / "export")
    found = load_bundle(models, "cpu", ens, engine="auto", export_dir=tmp_path / "export")
    assert found.spec["engine"] == "onnx" and isinstance(found.predictor.engine, OnnxEngine)
