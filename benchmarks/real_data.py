"""Does the recipe learn real deepfakes? Out-of-fold AUC and log loss on real FaceForensics++
clips, ImageNet-pretrained against from scratch on the same grouped folds in the same run.

    python benchmarks/real_data.py [ROOT] [--params params.yaml] [--work DIR] [--set KEY=VALUE]...
                                   [--only pretrained|scratch] [--folds N] [--eval PATH...]

ROOT defaults to ../shared/data/ffpp (FaceForensics++ in its own layout). The faces come from
the workspace's faces stage code with the params file's ``faces`` section (cached in --work, so
a rerun starts at training); folds are the folds stage's (identity pairs kept together); each
fold trains the params file's ``train`` run, resolved for this real dataset (``train.recipe:
auto`` gives the real-data recipe, as ``dvc exp run -S data.source=ffpp`` would), through the
one training loop, once with ``model.pretrained`` as the params say (packaged ImageNet weights
by default) and once from scratch, everything else equal. ``--set train.lr=0.001`` overrides a
key for both. Scores are the video-level out-of-fold predictions, each face track's frames
combined by ``ensemble.rule`` and the faces by ``ensemble.faces`` (as ``dfdc predict`` and the
ensemble score a video; the plain mean of all crops is printed beside), without calibration;
each variant's training time is printed (the recipe's own budget is the pretrained line's). Then
the pretrained run's fold models, averaged equally, score the other shared sets (``--eval``;
default ../shared/data/dfdc and ../shared/data/ffpp_c23, the ones present) through ``dfdc
evaluate``'s code: a cross-dataset check, not a tuned number. The last line printed is one JSON
object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from dfdc.core.config import params_from_dict, resolve_device, to_dict
from dfdc.core.io import write_parquet
from dfdc.core.logs import setup_logging
from dfdc.core.metrics import binary_metrics
from dfdc.dataset.index import build_index, collect_entries
from dfdc.faces.extract import run_faces
from dfdc.folds import make_folds
from dfdc.inference.aggregate import video_score
from dfdc.training.engine import fit


def _set(raw: dict, assignment: str) -> None:
    key, _, value = assignment.partition("=")
    *path, last = key.split(".")
    node = raw
    for part in path:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default="../shared/data/ffpp")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--work", default="data/bench/real_data")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", choices=["pretrained", "scratch"])
    ap.add_argument("--folds", type=int, help="train only the first N folds")
    ap.add_argument(
        "--eval",
        nargs="*",
        default=["../shared/data/dfdc", "../shared/data/ffpp_c23"],
        help="labelled folders the pretrained models score afterwards",
    )
    args = ap.parse_args(argv)
    setup_logging()
    root, work = Path(args.root), Path(args.work)
    if not root.is_dir():
        print(f"{root}: not a folder (FaceForensics++ root expected)", file=sys.stderr)
        return 2

    # The params file as written (not resolved): with data.source ffpp, train.recipe auto
    # resolves to the real-data recipe, as `dvc exp run -S data.source=ffpp` would.
    raw = yaml.safe_load(Path(args.params).read_text()) or {}
    raw.setdefault("data", {}).update(source="ffpp", local_path=str(root))
    raw.setdefault("faces", {}).update(
        out_dir=str(work / "faces"),
        table_path=str(work / "faces.parquet"),
        status_path=str(work / "faces_status.parquet"),
    )
    raw.setdefault("cv", {})["path"] = str(work / "folds.parquet")
    raw["data"]["index_path"] = str(work / "videos.parquet")
    for assignment in args.set:
        _set(raw, assignment)
    params = params_from_dict(raw, source=args.params)
    t0 = time.perf_counter()

    index = build_index(collect_entries(root), workers=params.data.workers)
    write_parquet(index, params.data.index_path)
    run_faces(index, params.faces, device=resolve_device(params.base.device))
    folds = make_folds(index, params.cv)
    write_parquet(folds, params.cv.path)
    faces_s = time.perf_counter() - t0
    fakes = int((index["label"] == "FAKE").sum())
    print(
        f"{len(index)} videos, {fakes} fake, {folds['group'].nunique()} identity groups in "
        f"{params.cv.n_folds} folds; faces {faces_s:.0f} s",
        flush=True,
    )

    variants = {"pretrained": params.train.model.pretrained, "scratch": False}
    if args.only:
        variants = {args.only: variants[args.only]}
    fold_ids = list(params.cv.folds)[: args.folds] if args.folds else list(params.cv.folds)
    in_work = dataclasses.replace(
        params, base=dataclasses.replace(params.base, models_dir=str(work / "models"))
    )
    results: dict[str, dict] = {}
    for name, pretrained in variants.items():
        model = dataclasses.replace(params.train.model, pretrained=pretrained)
        run = dataclasses.replace(params.train, run=f"real_{name}", model=model)
        t1 = time.perf_counter()
        oof = pd.concat(
            [pd.read_parquet(fit(in_work, k, run=run).out_dir / "oof.parquet") for k in fold_ids]
        )
        train_s = round(time.perf_counter() - t1, 1)
        # Videos scored as dfdc predict and the ensemble score them: each face track's frames
        # by ensemble.rule, the tracks by ensemble.faces; the plain mean of every crop beside.
        rule, faces = params.ensemble.rule, params.ensemble.faces
        scores = [
            video_score(p, t, rule, faces)
            for p, t in zip(oof["frame_probs"], oof["tracks"], strict=True)
        ]
        m = binary_metrics(oof["label"], scores)
        crop_mean = binary_metrics(oof["label"], oof["video_prob"])
        m.update(
            rule=f"{rule} per face, {faces} over faces",
            crop_mean={k: crop_mean[k] for k in ("auc", "logloss", "accuracy")},
            train_s=train_s,
            pretrained=pretrained,
        )
        results[name] = m
        print(
            f"{name}: out-of-fold video AUC {m['auc']:.3f}, log loss {m['logloss']:.3f}, "
            f"accuracy {m['accuracy']:.3f}, n {m['n']} ({m['rule']}; mean of all crops: AUC "
            f"{crop_mean['auc']:.3f}, log loss {crop_mean['logloss']:.3f}); {train_s:.0f} s",
            flush=True,
        )

    cross = {}
    if "pretrained" in results:
        from dfdc.evaluate import evaluate_paths
        from dfdc.inference.predict import load_bundle

        bundle = load_bundle(
            work / "models", params.base.device, models=work / "models" / "real_pretrained"
        )
        for path in [p for p in args.eval if Path(p).is_dir()]:
            s = evaluate_paths(bundle, [path]).summary()
            cross[path] = {k: s[k] for k in ("auc", "logloss", "accuracy", "eer", "ap", "n")}
            print(f"pretrained on {path}: AUC {s['auc']}, log loss {s['logloss']:.3f}, n {s['n']}")

    summary = {
        "root": str(root),
        "videos": len(index),
        "folds": fold_ids,
        "recipe": {k: v for k, v in to_dict(params.train).items() if k not in ("aug",)},
        "overrides": args.set,
        "faces_s": round(faces_s, 1),
        "total_s": round(time.perf_counter() - t0, 1),
        **results,
        "cross_dataset": cross,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
