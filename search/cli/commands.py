"""What each ``mtl-search`` subcommand does: one function per command, from its parsed arguments to its exit
status (errors the user can fix are raised as :class:`mtl_models.errors.MtlError` and printed by ``main``)."""

from __future__ import annotations

import sys

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _run(args) -> int:
    from search.api import run
    from search.rundir.render import render_table

    frame = run(args.experiment, results_dir=args.results_dir, address=args.address, storage=args.storage,
                progress=_say)
    print(render_table(frame, width=100))
    print(f"\nLeaderboard: {frame.attrs['run_dir']}/leaderboard.md")
    return EXIT_INTERRUPTED if frame.attrs.get("interrupted") else 0


def _resume(args) -> int:
    from search.api import resume
    from search.rundir.render import render_table

    frame = resume(args.run_dir, address=args.address, progress=_say)
    print(render_table(frame, width=100))
    return EXIT_INTERRUPTED if frame.attrs.get("interrupted") else 0


def _results(args) -> int:
    from search.api import results
    from search.rundir.render import render_table

    if args.width < 40:
        print(f"mtl-search: error: Invalid `--width`: must be >= 40. Received: --width={args.width}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(render_table(results(args.run_dir), width=args.width))
    return 0


def _retrain(args) -> int:
    from search.winner.retraining import RetrainOptions, retrain

    options = RetrainOptions(top_k=args.top_k, seeds=tuple(args.seeds), epochs=args.epochs, patience=args.patience,
                             by=args.by, baselines=args.baselines, concurrency=args.concurrency)
    table = retrain(args.run_dir, options, address=args.address, progress=_say)
    print()
    print(table.render_markdown())
    return 0


def _export(args) -> int:
    from search.winner.exporting import export

    out = export(args.run_dir, args.out, force=args.force)
    print(f"Exported to {out}/: model.keras, saved_model/, model_card.json, model_card.md")
    return 0


def _predict(args) -> int:
    from search.winner.using import predict

    predictions = predict(args.model_dir, args.inputs, args.out, force=args.force)
    rows = len(next(iter(predictions.values())))
    print(f"Wrote {rows} predictions to {args.out}: {', '.join(sorted(predictions))}")
    return 0


def _evaluate(args) -> int:
    from search.winner.using import evaluate

    frame = evaluate(args.model_dir)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    return 0


def _finetune(args) -> int:
    from search.winner.using import finetune

    out = finetune(args.model_dir, args.task, out=args.out, freeze=args.freeze, epochs=args.epochs,
                   learning_rate=args.learning_rate, force=args.force, progress=_say)
    print(f"Fine-tuned model written to {out}/ (see model_card.md)")
    return 0


def _report(args) -> int:
    from search.winner.report import write_report

    write_report(args.run_dir, progress=_say)
    return 0


def _write_folder(args) -> int:
    import yaml

    from mtl_models.data import load_dataset
    from mtl_models.data.folder import digits_with_centre, write_image_folder
    from search.errors import ConfigError

    options = {k: v for k, v in (("n_samples", args.n_samples), ("image_size", args.image_size)) if v is not None}
    if args.dataset == "digits":
        if "image_size" in options:
            raise ConfigError("--image-size", "is fixed at 28 for digits", args.image_size)
        data = digits_with_centre(seed=args.seed, **options)
    else:
        data = load_dataset(args.dataset, seed=args.seed, **options)
    section = write_image_folder(data, args.out)
    section["path"] = str(args.out / "labels.csv")
    print(f"Wrote {len(data)} images to {args.out}/images/ and their labels to {args.out}/labels.csv. An experiment "
          "reads them with this data section (a relative path is read from the experiment file's folder):\n")
    print(yaml.safe_dump({"data": {"dataset": "images", "options": section}}, sort_keys=False, width=100,
                         default_flow_style=None))
    return 0


def _migrate(args) -> int:
    from search.migration import migrate

    for path in args.paths:
        migrate(path, progress=_say)
    return 0


COMMANDS = {"run": _run, "resume": _resume, "results": _results, "retrain": _retrain, "export": _export,
            "predict": _predict, "evaluate": _evaluate, "finetune": _finetune, "report": _report,
            "write-folder": _write_folder, "migrate": _migrate}


def _say(line: str) -> None:
    print(line, flush=True)
