"""What the real recipe costs, stage by stage, a video (or an image) on this machine, against
each stage's floor, and what that projects to for the full DFDC, in one run.

    python benchmarks/real_cost.py [ROOT] [--limit 8] [--params params.yaml] [--work DIR]
                                   [--workspace DIR] [--steps 20] [--project 1 8 32]

ROOT defaults to ../shared/data/ffpp (FaceForensics++'s layout). ``--limit`` fakes are taken
(sorted by name) with their originals, and every per-video stage runs on them through the
stages' own code, with the params file resolved for a real dataset (the real recipe, as ``make
real`` resolves it), in a fresh work folder (``--work``: a temporary one unless given):

- data index: ``build_index`` (probe and hash each file);
- faces: ``run_faces`` (worker pool start excluded), against the decode floor (every frame
  decoded and thrown away, one process per core: ``benchmarks/faces.py``'s);
- masks: ``build_masks`` over the fakes;
- compress: ``run_copies`` with the params' ``compress`` (every level from the video), again
  with the training levels from the crops (``source: crops``), and with those alone
  (``validate_crf: []``: no c40-like copies, no video decoded), against the encoder floor:
  x264 alone on the same pictures at the same sizes and CRFs, from memory;
- embedding: a frame model's pooled features of every crop of a video (one pass of the sequence
  run's embedding, per fold and per copy level it trains on);
- scoring: ``dfdc predict``'s path (decode, faces, every member, the blend) with the fitted
  ensemble of ``--workspace`` (default: this one; after ``make real`` in a clone, that clone
  scores with its 224 px real-recipe models);
- training: a frame fold's step through the real input pipeline against the bare model step
  (``benchmarks/train_throughput.py``), in images a second, and a sequence step on tracks of
  embeddings.

``--before``: the faces stage, the compress stage and scoring again with one worker in this
process, each twice on the same clips: decoding every frame up to the last wanted one (as the
stages did before they skipped unreferenced pictures) and as they decode now.

Then a projection, labelled as one, to the full DFDC (120,000 videos) on 1, 8 and 32 machines
like this one: each per-video stage's measured time a video times 120,000, and training's
images an epoch (as many a video as this run's epoch plan draws) times epochs and folds, divided
evenly among the machines (which assumes perfect scaling). The last line printed is one JSON
object.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import torch
from common import decoding_everything, real_params
from faces import FULL_DFDC, decode_floor
from train_throughput import throughput

from dfdc.core.config import Params, load_params, resolve_device
from dfdc.core.io import to_json, write_parquet
from dfdc.core.logs import setup_logging
from dfdc.core.video import add_streaming_h264, encode_rgb, iter_frames
from dfdc.crops.datasets import crop_items, epoch_plan, fake_originals
from dfdc.crops.transforms import eval_transform
from dfdc.dataset.index import build_index, collect_entries
from dfdc.faces.batch import run_faces
from dfdc.faces.copies import copy_levels, frame_windows, made_from, run_copies, track_rows
from dfdc.faces.store import decode_crop, load_video_faces
from dfdc.inference.predict import bundle_from_params
from dfdc.kinds.backbones import build_model
from dfdc.kinds.embeddings import Embedder, embed_crops
from dfdc.kinds.sequence_head import SequenceHead
from dfdc.masks.compute import build_masks

PER_VIDEO = ("data index", "faces", "masks", "compress")


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def pick(root: Path, limit: int) -> list:
    """The first ``limit`` fakes by name, and every original one of them was made from."""
    entries = collect_entries(root)
    fakes = sorted((e for e in entries if e.label == "FAKE"), key=lambda e: e.name)[:limit]
    wanted = {e.original for e in fakes}
    return [e for e in entries if e.name in wanted] + fakes


def encoder_floor(copies: pd.DataFrame, index: pd.DataFrame, cfg) -> float:
    """Seconds a video to encode what the copies encode, from pictures already in memory: a
    copy from the video, its frames at its region's size and CRF; a copy from the crops, each
    track's stream at its side. The x264 work alone, one process."""
    meta = index.set_index("name")
    total = 0.0
    made = copies[copies["status"] == "ok"]  # a failed copy has no file, nor a cost
    for video, rows in made.groupby("video"):
        source = load_video_faces(rows["source"].iloc[0])
        frames = None
        for file in rows["file"]:
            status = load_video_faces(file, crops=False).status
            if status.get("made_from") == "crops":  # each track's crops, as copy_crops orders
                streams = [
                    [cv2.resize(decode_crop(source.crops[i]), (side, side)) for i in rows]
                    for rows, (side, _) in zip(track_rows(source), status["streams"], strict=True)
                ]
            else:
                if frames is None:
                    order = frame_windows(source.frame, cfg.context)
                    frames = [f.image for f in iter_frames(meta.loc[video, "path"], order)]
                w, h = status["region"]
                n = status["frames_encoded"]
                streams = [[frames[i % len(frames)][:h, :w] for i in range(n)]]
            for pictures in streams:
                pictures = [np.ascontiguousarray(p) for p in pictures]
                h, w = pictures[0].shape[:2]
                t0 = time.perf_counter()
                with av.open(f"{tempfile.gettempdir()}/dfdc-floor.mp4", "w", format="mp4") as out:
                    stream = add_streaming_h264(out, (w, h), 25.0, status["crf"])
                    for img in pictures:
                        encode_rgb(out, stream, img)
                    out.mux(stream.encode())
                total += time.perf_counter() - t0
    return total / max(1, made["video"].nunique())


def embedding(params: Params, faces: pd.DataFrame) -> tuple[float, int]:
    """(seconds a video for the frame model's features of all its crops, their width)."""
    model = params.train.model
    net = Embedder(build_model(model)).eval()
    transform = eval_transform(model.input_size)
    files = faces["file"].unique()
    t0 = time.perf_counter()
    for f in files:
        embed_crops(net, load_video_faces(f).crops, transform, 1)
    return (time.perf_counter() - t0) / len(files), net.dim


def sequence_step(params: Params, dim: int, steps: int) -> float:
    """Tracks a second through the sequence run's training step (its ``SequenceHead``, batch
    and optimizer) on random embeddings of the frame model's width, as many steps as the faces
    stage samples: bare, since the embeddings are a cache by then."""
    run = params.sequence
    head = SequenceHead(dim, run.sequence).train()
    opt = torch.optim.AdamW(head.parameters(), lr=run.lr, weight_decay=run.weight_decay)
    x = torch.randn(run.batch_size, params.faces.frames, dim)
    lengths = torch.full((run.batch_size,), params.faces.frames)
    y = torch.randint(0, 2, (run.batch_size,)).float()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x, lengths)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * run.batch_size / (time.perf_counter() - t0)


def scoring(workspace: Path, paths: list[str]) -> float:
    """Seconds a video for ``dfdc predict``'s path with ``workspace``'s fitted ensemble, its
    engine and device as its params say (read there, relative paths included); the bundle is
    loaded before the clock starts."""
    here = Path.cwd()
    os.chdir(workspace)
    try:
        params = load_params("params.yaml")
        bundle = bundle_from_params(params, ensemble=params.ensemble.ensemble_path)
        s, _ = _timed(lambda: [bundle.score(p) for p in paths])
    finally:
        os.chdir(here)
    return s / len(paths)


def before_after(index: pd.DataFrame, params: Params, work: Path, workspace: Path) -> dict:
    """Seconds a video for faces, compress (one worker each, in this process) and scoring,
    decoding every frame and then only what is needed, on the same clips; the copies' crops
    must come out the same."""
    crop = (params.faces.crop_size, params.faces.crop_format, params.faces.jpeg_quality)
    paths = [str(Path(p).resolve()) for p in index["path"]]
    n = len(index)
    out: dict[str, dict] = {}
    files = {}
    for when in ("before", "after"):
        faces_cfg = dataclasses.replace(
            params.faces, workers=1, out_dir=str(work / when / "faces"),
            table_path=str(work / when / "faces.parquet"),
            status_path=str(work / when / "faces_status.parquet"))  # fmt: skip
        cfg = dataclasses.replace(params.compress, workers=1, out_dir=str(work / when / "copies"),
                                  table_path=str(work / when / "copies.parquet"),
                                  source="video")  # fmt: skip
        with decoding_everything() if when == "before" else contextlib.nullcontext():
            timing: dict = {}
            faces = run_faces(index, faces_cfg, device="cpu", timing=timing)
            s, copies = _timed(run_copies, index, faces, cfg, *crop)
            score = scoring(workspace, paths)
        out[when] = {"faces_s_per_video": timing["extract_s"] / n, "compress_s_per_video": s / n,
                     "scoring_s_per_video": score}  # fmt: skip
        files[when] = sorted(copies["file"])
    same = all(
        load_video_faces(a).crops == load_video_faces(b).crops
        for a, b in zip(files["before"], files["after"], strict=True)
    )
    return {**{f"{k}_{w}": round(v, 3) for w, r in out.items() for k, v in r.items()},
            "same_copies": same}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default="../shared/data/ffpp")
    ap.add_argument("--limit", type=int, default=8, help="fakes (with their originals)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--work", help="work folder (default: a temporary one)")
    ap.add_argument("--workspace", default=".", help="whose fitted ensemble scores (its params)")
    ap.add_argument("--steps", type=int, default=20, help="training steps timed")
    ap.add_argument("--project", type=int, nargs="*", default=[1, 8, 32])
    ap.add_argument("--folds", type=int, default=4, help="folds make real trains (FOLDS)")
    ap.add_argument(
        "--before", action="store_true",
        help="also faces, compress and scoring decoding every frame, one worker",
    )  # fmt: skip
    args = ap.parse_args(argv)
    setup_logging()
    root = Path(args.root)
    if not root.is_dir():
        print(f"{root}: not a folder (a FaceForensics++ root expected)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="dfdc-cost-") as tmp:
        work = Path(args.work or tmp)
        params = real_params(args.params, root, work, [])
        entries = pick(root, args.limit)
        n = len(entries)
        rows: dict[str, dict] = {}

        s, index = _timed(build_index, entries, workers=params.data.workers)
        write_parquet(index, params.data.index_path)
        rows["data index"] = {"s_per_video": s / n}
        paths = [str(p) for p in index["path"]]

        serial, pooled, _ = decode_floor(paths)
        timing: dict = {}
        device = resolve_device(params.base.device)
        faces = run_faces(index, params.faces, device=device, timing=timing)
        rows["faces"] = {"s_per_video": timing["extract_s"] / n, "floor": "decode every frame",
                         "floor_s_per_video": min(serial, pooled)}  # fmt: skip

        fakes = int((index["label"] == "FAKE").sum())
        s, _ = _timed(build_masks, faces, index, params.masks)
        rows["masks"] = {"s_per_video": s / max(1, fakes), "per": "fake"}

        crop = (params.faces.crop_size, params.faces.crop_format, params.faces.jpeg_quality)
        cfg = params.compress
        s, copies = _timed(run_copies, index, faces, cfg, *crop)
        sources = made_from(cfg)
        variants = {  # the same copies made another way, in their own folders
            "from_crops": dataclasses.replace(cfg, source="crops"),  # training levels
            "from_crops_training_only": dataclasses.replace(cfg, source="crops", validate_crf=()),
        }
        seconds = {}
        for name, variant in variants.items():
            variant = dataclasses.replace(variant, out_dir=str(work / name),
                                          table_path=str(work / f"{name}.parquet"))  # fmt: skip
            seconds[name], _ = _timed(run_copies, index, faces, variant, *crop)
        floor = encoder_floor(copies, index, cfg)
        rows["compress"] = {"s_per_video": s / n, "workers": cfg.workers,
                            "levels": ", ".join(f"{lv.name} from {src}"
                                                for lv, src in sources.items()),
                            **{f"{k}_s_per_video": v / n for k, v in seconds.items()},
                            "floor": "x264 alone, one process",
                            "floor_s_per_video": floor}  # fmt: skip
        s, dim = embedding(params, faces)
        rows["embedding"] = {"s_per_video": s, "per": "video, one pass"}

        s = scoring(Path(args.workspace), [str(Path(p).resolve()) for p in paths])
        rows["scoring"] = {"s_per_video": s, "workspace": args.workspace}

        if args.before:
            rows["decoding every frame, then only what is needed (one worker)"] = before_after(
                index, params, work, Path(args.workspace)
            )
        tp = throughput(params, args.steps)
        train = params.train
        labels = dict(zip(index["name"], index["label"], strict=True))
        items = crop_items(faces, labels, train.train_tracks)
        plan = epoch_plan(items, train, 0, 0, originals=fake_originals(index, labels))
        images_per_video = len(plan) / n
        rows["frame fold epoch"] = {"images_per_s": tp["pipeline_images_per_s"],
                                    "floor": "bare model step",
                                    "floor_images_per_s": tp["bare_images_per_s"],
                                    "images_per_video": images_per_video}  # fmt: skip
        rows["sequence fold"] = {"tracks_per_s": sequence_step(params, dim, args.steps)}

    for name, r in rows.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in r.items()))  # fmt: skip
    # What make real does to every video (scoring is the test set's, not training's).
    per_video = sum(r["s_per_video"] for k, r in rows.items() if k in PER_VIDEO)
    folds = args.folds
    seq_copies = params.sequence.compress
    levels_drawn = seq_copies.levels or [lv.name for lv in copy_levels(params.compress, "train")]
    # Each fold embeds every video once, and its training videos ((k-1)/k of them) once per
    # copy level its sequence run draws; it trains the frame model on those same videos.
    share = (folds - 1) / folds
    embed_passes = folds * (1 + share * (len(levels_drawn) if seq_copies.p > 0 else 0))
    frame_images = FULL_DFDC * share * images_per_video * train.epochs * folds
    frame_s = frame_images / tp["pipeline_images_per_s"]
    projection = {}
    for m in args.project:
        stages_h = FULL_DFDC * per_video / m / 3600
        embed_h = FULL_DFDC * rows["embedding"]["s_per_video"] * embed_passes / m / 3600
        train_h = frame_s / m / 3600
        projection[str(m)] = {"per_video_stages_h": round(stages_h, 1),
                              "embedding_passes_h": round(embed_h, 1),
                              "frame_training_h": round(train_h, 1)}  # fmt: skip
        print(f"projection (not a measurement): the full DFDC ({FULL_DFDC:,} videos) on {m} "
              f"machine(s) like this: per-video stages {stages_h:.1f} h, embedding passes "
              f"{embed_h:.1f} h, frame training ({folds} folds x {train.epochs} epochs) "
              f"{train_h:.1f} h")  # fmt: skip
    print(to_json({"videos": n, "stages": rows, "projection_hours_by_machines": projection}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
