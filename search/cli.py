"""The ``mtl-search`` command."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mtl-search`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="mtl-search",
        description="Distributed hyperparameter search for multi-task Keras models (Ray Tune + Optuna).",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("mtl-search"))
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
