"""``dfdc``: the entry points DVC stages and users call.

Expected failures (bad params, bad metadata, missing credentials, unreadable inputs) end in one
line on stderr and exit status 2, never a traceback from deep inside a library. Ctrl-C and
SIGTERM stop a command the same way: its workers (kernel, pool, Ray) stopped, one line, and the
shell's status for the signal (130, 143); what was finished stays, and a rerun resumes.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from dfdc.core.config import load_params
from dfdc.core.errors import UserError
from dfdc.core.lifetime import stop_on_signals
from dfdc.core.logs import setup_logging
from dfdc.stages import STAGES, stage_module

log = logging.getLogger("dfdc")

__all__ = ["exit_status", "main"]

ENGINE_HELP = (
    "torch: the checkpoints; onnx: the export stage's files; auto: onnx on a CPU, torch on a GPU "
    "and for --report (default: inference.engine)"
)


def _cmd_stage(args: argparse.Namespace) -> None:
    """A stage command: its stage module's ``run`` (the table is :data:`dfdc.stages.STAGES`)."""
    params = load_params(args.params)
    kwargs = {"smoke": args.smoke} if STAGES[args.command].smoke else {}
    stage_module(args.command).run(params, **kwargs)


def _cmd_export(args: argparse.Namespace) -> None:
    """``dfdc export``: the export stage; with ``--web DIR``, the browser page built from the
    stage's files instead."""
    if not args.web:
        return _cmd_stage(args)
    from dfdc.inference.web import build_web

    out = build_web(load_params(args.params).inference.export_dir, args.web)
    print(f"dfdc export: the page is in {out}; serve it: dfdc web {out}")


def _cmd_train(args: argparse.Namespace) -> None:
    """``dfdc train|train_sequence --fold K``; ``dfdc train --section S`` trains the run of
    section ``S`` through the train stage that names it (the sections are the registered
    kinds')."""
    from dfdc.kinds import run_sections

    params = load_params(args.params)
    name = args.command
    if args.section:
        if args.section not in run_sections():
            raise UserError(f"--section {args.section!r}: one of {', '.join(run_sections())}")
        trains = {
            getattr(stage_module(n), "SECTION", None): n for n, st in STAGES.items() if st.fold
        }
        name = trains[args.section]
    stage_module(name).run(params, args.fold, smoke=args.smoke)


def _with_engine(params, engine: str | None):
    """``params`` with ``--engine`` (when given) in place of ``inference.engine``."""
    from dataclasses import replace

    engine = engine or params.inference.engine
    return replace(params, inference=replace(params.inference, engine=engine))


def _purpose(args: argparse.Namespace) -> str:
    """A report's heatmaps need gradients, so ``auto`` means torch there."""
    return "explain" if getattr(args, "report", None) else "score"


def _cmd_web(args: argparse.Namespace) -> int:
    from dfdc.inference.web import serve

    serve(args.folder, args.port, args.host)
    return 0


def exit_status(unscored: int) -> int:
    """The one exit-status rule of the commands that score inputs (``dfdc predict``, ``dfdc
    evaluate``, ``dfdc robustness PATH``): 0 when every input got a score; 1 when any could
    not (a missing file, a broken link or symlink loop, an unreadable video), each named once
    on stderr while every other input is still scored and every output written;
    :func:`main` returns 2 for a usage or configuration error that stopped the command before
    it scored anything."""
    return 1 if unscored else 0


def _cmd_predict(args: argparse.Namespace) -> int:
    """Score each video; a bad one gets one line on stderr and the rest are still scored."""
    from dfdc.core.io import to_json
    from dfdc.dataset.layouts import file_problem
    from dfdc.inference.predict import bundle_from_params

    params = _with_engine(load_params(args.params), args.engine)
    ens_file = Path(params.ensemble.ensemble_path)
    # The workspace's fitted ensemble once the ensemble stage has run, else this run's folds.
    models = args.models
    if models is None and not ens_file.exists():
        models = Path(params.base.models_dir) / params.train.run
    bundle = bundle_from_params(
        params,
        purpose=_purpose(args),
        ensemble=None if models else ens_file,
        models=models,
        rule=args.rule,
        faces_combine=args.faces_combine,
        fold=args.fold,
    )
    print(f"dfdc predict: {bundle.trained_on}", file=sys.stderr)
    failed = 0
    paths = []
    for video in args.videos:
        path = Path(video)
        problem = file_problem(path)
        if problem is not None:
            print(f"dfdc predict: error: {path}: {problem}", file=sys.stderr)
            failed += 1
        else:
            paths.append(path)
    if args.report:  # each video scored once, its report written from that scoring
        from dfdc.reports.video_report import video_report

        preds = []
        for path in paths:
            rep = video_report(bundle, path, args.report)
            print(f"dfdc predict: report: {rep.page}", file=sys.stderr)
            preds.append(rep.prediction)
    else:
        # Many videos go to Ray actors with faces.executor: ray (without their crops: no --image).
        preds = bundle.score_all(paths, None if args.image else params.faces)
    results = []
    for path, pred in zip(paths, preds, strict=True):
        if pred.status == "unreadable":
            print(f"dfdc predict: error: {path}: {pred.reason}", file=sys.stderr)
            failed += 1
            continue
        if pred.status == "no_face":
            log.warning("%s: no face found; scored 0.5", path)
        results.append(pred)
        if not args.json:
            print(f"{path}\t{pred.prob:.6f}", flush=True)
        if args.image and pred.crops:
            from dfdc.core.io import save_figure
            from dfdc.reports.plots import plot_prediction

            out = Path(args.image)
            if len(args.videos) > 1:
                out = out.with_name(f"{out.stem}_{path.stem}{out.suffix}")
            save_figure(plot_prediction(pred), out, dpi=90)
    if args.json:
        print(to_json([r.as_dict() for r in results], indent=1))
    return exit_status(failed)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Score every labelled video under each path; a table, or one JSON object as last line.
    A labelled video that cannot be scored is one line on stderr, a count in the table and a
    named entry in the JSON (``unscored``); the exit status follows :func:`exit_status`."""
    from dfdc.core.io import to_json
    from dfdc.inference.predict import bundle_from_params
    from dfdc.reports.evaluation import evaluate_paths, metrics_table

    params = _with_engine(load_params(args.params), args.engine)
    if not args.paths:  # the evaluate stage: evaluate.sets into metrics/eval.json
        result = stage_module("evaluate").run(params)  # it logs each unscored video once
        print(f"{len(params.evaluate.sets)} sets: {result.counts_line()}")
        return exit_status(len(result.unscored))
    for path in args.paths:
        if not Path(path).is_dir():
            print(f"dfdc evaluate: error: {path}: not a folder", file=sys.stderr)
            return 2
    bundle = bundle_from_params(
        params,
        purpose=_purpose(args),
        ensemble=None if args.models else params.ensemble.ensemble_path,
        models=args.models,
    )
    result = evaluate_paths(bundle, args.paths, params.faces)
    if args.report:
        from dfdc.reports.video_report import evaluation_report

        page = evaluation_report(bundle, result, args.report)
        print(f"dfdc evaluate: report: {page}", file=sys.stderr)
    for row in result.unscored:
        print(f"dfdc evaluate: error: {row['path']}: {row['reason']}", file=sys.stderr)
    if result.scores.empty:
        print("dfdc evaluate: error: no labelled video could be scored", file=sys.stderr)
        return exit_status(len(result.unscored) or 1)
    summary = result.summary()
    if args.json:
        print(to_json(summary))
    else:
        table = metrics_table(summary)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(result.counts_line())
        print(f"models {result.trained_on}")
    return exit_status(len(result.unscored))


def _cmd_robustness(args: argparse.Namespace) -> int:
    """Labelled folders scored clean and under every distortion of ``robustness``."""
    import tempfile

    from dfdc.core.io import to_json
    from dfdc.robustness.report import failure_lines, metrics_table, run_paths

    params = load_params(args.params)
    if not args.paths:  # the robustness stage: held-out videos into metrics/robustness.json
        stage_module("robustness").run(params)
        print(f"robustness report -> {params.robustness.metrics_path}")
        return 0
    for path in args.paths:
        if not Path(path).is_dir():
            print(f"dfdc robustness: error: {path}: not a folder", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="dfdc-robustness-") as tmp:
        result = run_paths(params, args.paths, args.cache or tmp, models=args.models)
    m = result.metrics
    for line in failure_lines(m):
        print(f"dfdc robustness: error: {line}", file=sys.stderr)
    if args.json:
        print(to_json(m))
    else:
        table = metrics_table(m)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(
            f"{m['videos']} labelled videos, {m['unscored']} not scored (missing or "
            f"unreadable); {len(m['skipped'])} versions skipped, {len(m['failed'])} failed"
        )
    return exit_status(m["unscored"])


def _cmd_kaggle(args: argparse.Namespace) -> int | None:
    from dfdc.kaggle.cli import main as kaggle_main

    return kaggle_main(args.rest)


def _cmd_fingerprint(args: argparse.Namespace) -> None:
    """The ``code`` stage: each stage's code fingerprint into ``--out`` (``<stage>.txt``)."""
    from dfdc.core.fingerprint import Sources, StageCode, write_fingerprints

    code = {name: StageCode(s.module, s.notebook, s.ships) for name, s in STAGES.items()}
    # The checkout's sources (what dvc.yaml's deps name), whichever dfdc is installed.
    paths = write_fingerprints(code, args.out, Sources(args.src, root="."))
    print(f"dfdc fingerprint: {len(paths)} stages' code fingerprints in {args.out}")


def _cmd_notebook(args: argparse.Namespace) -> None:
    from dfdc.core.notebooks import run_notebook

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


def _cmd_convert_checkpoint(args: argparse.Namespace) -> None:
    """``dfdc convert-checkpoint PATH...``: what a refused older checkpoint's message names."""
    from dfdc.core.torch_files import convert_trusted

    for path in args.paths:
        print(f"dfdc convert-checkpoint: {convert_trusted(path)} now loads as data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfdc", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, stage in STAGES.items():
        if name in ("evaluate", "robustness"):  # commands of their own (below) run these too
            continue
        p = sub.add_parser(name, help=stage.help)
        p.add_argument("--params", default="params.yaml")
        if stage.fold:
            p.add_argument("--fold", type=int, required=True)
        if name == "train":
            p.add_argument(
                "--section",
                help="the params.yaml section to train (a registered kind's; sequence: the "
                "train_sequence stage's)",
            )
        if stage.smoke:
            p.add_argument("--smoke", action="store_true", help="a few batches/videos only")
        if name == "export":
            p.add_argument(
                "--web", metavar="DIR",
                help="build the browser page (static, offline) from inference.export_dir into DIR",
            )  # fmt: skip
        handler = _cmd_export if name == "export" else _cmd_stage
        p.set_defaults(func=_cmd_train if stage.fold else handler, section=None)

    p = sub.add_parser("predict", help="probability that each video is fake")
    p.add_argument("videos", nargs="+")
    p.add_argument("--params", default="params.yaml")
    p.add_argument(
        "--models",
        help="a run folder, fold folder or best.pt, averaged equally (default: the workspace's "
        "fitted ensemble once the ensemble stage has run, else its run's folds)",
    )
    p.add_argument(
        "--rule", choices=["mean", "confident", "weighted"], help="frames to a face score"
    )
    p.add_argument(
        "--faces-combine", "--faces", dest="faces_combine", choices=["max", "mean"],
        help="how several faces in a video combine (ensemble.faces_combine)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="per-frame and per-face scores as JSON")
    p.add_argument(
        "--fold", type=int,
        help="only fold K's models (never trained on fold K's validation videos: out of fold)",
    )  # fmt: skip
    p.add_argument("--engine", choices=["auto", "torch", "onnx"], help=ENGINE_HELP)
    p.add_argument("--image", help="save the face crops with their scores to this PNG")
    p.add_argument(
        "--report", metavar="DIR",
        help="write a report a video into DIR/<video>/: frames, boxes, timeline, heatmaps",
    )  # fmt: skip
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "evaluate", help="score labelled folders (DFDC, FF++, Celeb-DF layouts) per dataset"
    )
    p.add_argument(
        "paths", nargs="*", help="dataset folders in any supported layout (none: evaluate.sets)"
    )
    p.add_argument("--params", default="params.yaml")
    p.add_argument(
        "--models", help="a run folder, fold folder or best.pt (default: the fitted ensemble)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object as the last line")
    p.add_argument("--engine", choices=["auto", "torch", "onnx"], help=ENGINE_HELP)
    p.add_argument(
        "--report", metavar="DIR",
        help="an index page (metrics, curves, galleries of the most confident mistakes) in DIR",
    )  # fmt: skip
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "robustness", help="score labelled folders clean and under the black-box distortions"
    )
    p.add_argument(
        "paths", nargs="*", help="dataset folders in any supported layout (none: the stage)"
    )
    p.add_argument("--params", default="params.yaml")
    p.add_argument(
        "--models", help="a run folder, fold folder or best.pt (default: the fitted ensemble)"
    )
    p.add_argument("--cache", help="keep the distorted clips in this folder (default: a temp one)")
    p.add_argument("--json", action="store_true", help="one JSON object as the last line")
    p.set_defaults(func=_cmd_robustness)

    p = sub.add_parser("web", help="serve a page built by dfdc export --web on this machine")
    p.add_argument("folder")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=_cmd_web)

    p = sub.add_parser(
        "convert-checkpoint",
        help="re-save checkpoints you trust as tensors and plain data, so they load safely "
        "(reading them here runs any code they hold: only for files you made or trust)",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=_cmd_convert_checkpoint)

    p = sub.add_parser("notebook", help="execute a jupytext notebook with papermill")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"))
    p.set_defaults(func=_cmd_notebook)

    p = sub.add_parser(
        "fingerprint",
        help="each stage's code fingerprint (what dvc.yaml's stages depend on): the modules it "
        "runs, hashed without comments or docstrings",
    )
    p.add_argument("--src", default="src", help="the folder holding dfdc/ (default: src)")
    p.add_argument("--out", default="code", help="folder of the <stage>.txt files")
    p.set_defaults(func=_cmd_fingerprint)

    # Its own parser, imported only when it runs (stages do not import the Kaggle client).
    p = sub.add_parser(
        "kaggle",
        help="download data, publish datasets, push the kernel, submit (dfdc kaggle -h)",
        add_help=False,
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_kaggle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "kaggle":
        args.rest = extra + args.rest  # "dfdc kaggle -h" and the like reach its own parser
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    setup_logging(args.verbose)
    try:
        with stop_on_signals():
            code = args.func(args)
    except (UserError, FileNotFoundError) as exc:
        print(f"dfdc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (lifetime.Stopped)
        signum = getattr(exc, "signum", signal.SIGINT)
        resumes = args.command in STAGES or args.command == "notebook"
        print(f"dfdc {args.command}: interrupted by {signal.Signals(signum).name}: stopped"
              + ("; finished work is kept, rerun to resume" if resumes else ""),
              file=sys.stderr)  # fmt: skip
        # Work still pending dies with the stop: asyncio would log each pending task's error
        # (a notebook's dead kernel) with its traceback as the interpreter collects it.
        logging.getLogger("asyncio").disabled = True
        return 128 + signum
    # Commands return an exit status, or nothing (a return value such as a table is not one).
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
