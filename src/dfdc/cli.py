"""``dfdc``: the entry points DVC stages and users call.

Expected failures (bad params, bad metadata, missing credentials, unreadable inputs) end in one
line on stderr and exit status 2, never a traceback from deep inside a library.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from dfdc.config import ConfigError, Params, load_params

log = logging.getLogger("dfdc")

__all__ = ["main"]


class _TqdmHandler(logging.Handler):
    """Log lines through tqdm, so progress bars are not broken by them."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def _setup_logging(verbose: bool) -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def data_stage(params: Params) -> Path:
    """Materialise the raw data and write the video index."""
    from dfdc.index import build_index, collect_entries
    from dfdc.io import write_parquet
    from dfdc.sources import prepare_raw

    cfg = params.data
    layout = prepare_raw(cfg, sample_workers=cfg.workers)
    entries = collect_entries(layout.train_root, layout.test_dir)
    index = build_index(entries, workers=cfg.workers, relative_to=Path.cwd())
    write_parquet(index, cfg.index_path)
    counts = index.groupby("split")["name"].count().to_dict()
    log.info("index: %d videos %s -> %s", len(index), counts, cfg.index_path)
    return Path(cfg.index_path)


def _cmd_data(args: argparse.Namespace) -> None:
    data_stage(load_params(args.params))


def _cmd_folds(args: argparse.Namespace) -> None:
    import pandas as pd

    from dfdc.folds import make_folds
    from dfdc.io import write_parquet

    params = load_params(args.params)
    folds = make_folds(pd.read_parquet(params.data.index_path), params.cv)
    write_parquet(folds, params.cv.path)


def _cmd_train(args: argparse.Namespace) -> None:
    from dfdc.engine import fit

    fit(load_params(args.params), args.fold)


def _cmd_notebook(args: argparse.Namespace) -> None:
    from dfdc.notebooks import run_notebook

    load_params(args.params)  # a bad key stops here, in one line, before a kernel starts
    parameters: dict = {"params_path": str(args.params)}
    for key, value in args.param or []:
        parameters[key] = _scalar(value)
    run_notebook(args.src, args.dst, parameters)


def _scalar(text: str) -> object:
    """Papermill parameters are scalars: ints, floats, booleans, or strings."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfdc", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="materialise data/raw and write the video index")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("folds", help="split the labelled videos into group k-folds")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=_cmd_folds)

    p = sub.add_parser("train", help="train one fold (under torchrun: DistributedDataParallel)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--fold", type=int, required=True)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("notebook", help="execute a jupytext notebook with papermill")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"))
    p.set_defaults(func=_cmd_notebook)

    from dfdc.faces.cli import add_faces_command

    add_faces_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    from dfdc.errors import EXPECTED

    try:
        args.func(args)
    except (ConfigError, *EXPECTED) as exc:
        print(f"dfdc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
