"""``dfdc kaggle``: download, publish the packaged datasets, push the kernel, submit.

``release`` is the one-command upload: both datasets, then the kernel, then a record under
``submissions/releases/`` tying the kernel version Kaggle assigned to the git revision and the
``dvc.lock`` that built it, so a submission can be traced back and rebuilt.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict
from pathlib import Path

from dfdc.core.config import load_params
from dfdc.core.io import write_json
from dfdc.core.provenance import git_revision, sha256_file
from dfdc.kaggle.api import (
    Published,
    download_competition,
    publish_dataset,
    push_kernel,
    submit_kernel,
)

log = logging.getLogger(__name__)

__all__ = ["build_parser", "main", "release"]

RELEASES_DIR = Path("submissions/releases")


def _publish_datasets(package_dir: Path, notes: str) -> list[Published]:
    return [publish_dataset(package_dir / name, notes) for name in ("code", "models")]


def release(params_path: str, notes: str = "", releases_dir: Path = RELEASES_DIR) -> dict:
    """Publish both datasets, push the kernel, and record what was released."""
    params = load_params(params_path)
    package_dir = Path(params.package.out_dir)
    kernel_dir = package_dir / "kernel"
    if not (kernel_dir / "kernel-metadata.json").exists():
        raise FileNotFoundError(f"{kernel_dir}: no packaged kernel; run `dvc repro package`")
    datasets = _publish_datasets(package_dir, notes)
    kernel = push_kernel(kernel_dir)
    record = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": git_revision(),
        "dvc_lock_sha256": sha256_file("dvc.lock"),
        "kernel": asdict(kernel),
        "datasets": [asdict(d) for d in datasets],
        "notes": notes,
    }
    slug = kernel.ref.split("/")[-1]
    write_json(record, releases_dir / f"{slug}-v{kernel.version}.json")
    print(f"kernel {kernel.ref} version {kernel.version}: {kernel.url}")
    print(f"submit it with: dfdc kaggle submit -k {kernel.ref} -v {kernel.version}")
    return record


def _cmd_download(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    competition = args.competition or params.data.kaggle.competition
    out = Path(args.out or Path("data/kaggle") / competition)
    download_competition(competition, out)
    print(f"{competition} -> {out}")


def _cmd_datasets(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    for d in _publish_datasets(Path(params.package.out_dir), args.notes):
        print(f"dataset {d.ref} {d.action}: {d.url}")


def _cmd_push(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    k = push_kernel(Path(params.package.out_dir) / "kernel")
    print(f"kernel {k.ref} version {k.version}: {k.url}")


def _cmd_release(args: argparse.Namespace) -> None:
    release(args.params, args.notes)


def _cmd_submit(args: argparse.Namespace) -> None:
    competition = args.competition or load_params(args.params).data.kaggle.competition
    message = submit_kernel(args.kernel, args.version, competition, args.message, args.file)
    print(message or "submitted")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dfdc kaggle", description="download data, publish datasets, push the kernel, submit"
    )
    ksub = p.add_subparsers(dest="kaggle_command", required=True)

    d = ksub.add_parser("download", help="download and unpack a competition's files")
    d.add_argument("--params", default="params.yaml")
    d.add_argument("-c", "--competition", help="default: data.kaggle.competition")
    d.add_argument("-o", "--out", help="default: data/kaggle/<competition>")
    d.set_defaults(func=_cmd_download)

    for name, func, text in (
        ("datasets", _cmd_datasets, "create or version the code and models datasets"),
        ("push", _cmd_push, "push the packaged kernel (a new version each time)"),
        ("release", _cmd_release, "datasets, then the kernel, then a record in submissions/"),
    ):
        c = ksub.add_parser(name, help=text)
        c.add_argument("--params", default="params.yaml")
        if name != "push":
            c.add_argument("-m", "--notes", default="", help="version notes for the datasets")
        c.set_defaults(func=func)

    s = ksub.add_parser("submit", help="submit a pushed kernel version to a code competition")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("-k", "--kernel", required=True, help="<owner>/<kernel-slug>")
    s.add_argument("-v", "--version", type=int, help="kernel version (default: the latest)")
    s.add_argument("-c", "--competition", help="default: data.kaggle.competition")
    s.add_argument("-m", "--message", default="", help="submission description")
    s.add_argument("-f", "--file", default="submission.csv", help="the kernel's output file")
    s.set_defaults(func=_cmd_submit)
    return p


def main(argv: list[str]) -> int | None:
    """``dfdc kaggle ...`` (``dfdc.cli`` hands over the words after ``kaggle``)."""
    args = build_parser().parse_args(argv)
    return args.func(args)
