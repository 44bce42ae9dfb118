"""The ``rdfa-s6`` command line: one sub-command per module in :mod:`rdfa_s6.commands`.

Each command module defines ``register(subparsers) -> argparse.ArgumentParser`` and sets
``parser.set_defaults(func=run)`` where ``run(args) -> int`` returns the exit status.
User errors (bad files, bad options) raise :class:`rdfa_s6.errors.UserError`; they are printed as one
line (escaped and shortened by :func:`rdfa_s6.messages.one_line`) and exit with status 2, never as a traceback.
So is an ``OSError`` that says the disk is full, over quota or read-only (ENOSPC, EDQUOT, EROFS), or that the
user can fix otherwise (permission denied, a missing folder, a refused symlink: :mod:`rdfa_s6.outputs`),
wherever it comes from. Log lines are one line each too.
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
from .messages import one_line

#: sub-command modules, in the order ``--help`` lists them
COMMANDS: List[str] = ["demo", "synth", "extract", "import", "init", "train", "test", "infer", "watch", "evaluate",
                       "view", "export", "visualize", "check-data", "convert", "bench"]
#: commands whose module name differs from the command's (``import`` is a Python keyword)
MODULES = {"import": "import_labels"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdfa-s6",
        description="RDFA-S6 temporal action localization: try it (demo), prepare and check data (synth, extract "
        "features from videos, import labels from annotation tools, fit a preset to the data (init), check-data), "
        "train, test, run on new videos (infer) or live streams (watch), evaluate any results file, look at "
        "detections in a browser (view), hand them to annotation tools (export), plot (visualize), load official "
        "checkpoints (convert), check the selective-scan backends (bench). "
        "`rdfa-s6 COMMAND --help` explains each.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rdfa-s6 {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"rdfa_s6.commands.{MODULES.get(name, name.replace('-', '_'))}")
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
        _unrecognized(parser, args, extra)
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), handlers=[handler])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        _say(f"rdfa-s6 {args.command}: error: {one_line(str(err))}")
        return 2
    except KeyboardInterrupt:
        _say(f"rdfa-s6 {args.command}: interrupted")
        return 130
    except OSError as err:  # a full or read-only disk is the user's to fix too: one line, exit status 2
        from .outputs import os_error_message

        full = disk_full(err)
        message = str(full) if full is not None else os_error_message(err)
        if message is None:
            raise
        _say(f"rdfa-s6 {args.command}: error: {one_line(message)}")
        return 2


def _say(line: str) -> None:
    """One line on stderr in one write: the lines of several processes (torchrun ranks) never run together."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _unrecognized(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: List[str]) -> None:
    """argparse's error for arguments no option takes, from the command's own parser (its usage line), with a hint
    when one looks like a config override written as an option (``--train.epochs=1``)."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    command = sub.choices.get(args.command) if sub is not None and args.command else None
    message = f"unrecognized arguments: {' '.join(extra)}"
    dotted = [e for e in extra if e.startswith("--") and "." in e.split("=", 1)[0]]
    if dotted and command is not None and any(a.dest == "overrides" for a in command._actions):
        key = dotted[0][2:]
        message += f"; config overrides are written key=value without dashes: {key if '=' in key else key + '=VALUE'}"
    (command or parser).error(message)


class OneLineFormatter(logging.Formatter):
    """Log records as one line each: a user string with a newline cannot split or forge a line (tracebacks
    attached with ``exc_info`` are kept as they are, for ``-vv`` debugging)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802  (logging's name)
        return one_line(super().formatMessage(record))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
