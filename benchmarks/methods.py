"""The training methods against the plain recipe on real clips: one out-of-fold table.

    python benchmarks/methods.py [ROOT] [--params params.yaml] [--work DIR] [--folds N]
                                 [--methods plain,sbi,...] [--set KEY=VALUE]...
                                 [--reuse] [--cost-batches N]

ROOT defaults to ../shared/data/ffpp (FaceForensics++ c23 in its own layout). Each method is the
params file's frame run resolved for this real dataset (the real recipe: 224 px real/fake pairs,
5 epochs, packaged ImageNet weights), with one switch turned on; every method trains the same
folds (``--folds N``: the first N) with the same seed and epochs, through the one training loop,
and its fold models are an ensemble member like any other run (``<work>/models/<method>``).

    plain      the real recipe as is
    sbi        + self-blended pseudo-fakes beside half of the real crops (train.sbi.p 0.5)
    sbi_only   reals and their self-blends only, no real fakes (train.sbi.only; SBI's setting)
    masks      + segmentation head on the difference masks (train.masks.weight 1) and
               face-part dropout (p 0.3) drawn toward the altered pixels
    wsdan      WS-DAN head, 8 attention maps (train.model.wsdan_maps 8)
    srm        + SRM noise-residual input channels (train.model.srm)

Printed per method: out-of-fold video AUC and log loss (each face track's frames by
``ensemble.rule``, faces by ``ensemble.faces_combine``, no calibration), the plain mean of all crops
beside, and the cost: training crops per second (training steps only) and its ratio to the
plain recipe's in the same run. The last line printed is one JSON object.

``--reuse`` keeps finished folds already in ``<work>/models`` (a comparison split over sessions;
their training is not counted again; one made with an earlier config is said so).
``--cost-batches N`` measures the cost apart from the quality runs, first and back to back in
one pass: each method trains N
batches of fold 0 (one epoch cut short, a throwaway folder under ``<work>/cost``), so every
ratio comes from the same minutes of the same machine; the quality runs' own crops per second
are printed beside when they trained.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
from common import fit_or_reuse, oof_metrics, open_real, prepare, real_parser

from dfdc.core.config import TrainConfig
from dfdc.core.io import to_json
from dfdc.core.presets import METHODS
from dfdc.core.typed import build
from dfdc.stages.masks import run as masks_stage
from dfdc.training.loop import fit


def method_runs(base: TrainConfig) -> dict[str, TrainConfig]:
    """Each named method (``train.method``, :data:`dfdc.core.presets.METHODS`) as a run: the
    base recipe with the method's switches on, under its own run name."""
    runs = {}
    for name, overlay in METHODS.items():
        raw = {**overlay, "method": name, "run": name}
        runs[name] = build(TrainConfig, raw, "train.", f"method {name}", base=base)
    return runs


def measure_cost(
    params, runs: dict[str, TrainConfig], chosen: list[str], batches: int, work: Path
) -> dict[str, dict]:
    """Each chosen method's training crops per second over ``batches`` batches of fold 0
    (at most one epoch), one method after another after an uncounted warm-up, with its ratio
    to plain's (plain measured first)."""
    if batches <= 0:
        return {}
    order = ["plain"] + [m for m in chosen if m != "plain"]
    # Warm-up, not counted: the first fit in a process pays one-off costs (allocator, thread
    # pools, first batches) that would otherwise be charged to plain alone.
    fit(params, 0, run=dataclasses.replace(runs["plain"], epochs=1), max_batches=3,
        out_dir=work / "warmup" / "fold0", curves_dir=work / "warmup" / "dvclive")  # fmt: skip
    cost: dict[str, dict] = {}
    for name in order:
        run = dataclasses.replace(runs[name], epochs=1, val_every=1)
        shutil.rmtree(work / name, ignore_errors=True)
        f = fit(
            params,
            0,
            run=run,
            max_batches=batches,
            out_dir=work / name / "fold0",
            curves_dir=work / name / "dvclive",
        )
        ips = f.train_images / f.train_seconds if f.train_seconds else 0.0
        cost[name] = {
            "images": f.train_images,
            "seconds": round(f.train_seconds, 1),
            "images_per_s": round(ips, 2),
        }
        if name != "plain" and cost["plain"]["images_per_s"]:
            cost[name]["vs_plain"] = round(cost["plain"]["images_per_s"] / ips, 2)
        print(
            f"cost {name}: {f.train_images} crops in {f.train_seconds:.1f} s of training steps, "
            f"{ips:.2f} crops/s"
            + (
                f", {cost[name]['vs_plain']}x plain's time a crop"
                if "vs_plain" in cost[name]
                else ""
            ),
            flush=True,
        )
    return cost


def main(argv: list[str] | None = None) -> int:
    ap = real_parser(__doc__.splitlines()[0], "data/bench/methods")
    ap.add_argument("--methods", default="plain,sbi,sbi_only,masks,wsdan,srm")
    ap.add_argument("--reuse", action="store_true", help="keep finished folds in the work folder")
    ap.add_argument(
        "--cost-batches",
        type=int,
        default=0,
        metavar="N",
        help="measure each method's cost on N batches of fold 0, in one pass first",
    )
    args = ap.parse_args(argv)
    opened = open_real(args)
    if opened is None:
        return 2
    root, params = opened
    runs = method_runs(params.train)
    chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(runs))
    if unknown:
        print(f"--methods: unknown {unknown} (known: {', '.join(runs)})", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    index, _, faces_s = prepare(params, root)
    masks = masks_stage(params)
    fold_ids = list(params.cv.folds)[: args.folds] if args.folds else list(params.cv.folds)
    print(
        f"{len(index)} videos, {int((index['label'] == 'FAKE').sum())} fake, folds {fold_ids} of "
        f"{params.cv.n_folds}; faces {faces_s:.0f} s; masks for {len(masks.table)} crops "
        f"({masks.status['status'].value_counts().to_dict()})",
        flush=True,
    )

    cost = measure_cost(params, runs, chosen, args.cost_batches, Path(args.work) / "cost")
    results: dict[str, dict] = {}
    for name in chosen:
        run = runs[name]
        t1 = time.perf_counter()
        fits = [fit_or_reuse(params, k, run, args.reuse) for k in fold_ids]
        oof = pd.concat([pd.read_parquet(f.out_dir / "oof.parquet") for f in fits])
        images = sum(f.train_images for f in fits)
        seconds = sum(f.train_seconds for f in fits)
        m = oof_metrics(oof, params)
        m.update(
            total_s=round(time.perf_counter() - t1, 1),
            train_images=images,
            images_per_s=round(images / seconds, 2) if seconds else None,
        )
        if "plain" in results and m["images_per_s"] and results["plain"]["images_per_s"]:
            m["cost_vs_plain"] = round(results["plain"]["images_per_s"] / m["images_per_s"], 2)
        if name in cost:
            m["cost_pass"] = cost[name]
        results[name] = m
        print(
            f"{name}: out-of-fold video AUC {m['auc']:.3f}, log loss {m['logloss']:.3f}, "
            f"accuracy {m['accuracy']:.3f}, n {m['n']} (mean of all crops: AUC "
            f"{m['crop_mean']['auc']:.3f}, log loss {m['crop_mean']['logloss']:.3f}); "
            f"{m['images_per_s']} training crops/s"
            + (f", {m['cost_vs_plain']}x plain's time a crop" if "cost_vs_plain" in m else "")
            + f"; {m['total_s']:.0f} s",
            flush=True,
        )

    summary = {
        "cost_batches": args.cost_batches,
        "root": str(root),
        "videos": len(index),
        "folds": fold_ids,
        "recipe": params.train.recipe,
        "epochs": params.train.epochs,
        "seed": params.base.seed,
        "overrides": args.set,
        "total_s": round(time.perf_counter() - t0, 1),
        **results,
    }
    print(to_json(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
