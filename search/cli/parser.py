"""The arguments of ``mtl-search`` and its subcommands (what ``--help`` shows)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["FOLDER_DATASETS", "build_parser"]

FOLDER_DATASETS = ("digits", "shapes", "glyphs", "segmentation")  # built-in data sets write-folder writes


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mtl-search`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="mtl-search",
        description="Distributed hyperparameter search for multi-task Keras models (Ray Tune + Optuna).",
        epilog="Example: mtl-search run configs/shapes.yaml; mtl-search results results/shapes; "
               "mtl-search retrain results/shapes; mtl-search export results/shapes --out results/shapes/export",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run a search from an experiment file",
                              description="Run a search. Without --address (or $RAY_ADDRESS) a local Ray is "
                                          "started on 127.0.0.1.")
    run.add_argument("experiment", type=Path, help="the experiment YAML file (see configs/)")
    run.add_argument("--results-dir", type=Path, default=Path("results"),
                     help="where run directories go (default: results/); the run writes results/<name>/, or "
                          "results/<name>-N if that already holds a search")
    run.add_argument("--address", default=None,
                     help="join the Ray cluster at this address (default: $RAY_ADDRESS, else a local Ray)")
    run.add_argument("--storage", type=Path, default=None,
                     help="with --address: a directory every node mounts at the same path, for trial checkpoints "
                          "(default: the run directory, which must then be shared)")

    resume = commands.add_parser("resume", help="continue an interrupted search",
                                 description="Continue a search; finished trials are kept and not re-run.")
    resume.add_argument("run_dir", type=Path, help="the run directory, e.g. results/shapes")
    resume.add_argument("--address", default=None, help="the Ray cluster (default: the one the search ran on)")

    results = commands.add_parser("results", help="print a search's leaderboard or retrain table",
                                  description="Print the leaderboard (or with --retrain the retrain table) of a run "
                                              "directory, fitted to the terminal or as Markdown, CSV or JSON.")
    results.add_argument("run_dir", type=Path, help="the run directory, e.g. results/shapes")
    results.add_argument("--width", type=int, default=100, help="table width in columns (default: 100)")
    results.add_argument("--format", choices=("table", "md", "csv", "json"), default="table",
                         help="table (fitted to --width, default), md (as leaderboard.md), csv or json (one object "
                              "per row); printed to stdout, no file is written")
    results.add_argument("--retrain", action="store_true",
                         help="the retrain table (one row per retrained configuration) instead of the leaderboard")
    _add_dashboard_command(commands)
    _add_model_commands(commands)
    return parser


def _add_dashboard_command(commands) -> None:
    dashboard = commands.add_parser(
        "dashboard", help="open a search's Optuna study in optuna-dashboard (on 127.0.0.1)",
        description="Serve optuna-dashboard on the run's Optuna study, bound to 127.0.0.1 only, until Ctrl-C. Each "
                    "trial carries its leaderboard row's status, best validation metrics and epochs as user "
                    "attributes, and its Ray Tune trial id (ray_trial_id). Searches with engine keras-tuner keep "
                    "no study.")
    dashboard.add_argument("run_dir", type=Path, help="the run directory, e.g. results/shapes")
    dashboard.add_argument("--port", type=int, default=None, help="the port (default: a free one)")


def _add_model_commands(commands) -> None:
    retrain = commands.add_parser(
        "retrain", help="retrain the best configurations across seeds and judge them on the test split",
        description="Retrain the top-K trials of a search once per seed (as Ray Tune trials), with early stopping, "
                    "reduce-LR-on-plateau, a best checkpoint by the objective and TensorBoard logs; evaluate each on "
                    "the test split; write retrain/retrain.md and report.md. Finished runs are kept: run it again "
                    "to continue an interrupted retrain.")
    retrain.add_argument("run_dir", type=Path, help="the search's run directory, e.g. results/shapes")
    retrain.add_argument("--top-k", type=int, default=3, help="how many of the best configurations (default: 3)")
    retrain.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44], help="seeds (default: 42 43 44)")
    retrain.add_argument("--epochs", type=int, default=None,
                         help="epoch budget (default: the search's max_epochs, or without one the most epochs the "
                              "retrained configurations trained in the search)")
    retrain.add_argument("--patience", type=int, default=None,
                         help="early-stopping patience in epochs (default: a fifth of the budget, at least 3)")
    retrain.add_argument("--by", default="objective",
                         help="pick the winner by the mean of: 'objective' (default) or TASK[.METRIC], e.g. B.accuracy")
    retrain.add_argument("--baselines", action="store_true",
                         help="also train each task alone with the winner's network and report Δm%%")
    retrain.add_argument("--concurrency", type=int, default=None, help="runs at a time (default: the experiment's)")
    retrain.add_argument("--address", default=None, help="the Ray cluster (default: the one the search ran on)")

    export = commands.add_parser(
        "export", help="write the retrained winner as .keras, SavedModel, ONNX or LiteRT, with model cards",
        description="Export the winner of `retrain`: model.keras, the formats of --format, model_card.json, "
                    "model_card.md, README.md (a Hugging Face Hub model card) and experiment.yaml.")
    export.add_argument("run_dir", type=Path, help="the run directory, e.g. results/shapes")
    export.add_argument("--out", type=Path, required=True, help="the model directory to write (must not exist)")
    export.add_argument("--format", default="keras,savedmodel", metavar="FORMATS",
                        help="comma-separated, of keras (model.keras, always written), savedmodel (TensorFlow "
                             "Serving's layout: serving/NAME/1/), onnx (model.onnx), litert (model.tflite) "
                             "(default: keras,savedmodel)")
    export.add_argument("--force", action="store_true", help="replace --out if it exists")

    predict = commands.add_parser("predict", help="per-task predictions of an exported model",
                                  description="Predict every task for the arrays in an NPZ file (named as the "
                                              "model's inputs, raw values), written as an NPZ; or for the image "
                                              "files in a folder, written as a CSV with class names.")
    predict.add_argument("model_dir", type=Path, help="an exported model directory")
    predict.add_argument("inputs", type=Path, help="an .npz file with one array per model input, or a folder of "
                                                   "images (PNG, JPEG, BMP, GIF)")
    predict.add_argument("--out", type=Path, required=True,
                         help="where to write the predictions (.npz; .csv for a folder)")
    predict.add_argument("--force", action="store_true", help="replace --out if it exists")

    evaluate = commands.add_parser("evaluate", help="recompute an exported model's test metrics",
                                   description="Rebuild the test split from the model card's data set and seeds, "
                                               "recompute the metrics and show them beside the card's.")
    evaluate.add_argument("model_dir", type=Path, help="an exported model directory")

    finetune = commands.add_parser("finetune", help="freeze the backbone and fine-tune one head",
                                   description="Network (e)'s step: freeze the shared backbone, train one task's "
                                               "head, and write the result as a new model directory.")
    finetune.add_argument("model_dir", type=Path, help="an exported model directory")
    finetune.add_argument("--task", required=True, help="the task whose head is trained")
    finetune.add_argument("--freeze", default="backbone", help="what stays frozen (default and only: backbone)")
    finetune.add_argument("--out", type=Path, default=None,
                          help="the new model directory (default: MODEL_DIR-finetuned-TASK)")
    finetune.add_argument("--epochs", type=int, default=None,
                          help="epochs (default: the search's max_epochs, or without one the model's own epochs)")
    finetune.add_argument("--learning-rate", type=float, default=None,
                          help="learning rate (default: a tenth of the model's)")
    finetune.add_argument("--force", action="store_true", help="replace --out if it exists")

    report = commands.add_parser("report", help="rewrite report.md and its plots for a retrained run",
                                 description="Write results/<name>/report.md with PNG plots (written by retrain too).")
    report.add_argument("run_dir", type=Path, help="the run directory, e.g. results/shapes")

    folder = commands.add_parser(
        "write-folder", help="write a built-in data set as an image folder with a label table",
        description="Write a built-in data set's images as PNG files under OUT/images/ and its labels as "
                    "OUT/labels.csv: the layout `data.dataset: images` reads. Prints the experiment's data section "
                    "that reads the folder. `digits` (5,000 real MNIST digits, painted) gains the ink's centre, a "
                    "position target; `segmentation` writes its masks as PNG files under OUT/masks/.")
    folder.add_argument("dataset", choices=FOLDER_DATASETS, help="the built-in data set")
    folder.add_argument("out", type=Path, help="the folder to write (new or empty)")
    folder.add_argument("--n-samples", type=int, default=None, help="images to write (default: the data set's)")
    folder.add_argument("--image-size", type=int, default=None, help="height and width (not digits)")
    folder.add_argument("--seed", type=int, default=0, help="the data set's seed (default 0)")

    migrate = commands.add_parser(
        "migrate", help="convert a run or model directory written by an earlier mtl-search",
        description="Rename the metric keys of a run directory (its trial records, retrain results and tables, and "
                    "the exported models inside it) or of an exported model directory so that every key names its "
                    "split (val_shape_accuracy, test_objective), and rebuild the tables from them. Nothing is "
                    "retrained. A directory that is current already is left as it is.")
    migrate.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="run or model directories")
