"""The ``rdfa-s6`` command line: one sub-command per module in :mod:`rdfa_s6.commands`.

Each command module defines ``register(subparsers) -> argparse.ArgumentParser`` and sets
``parser.set_defaults(func=run)`` where ``run(args) -> int`` returns the exit status.
User errors (bad files, bad options) raise :class:`rdfa_s6.errors.UserError`; they are printed as one
line and exit with status 2, never as a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from . import __version__
from .errors import UserError

#: sub-command modules, in the order ``--help`` lists them
COMMANDS: List[str] = ["bench", "evaluate"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdfa-s6",
        description="RDFA-S6 temporal action localization: train, test, infer, evaluate, visualize.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rdfa-s6 {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"rdfa_s6.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"rdfa-s6 {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rdfa-s6 {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
