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
    from search.api import results, retrain_table
    from search.rundir.render import render_markdown, render_table

    if args.width < 40:
        print(f"mtl-search: error: Invalid `--width`: must be >= 40. Received: --width={args.width}", file=sys.stderr)
        return EXIT_BAD_INPUT
    frame = retrain_table(args.run_dir) if args.retrain else results(args.run_dir)
    if args.format == "csv":
        print(frame.to_csv(index=False), end="")
    elif args.format == "json":
        print(frame.to_json(orient="records", indent=1))
    elif args.retrain:  # md and table: as retrain/retrain.md
        from search.winner.retrain_table import load_table

        print(load_table(args.run_dir).render_markdown(), end="")
    elif args.format == "md":
        print(render_markdown(frame, title=args.run_dir.resolve().name), end="")
    else:
        print(render_table(frame, width=args.width))
    return 0


def _dashboard(args) -> int:
    from search.winner.dashboard import open_dashboard

    try:
        with open_dashboard(args.run_dir, port=args.port) as dashboard:
            print(f"Optuna dashboard of {args.run_dir}: {dashboard.url}  (Ctrl-C stops it)", flush=True)
            dashboard.serve()  # until Ctrl-C or SIGTERM
    except KeyboardInterrupt:  # one that came before it served: Ctrl-C is how it ends, not an error
        pass
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
    import json

    from search.winner.exporting import export
    from search.winner.model_dir import CARD_JSON

    out = export(args.run_dir, args.out, force=args.force, formats=args.format)
    card = json.loads((out / CARD_JSON).read_text())
    files = [f + "/" if not f.endswith((".keras", ".onnx", ".tflite")) else f for f in card["files"].values()]
    print(f"Exported to {out}/: {', '.join(files)}, model_card.json, model_card.md, README.md")
    if needed := (card.get("litert") or {}).get("tensorflow_ops"):
        print(f"model.tflite needs TensorFlow ops LiteRT has no kernel for ({', '.join(needed)}): run it with the "
              "Flex delegate (see README.md)")
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


COMMANDS = {"run": _run, "resume": _resume, "results": _results, "dashboard": _dashboard, "retrain": _retrain,
            "export": _export, "predict": _predict, "evaluate": _evaluate, "finetune": _finetune, "report": _report,
            "write-folder": _write_folder, "migrate": _migrate}


def _say(line: str) -> None:
    print(line, flush=True)
