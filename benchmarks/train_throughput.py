"""Training throughput: the real input pipeline against the bare model step, in one run.

    python benchmarks/train_throughput.py [--params params.yaml] [--steps 30] [--workers N]

Both sides run the same backbone, input size, batch size, optimizer and loss from the params
file, on this machine's device:

- bare: forward + backward + optimizer step on random tensors already in memory;
- pipeline: the same steps fed by the training DataLoader: crops read from the faces stage's
  per-video files, JPEG-decoded, face-part dropout, albumentations, normalisation, batching;
- layout: the bare step in PyTorch's default (contiguous) memory layout, against the
  channels-last layout the loop uses (``train.channels_last``), on CPU as on CUDA.

It needs the faces stage's output (``dvc repro faces`` on the sample is enough). The last line
printed is one JSON object; ``pipeline_overhead`` is 1 - pipeline/bare images per second.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import pandas as pd
import torch

from dfdc.core.config import Params, load_params
from dfdc.core.io import to_json
from dfdc.core.runtime import Runtime, make_runtime
from dfdc.crops.datasets import CropDataset, crop_items, epoch_plan
from dfdc.crops.transforms import train_transform
from dfdc.faces.store import decode_reduction
from dfdc.kinds.backbones import build_model, model_norm
from dfdc.training.loop import make_optimizer, smoothed_bce


def step(model, opt, x, y, cfg, rt: Runtime) -> None:
    with rt.autocast():
        logits = model(rt.to_input(x)).squeeze(1)
    loss = smoothed_bce(logits.float(), y.to(rt.device), cfg.label_smoothing, False)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def timed(fn, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def throughput(params: Params, steps: int, workers: int | None = None) -> dict:
    """The figures of this benchmark (printed as they come) for the frame run of ``params``,
    reading its faces table: images a second bare and through the input pipeline."""
    cfg = params.train
    if workers is not None:
        cfg = dataclasses.replace(cfg, num_workers=workers)
    rt = make_runtime(params.base.device, cfg.amp, cfg.channels_last)
    device = rt.device
    cuda = device.type == "cuda"
    faces = pd.read_parquet(params.faces.table_path)
    labels = {v: "FAKE" for v in faces["video"].unique()}
    items = crop_items(faces, labels, cfg.train_tracks)
    plan = epoch_plan(items, dataclasses.replace(cfg, balance="none", frames_per_video=10**6), 0, 0)
    size, batch = cfg.model.input_size, cfg.batch_size
    need = (steps + 3) * batch
    plan = (plan * (need // max(1, len(plan)) + 1))[:need]
    print(
        f"{cfg.model.backbone} @ {size}px, batch {batch}, {steps} steps, device {device}, "
        f"{cfg.num_workers} loader workers, {torch.get_num_threads()} torch threads",
        flush=True,
    )

    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 2, (batch,)).float()
    contiguous = Runtime(device, rt.amp, False)
    flat = contiguous.place(build_model(cfg.model)).train()
    flat_opt = make_optimizer(flat, cfg)
    flat_s = timed(lambda: step(flat, flat_opt, x, y, cfg, contiguous), steps)
    flat_ips = steps * batch / flat_s
    print(f"bare model step, default layout: {flat_ips:.1f} images/s", flush=True)

    model = rt.place(build_model(cfg.model)).train()
    opt = make_optimizer(model, cfg)
    bare_s = timed(lambda: step(model, opt, x, y, cfg, rt), steps)
    bare_ips = steps * batch / bare_s
    layout = "channels-last" if rt.channels_last else "default layout"
    print(f"bare model step, {layout}: {bare_ips:.1f} images/s", flush=True)

    mean, std = model_norm(model)
    reduce = decode_reduction(params.faces.crop_size, size)
    ds = CropDataset(
        plan, train_transform(cfg.aug, size, mean, std), cfg.aug.part_dropout_p, reduce=reduce
    )
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, num_workers=cfg.num_workers, pin_memory=cuda, drop_last=True
    )
    batches = iter(loader)
    pipe_s = timed(lambda: step(model, opt, *next(batches), cfg, rt), steps)
    pipe_ips = steps * batch / pipe_s
    print(f"input pipeline + step: {pipe_ips:.1f} images/s", flush=True)

    t0 = time.perf_counter()
    n = sum(len(b[0]) for _, b in zip(range(steps), loader, strict=False))
    load_ips = n / (time.perf_counter() - t0)
    print(f"input pipeline alone: {load_ips:.1f} images/s", flush=True)
    result = {
        "backbone": cfg.model.backbone,
        "input_size": size,
        "batch_size": batch,
        "device": str(device),
        "num_workers": cfg.num_workers,
        "channels_last": rt.channels_last,
        "bare_default_layout_images_per_s": round(flat_ips, 2),
        "bare_images_per_s": round(bare_ips, 2),
        "pipeline_images_per_s": round(pipe_ips, 2),
        "loader_only_images_per_s": round(load_ips, 2),
        "pipeline_overhead": round(1 - pipe_ips / bare_ips, 4),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument(
        "--workers", type=int, default=None, help="DataLoader workers (default: params)"
    )
    args = ap.parse_args(argv)
    print(to_json(throughput(load_params(args.params), args.steps, args.workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
