"""The ``mtl-search`` command: run, resume and read searches.

Bad input (an invalid experiment, data file or argument) prints one error naming the
field and exits with status 2 before anything starts; an interrupted search prints the
command that resumes it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

__all__ = ["build_parser", "main"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mtl-search`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="mtl-search",
        description="Distributed hyperparameter search for multi-task Keras models (Ray Tune + Optuna).",
        epilog="Example: mtl-search run configs/shapes.yaml   (then: mtl-search results results/shapes)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run a search from an experiment file",
                              description="Run a search. Without --address a local Ray is started on 127.0.0.1.")
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

    results = commands.add_parser("results", help="print a search's leaderboard",
                                  description="Print the leaderboard of a run directory, fitted to the terminal.")
    results.add_argument("run_dir", type=Path, help="the run directory, e.g. results/shapes")
    results.add_argument("--width", type=int, default=100, help="table width in columns (default: 100)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, 130 when interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("mtl-search"))
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    _quiet()
    from mtl_models.errors import MtlError

    try:
        if args.command == "run":
            return _run(args)
        if args.command == "resume":
            return _resume(args)
        return _results(args)
    except MtlError as exc:  # ConfigError, SearchError, SpecError, DataError: the user can fix these
        print(f"mtl-search: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run(args) -> int:
    from search.api import run
    from search.results import render_table

    frame = run(args.experiment, results_dir=args.results_dir, address=args.address, storage=args.storage,
                progress=_say)
    print(render_table(frame, width=100))
    print(f"\nLeaderboard: {frame.attrs['run_dir']}/leaderboard.md")
    return EXIT_INTERRUPTED if frame.attrs.get("interrupted") else 0


def _resume(args) -> int:
    from search.api import resume
    from search.results import render_table

    frame = resume(args.run_dir, address=args.address, progress=_say)
    print(render_table(frame, width=100))
    return EXIT_INTERRUPTED if frame.attrs.get("interrupted") else 0


def _results(args) -> int:
    from search.api import results
    from search.results import render_table

    if args.width < 40:
        print(f"mtl-search: error: Invalid `--width`: must be >= 40. Received: --width={args.width}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(render_table(results(args.run_dir), width=args.width))
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _quiet() -> None:
    """Keep TensorFlow's and Ray's start-up chatter out of the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("ray", "ray.tune", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # TensorFlow's C++ start-up lines (oneDNN, "no CUDA drivers") ignore TF_CPP_MIN_LOG_LEVEL:
    # silence file descriptor 2 while it imports, then restore it. A failed import still raises.
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
