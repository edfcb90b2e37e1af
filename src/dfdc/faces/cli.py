"""``dfdc faces``: the extraction stage from the command line (the notebook calls the same)."""

from __future__ import annotations

import argparse

import pandas as pd

from dfdc.config import load_params, resolve_device
from dfdc.faces.extract import run_faces


def faces_stage(params_path: str) -> pd.DataFrame:
    params = load_params(params_path)
    index = pd.read_parquet(params.data.index_path)
    return run_faces(index, params.faces, device=resolve_device(params.base.device))


def add_faces_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("faces", help="extract face crops for the indexed videos (resumable)")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=_cmd_faces)


def _cmd_faces(args: argparse.Namespace) -> None:
    faces_stage(args.params)
