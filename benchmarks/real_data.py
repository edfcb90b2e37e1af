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
combined by ``ensemble.rule`` and the faces by ``ensemble.faces_combine`` (as ``dfdc predict``
and the ensemble score a video; the plain mean of all crops is printed beside), without
calibration;
each variant's training time is printed (the recipe's own budget is the pretrained line's). Then
the pretrained run's fold models, averaged equally, score the other shared sets (``--eval``;
default ../shared/data/dfdc and ../shared/data/ffpp_c23, the ones present) through ``dfdc
evaluate``'s code: a cross-dataset check, not a tuned number. The last line printed is one JSON
object.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd
from common import oof_metrics, open_real, prepare, real_parser

from dfdc.core.config import to_dict
from dfdc.core.io import to_json
from dfdc.training.loop import fit


def main(argv: list[str] | None = None) -> int:
    ap = real_parser(__doc__.splitlines()[0], "data/bench/real_data")
    ap.add_argument("--only", choices=["pretrained", "scratch"])
    ap.add_argument(
        "--eval",
        nargs="*",
        default=["../shared/data/dfdc", "../shared/data/ffpp_c23"],
        help="labelled folders the pretrained models score afterwards",
    )
    args = ap.parse_args(argv)
    opened = open_real(args)
    if opened is None:
        return 2
    root, params = opened
    work = Path(args.work)
    t0 = time.perf_counter()
    index, folds, faces_s = prepare(params, root)
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
    results: dict[str, dict] = {}
    for name, pretrained in variants.items():
        model = dataclasses.replace(params.train.model, pretrained=pretrained)
        run = dataclasses.replace(params.train, run=f"real_{name}", model=model)
        t1 = time.perf_counter()
        oof = pd.concat(
            [pd.read_parquet(fit(params, k, run=run).out_dir / "oof.parquet") for k in fold_ids]
        )
        train_s = round(time.perf_counter() - t1, 1)
        m = oof_metrics(oof, params)
        m.update(train_s=train_s, pretrained=pretrained)
        crop_mean = m["crop_mean"]
        results[name] = m
        print(
            f"{name}: out-of-fold video AUC {m['auc']:.3f}, log loss {m['logloss']:.3f}, "
            f"accuracy {m['accuracy']:.3f}, n {m['n']} ({m['rule']}; mean of all crops: AUC "
            f"{crop_mean['auc']:.3f}, log loss {crop_mean['logloss']:.3f}); {train_s:.0f} s",
            flush=True,
        )

    cross = {}
    if "pretrained" in results:
        from dfdc.inference.predict import load_bundle
        from dfdc.reports.evaluation import evaluate_paths

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
    print(to_json(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
