"""The ``rdfa-s6`` command line: one sub-command per module in :mod:`rdfa_s6.commands`.

Each command module defines ``register(subparsers) -> argparse.ArgumentParser`` and sets
``parser.set_defaults(func=run)`` where ``run(args) -> int`` returns the exit status.
User errors (bad files, bad options) raise :class:`rdfa_s6.errors.UserError`; they are printed as one
line and exit with status 2, never as a traceback. So is an ``OSError`` that says the disk is full, over quota
or read-only (ENOSPC, EDQUOT, EROFS), wherever it comes from.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from . import __version__
from .commands._common import HelpFormatter
from .errors import UserError, disk_full

#: sub-command modules, in the order ``--help`` lists them
COMMANDS: List[str] = ["demo", "synth", "extract", "train", "test", "infer", "evaluate", "view", "export", "visualize",
                       "check-data", "convert", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdfa-s6",
        description="RDFA-S6 temporal action localization: try it (demo), prepare and check data (synth, extract "
        "features from videos, check-data), train, test, run on new videos (infer), evaluate any results file, look "
        "at detections in a browser (view), hand them to annotation tools (export), plot (visualize), load official "
        "checkpoints (convert), check the selective-scan backends (bench). `rdfa-s6 COMMAND --help` explains each.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rdfa-s6 {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"rdfa_s6.commands.{name.replace('-', '_')}")
        module.register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # dotted overrides (key=value) may come after the options: collect them for commands that take them
    takes_overrides = isinstance(getattr(args, "overrides", None), list)
    if extra and takes_overrides and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides.extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
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
    except OSError as err:  # a full or read-only disk is the user's to fix too: one line, exit status 2
        full = disk_full(err)
        if full is None:
            raise
        print(f"rdfa-s6 {args.command}: error: {full}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
