"""Checks shared by several commands: options and output paths are validated before any work starts."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import List, Optional

from ..errors import UserError
from ..messages import shown
from ..outputs import check_outputs

#: the THUMOS-14 tIoU thresholds, the default of ``evaluate`` and ``visualize``
DEFAULT_TIOU = "0.3:0.7:0.1"


def output_file(path: Optional[Path], option: str, folder_must_exist: bool = False) -> None:
    """``option`` names a file to write: it must not be a folder, and its folder must exist (with
    ``folder_must_exist``) or be creatable and writable. Commands that also read files use
    :func:`rdfa_s6.outputs.check_outputs`, which checks this and that no output is an input."""
    if path is None:
        return
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if folder_must_exist and not folder.is_dir():
        raise UserError(f"{option} {shown(path)}: folder {shown(folder)} does not exist")
    check_outputs([(path, option, "file")])


def output_dir(path: Optional[Path], option: str) -> None:
    """``option`` names a folder to write into (created if needed): it must not be a file, and must be writable."""
    check_outputs([(path, option, "folder")])


def positive(value: Optional[float], option: str, what: str, allow_zero: bool = False) -> None:
    """A finite number > 0 (>= 0 with ``allow_zero``), else a UserError naming the option."""
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{option}: expected a {'non-negative' if allow_zero else 'positive'} number of {what}, "
                        f"got {value}")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, shown only where it tells something: not for required options,
    positionals, flags, empty or unset (None) defaults, nor where the help text already states its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        no_default = any(default is v for v in (None, False, argparse.SUPPRESS)) or default == []
        flag_like = isinstance(action, (argparse._VersionAction, argparse._CountAction))
        if (action.required or not action.option_strings or no_default or flag_like
                or "default" in text or "%(default)" in text):
            return text
        return text + " (default: %(default)s)"


def parse_tiou(text: str) -> List[float]:
    """``start:stop:step`` (stop included, e.g. ``0.5:0.95:0.05``) or a comma list (``0.3,0.5,0.7``).

    A range gives the same values as ``numpy.linspace(start, stop, n)`` with ``n = (stop - start) / step + 1``,
    as the official evaluation scripts build their thresholds.
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise UserError(f"--tiou {text}: need start <= stop and step > 0")
            count = int(round((stop - start) / step)) + 1
            if abs(start + (count - 1) * step - stop) > 1e-6 * max(1.0, abs(stop)):
                raise UserError(f"--tiou {text}: stop is not start plus a whole number of steps")
            if count == 1:
                return [start]
            step = (stop - start) / (count - 1)  # numpy.linspace's arithmetic: start + i * step, last = stop
            return [start + i * step for i in range(count - 1)] + [stop]
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UserError(f"--tiou {text!r}: expected start:stop:step or a comma-separated list of numbers") from None
    if not values:
        raise UserError("--tiou: no threshold given")
    return values


def add_precision_argument(parser: argparse.ArgumentParser, default: str = "auto",
                           help: str = "forward precision: bf16 matmuls (scan, norms and decoding in float32) or "
                                       "exact fp32") -> None:
    """``--precision {auto,fp32,bf16}`` of a command's forward passes: the choices and the ``auto`` rule of
    :mod:`rdfa_s6.precision` (the one home of both)."""
    from ..precision import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default=default,
                        help=f"{help}; auto = bf16 where the hardware has fast bfloat16 (AMX/AVX512-BF16 CPUs, "
                             "CUDA compute 8.0+), else fp32")


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--no-progress`` and ``--precision``: the options of a command that runs a checkpoint's
    detector over videos (``infer``, ``test``)."""
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_precision_argument(parser)
