"""The ``mtl-search`` command: run, resume and read searches; retrain, export and use the winner.

Bad input (an invalid experiment, data file or argument) prints one error naming the
field and exits with status 2 before anything starts; an interrupted search prints the
command that resumes it. The arguments are in :mod:`search.cli.parser`, what each command does
in :mod:`search.cli.commands`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from search.cli.commands import COMMANDS, EXIT_BAD_INPUT, EXIT_INTERRUPTED
from search.cli.parser import build_parser

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "build_parser", "main"]


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
    _quiet(tensorflow=args.command not in ("run", "resume", "dashboard"))
    if threading.current_thread() is threading.main_thread():  # SIGTERM as Ctrl-C: it stops cleanly, ends its Ray
        signal.signal(signal.SIGTERM, _terminated)
    from mtl_models.errors import MtlError

    try:
        return COMMANDS[args.command](args)
    except MtlError as exc:  # ConfigError, SearchError, SpecError, DataError: the user can fix these
        print(f"mtl-search: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _one_line(message: str, limit: int = 470) -> str:
    """An error for the terminal: one line (a value the user gave may hold line breaks), at most ``limit`` chars."""
    line = " ".join(message.split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt


def _quiet(*, tensorflow: bool) -> None:
    """Keep TensorFlow's and Ray's start-up chatter out of the user's terminal. ``tensorflow``: import it now,
    quietly; ``run`` and ``resume`` do not, as their driver never needs it (the KerasTuner engine imports it
    quietly itself), and Ray starts sooner without waiting for it; nor does ``dashboard``, which trains nothing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("ray", "ray.tune", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if tensorflow:
        from search.engines.worker import import_tensorflow_quietly

        import_tensorflow_quietly()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
