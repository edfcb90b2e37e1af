"""Does the real recipe hold up under compression? Out of fold on real FaceForensics++ c23 clips
and on their c40-like copies, same folds, same run, for one training variant at a time.

    python benchmarks/compression.py [ROOT] --variant NAME [--set KEY=VALUE]... [--work DIR]
                                     [--reuse] [--sequence [--sequence-run NAME]]
                                     [--figure PNG] [--match N]

ROOT defaults to ../shared/data/ffpp. The faces and folds come from the stages' code (cached in
--work, default data/bench/compression), then the compress stage's copies of every clip
(``compress`` section; made whatever ``compress.when`` says). The variant is the params file's
frame run resolved for this real dataset (the real recipe) with the ``--set`` overrides, under
the run name NAME (``<work>/models/NAME``); e.g. the flips-only recipe before compression
training is ``--variant real_plain --set train.compress.p=0 --set train.epochs=5 --set
train.label_smoothing=0``.
``--reuse`` keeps finished folds (a fold trained before its copies existed is scored on them
now). ``--sequence`` also trains the ``sequence`` run's folds on the variant's embeddings (run
``NAME_lstm``, or ``--sequence-run``'s name), as ``dvc exp run`` trains the recipe: the sets
are then scored for the frame run, the sequence run and their fitted blend (the ensemble
stage's ``fit_ensemble``, calibrated nested by fold).

Printed: each validation set's out-of-fold video AUC and log loss, uncalibrated and calibrated
(temperature and clip fitted as the ensemble stage fits them, on the originals and the copies
together, and scored nested by fold), with a check per set: is the log loss below a constant
0.5's 0.693; then the training time, and the variant's fold models averaged on the other shared
sets (``--eval``: video-level AUC, frame-level AUC over the 32 frames a video, log loss).
``--figure PNG`` draws one fake's crop beside its copy at every level
(docs/images/compress_levels.png). ``--match N`` first re-encodes N of the originals whole at
a range of CRFs and prints each CRF's size against the c23 files': FaceForensics++'s own
download sizes put c40 at about a fifth of c23 (original videos: ~10 GB c23, ~2 GB c40), which
is how ``compress.validate_crf`` was matched. The last line printed is one JSON object.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from common import fit_or_reuse, open_real, prepare, real_parser

from dfdc.core.config import Params
from dfdc.core.io import to_json, write_image
from dfdc.core.metrics import binary_metrics
from dfdc.faces.copies import copy_levels
from dfdc.inference.fit import fit_ensemble, load_oof
from dfdc.robustness.distort import distort_video
from dfdc.training.loop import score_copies

CONSTANT = 0.6931  # log loss of answering 0.5 for every video
C40_SIZE = 0.2  # FaceForensics++ c40 / c23 download size, original videos (~2 GB / ~10 GB)


def match_crf(root: Path, n: int, crfs: range) -> list[dict]:
    """Whole-clip re-encodes of ``n`` c23 originals at each CRF: their size over the c23 files'."""
    clips = sorted((root / "original_sequences").rglob("*.mp4"))
    clips = clips[:: max(1, len(clips) // n)][:n]
    base = sum(c.stat().st_size for c in clips)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dfdc-match-") as tmp:
        for crf in crfs:
            size = 0
            for c in clips:
                out = Path(tmp) / f"{crf}_{c.name}"
                distort_video(c, out, "crf", crf)
                size += out.stat().st_size
                out.unlink()
            rows.append({"crf": crf, "clips": len(clips), "size_vs_c23": round(size / base, 4)})
            print(f"CRF {crf}: {size / base:.3f} of the c23 size ({len(clips)} clips)", flush=True)
    return rows


def levels_figure(copies: pd.DataFrame, out: Path, crop: int = 10) -> None:
    """One fake's crop (the first fake video in name order, its ``crop``-th crop) beside its
    copy at every level, each labelled: what the training and validation copies look like."""
    import cv2
    import numpy as np

    from dfdc.faces.store import decode_crop, load_video_faces

    ok = copies[copies["status"] == "ok"]
    video = sorted(v for v in ok["video"].unique() if "_" in v)[0]
    rows = ok[ok["video"] == video].sort_values("level")
    tiles = [("c23 crop", load_video_faces(rows["source"].iloc[0]).crops[crop])]
    tiles += [(r.level, load_video_faces(r.file).crops[crop]) for r in rows.itertuples()]
    images = []
    for name, data in tiles:
        img = np.ascontiguousarray(decode_crop(data))
        cv2.putText(img, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        images.append(img)
    write_image(np.hstack(images), out)
    print(f"{out}: {video}, crop {crop}, at {', '.join(rows['level'])}", flush=True)


def scored_sets(
    params: Params,
    run: str | None,
    fold_ids: list[int],
    sets: dict[str, str],
    blend: tuple[str, ...] = (),
) -> dict[str, dict]:
    """Per validation set (c23 and each copy level): out-of-fold video AUC and log loss of one
    run (``run``) or of the runs of ``blend`` averaged with equal weights, uncalibrated (each
    video by the ensemble's rule); and calibrated as the ensemble stage calibrates (weights,
    temperature and clip fitted on the originals and the copies together), scored nested by
    fold; with the check that the calibrated log loss is below a constant 0.5's."""
    runs = tuple(blend) if blend else (run,)
    oof = load_oof(params.base.models_dir, runs, copies=True)
    oof = oof[oof["fold"].isin(fold_ids)]
    report = fit_ensemble(oof, dataclasses.replace(params.ensemble, runs=runs))
    m = report.matrix
    y = m["label"].to_numpy()
    nested = report.oof_prob
    raw = m[list(runs)].to_numpy().mean(axis=1) if blend else m[run].to_numpy()
    out = {}
    for name in sets:
        rows = (m["copy"] == ("" if name == "c23" else name)).to_numpy()
        r = binary_metrics(y[rows], raw[rows])
        c = binary_metrics(y[rows], nested[rows])
        out[name] = {
            "auc": r["auc"], "logloss": r["logloss"], "accuracy": r["accuracy"], "n": r["n"],
            "calibrated_auc": c["auc"], "calibrated_logloss": c["logloss"],
            "below_constant": bool(c["logloss"] < CONSTANT),
        }  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = real_parser(__doc__.splitlines()[0], "data/bench/compression")
    ap.add_argument("--variant", required=True, help="the run's name (its models folder)")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--match", type=int, default=0, metavar="N")
    ap.add_argument("--sequence", action="store_true", help="the sequence folds and the blend too")
    ap.add_argument(
        "--sequence-run",
        metavar="NAME",
        help="the sequence run's name (default NAME_lstm): another one compares sequence "
        "settings (--set sequence.KEY=VALUE) on the same frame folds",
    )
    ap.add_argument("--figure", type=Path, help="a PNG of one crop at every copy level")
    ap.add_argument(
        "--eval",
        nargs="*",
        default=["../shared/data/ffpp_c23", "../shared/data/dfdc"],
        help="labelled folders the variant's fold models (averaged) score afterwards",
    )
    args = ap.parse_args(argv)
    opened = open_real(args)
    if opened is None:
        return 2
    root, params = opened
    t0 = time.perf_counter()
    match = match_crf(root, args.match, range(34, 43, 2)) if args.match else []
    if match:
        best = min(match, key=lambda r: abs(r["size_vs_c23"] - C40_SIZE))
        print(f"closest to FF++ c40's {C40_SIZE} of c23: CRF {best['crf']}", flush=True)
    index, folds, prep_s = prepare(params, root, copies=True)
    copies = pd.read_parquet(params.compress.table_path)
    ok = copies[copies["status"] == "ok"]
    print(
        f"{len(index)} videos, {folds['group'].nunique()} identity groups in {params.cv.n_folds} "
        f"folds; faces and copies {prep_s:.0f} s; copies {len(ok)} of {len(copies)} "
        f"({', '.join(lv.name for lv in copy_levels(params.compress))})",
        flush=True,
    )

    if args.figure:
        levels_figure(copies, args.figure)
    run = dataclasses.replace(params.train, run=args.variant)
    val_levels = [lv.name for lv in copy_levels(params.compress, "validate")]
    fold_ids = list(params.cv.folds)[: args.folds] if args.folds else list(params.cv.folds)
    runs = [run]
    if args.sequence:
        seq = params.sequence
        runs.append(
            dataclasses.replace(
                seq,
                run=args.sequence_run or f"{args.variant}_lstm",
                sequence=dataclasses.replace(seq.sequence, embed_run=args.variant),
            )
        )
    train_s = {r.run: 0.0 for r in runs}
    for r in runs:
        for k in fold_ids:
            t2 = time.perf_counter()
            res = fit_or_reuse(params, k, r, args.reuse)
            if res.best_epoch >= 0:
                train_s[r.run] += time.perf_counter() - t2
            missing = [lv for lv in val_levels if not (res.out_dir / f"oof_{lv}.parquet").exists()]
            if missing:  # trained before its copies existed
                score_copies(params, k, r)

    sets = {"c23": "oof.parquet", **{lv: f"oof_{lv}.parquet" for lv in val_levels}}
    results: dict[str, dict] = {}
    for r in runs:
        results[r.run] = scored_sets(params, r.run, fold_ids, sets)
    if len(runs) > 1:
        results["blend"] = scored_sets(params, None, fold_ids, sets, tuple(r.run for r in runs))
    for name, per_set in results.items():
        for set_name, m in per_set.items():
            print(
                f"{args.variant}, {name} on {set_name}: AUC {m['auc']:.3f}, log loss "
                f"{m['logloss']:.3f} (calibrated nested by fold: AUC {m['calibrated_auc']:.3f}, "
                f"log loss {m['calibrated_logloss']:.3f}; below the constant's {CONSTANT}: "
                f"{'yes' if m['below_constant'] else 'NO'}), n {m['n']}",
                flush=True,
            )
    print(
        f"{args.variant}: training "
        + ", ".join(f"{name} {s:.0f} s" for name, s in train_s.items())
        + f" for {len(fold_ids)} folds (0: all reused)",
        flush=True,
    )
    cross = {}
    if args.eval:
        from dfdc.inference.predict import load_bundle
        from dfdc.reports.evaluation import evaluate_paths

        bundle = load_bundle(
            params.base.models_dir, params.base.device,
            models=Path(params.base.models_dir) / args.variant,
        )  # fmt: skip
        for path in [p for p in args.eval if Path(p).is_dir()]:
            e = evaluate_paths(bundle, [path], params.faces).summary()
            cross[path] = {k: e[k] for k in ("auc", "frame_auc", "logloss", "accuracy", "n")}
            print(
                f"{args.variant} on {path}: video AUC {e['auc']}, frame AUC {e['frame_auc']}, "
                f"log loss {e['logloss']:.3f}, n {e['n']} (folds averaged, no calibration)",
                flush=True,
            )
    print(
        to_json(
            {
                "variant": args.variant, "root": str(root), "overrides": args.set,
                "folds": fold_ids, "train_s": {k: round(v, 1) for k, v in train_s.items()},
                "prepare_s": round(prep_s, 1), "match": match, "sets": results,
                "cross_dataset": cross,
                "total_s": round(time.perf_counter() - t0, 1),
            }
        )
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
