"""Checks shared by several commands: options and output paths are validated before any work starts."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from ..errors import UserError
from ..messages import shown
from ..outputs import check_outputs

#: the THUMOS-14 tIoU thresholds, the default of ``evaluate`` and ``visualize``
DEFAULT_TIOU = "0.3:0.7:0.1"


def output_file(path: Optional[Path], option: str, folder_must_exist: bool = False,
                inputs: Sequence[Tuple[Any, str]] = ()) -> None:
    """``option`` names a file to write: it must not be a folder, its folder must exist (with
    ``folder_must_exist``) or be creatable and writable, and it must not be one of ``inputs`` (``(path, option)``
    pairs, as :func:`rdfa_s6.outputs.check_outputs` takes them)."""
    if path is None:
        return
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if folder_must_exist and not folder.is_dir():
        raise UserError(f"{option} {shown(path)}: folder {shown(folder)} does not exist")
    check_outputs([(path, option, "file")], inputs)


def output_dir(path: Optional[Path], option: str) -> None:
    """``option`` names a folder to write into (created if needed): it must not be a file, and must be writable."""
    check_outputs([(path, option, "folder")])


def in_range(value: Optional[float], option: str, lo: float, hi: float, what: str = "a number",
             lo_open: bool = False) -> None:
    """A number from the user must be finite and within ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``), else a
    UserError naming the option and the range. ``None`` (an option not given) passes."""
    if value is None:
        return
    finite = not isinstance(value, float) or math.isfinite(value)
    if finite and (value > lo if lo_open else value >= lo) and value <= hi:
        return
    span = f"{'(' if lo_open else '['}{_number(lo)}, {_number(hi)}]"
    raise UserError(f"{option}: expected {what} in {span}, got {shown(value)}")


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else (str(int(x)) if x.is_integer() and abs(x) < 1e16 else f"{x:g}")


class DeprecatedSpelling(argparse.Action):
    """An old spelling of an option, kept for one release: hidden from ``--help``; it sets the new option's value
    (through ``translate`` when the values were renamed too) and prints one line saying what to write instead."""

    def __init__(self, option_strings: List[str], dest: str, new: str = "", translate: Any = None,
                 append: bool = False, **kwargs: Any) -> None:
        self.new, self.translate, self.append = new, translate, append
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        command = parser.prog.split()[-1]
        print(f"rdfa-s6 {command}: note: {option_string} is deprecated; use {self.new} (the old spelling will be "
              f"removed in the next release)", file=sys.stderr)
        if self.nargs == 0:
            values = self.const
        elif self.translate is not None:
            values = self.translate(values)
        if self.append:
            values = [*getattr(namespace, self.dest, []), values]
        setattr(namespace, self.dest, values)


def deprecated(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """Accept ``old`` as a hidden, deprecated spelling of ``new`` (same ``dest``); ``kwargs`` as for
    ``add_argument`` (``type``, ``nargs``, ``const`` for flags, ``translate`` for renamed values, ``append`` for a
    repeatable option)."""
    parser.add_argument(old, dest=dest, action=DeprecatedSpelling, new=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)


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


#: the most tIoU thresholds ``--tiou`` may give (the official protocols use 5 or 10)
MAX_TIOU = 1000

#: ``--fps`` of the commands that place feature rows in time (infer, watch, import, export): frames per second
GRID_FPS = (0.001, 1000.0)
#: the largest ``--stride``/``--window`` of feature rows, in frames
GRID_FRAMES = 100_000.0


def check_feature_grid(args: argparse.Namespace, window_may_be_zero: bool = True) -> None:
    """``--fps``, ``--stride`` and ``--window`` of feature rows (each may be None): finite and in range, one line
    naming the option otherwise. ``--stride`` is above 0; ``--window`` may be 0 unless ``window_may_be_zero`` is
    false."""
    in_range(args.fps, "--fps", *GRID_FPS, "frames per second")
    in_range(args.stride, "--stride", 0.0, GRID_FRAMES, "frames", lo_open=True)
    in_range(args.window, "--window", 0.0, GRID_FRAMES, "frames", lo_open=not window_may_be_zero)


def parse_tiou(text: str, option: str = "--tiou") -> List[float]:
    """``start:stop:step`` (stop included, e.g. ``0.5:0.95:0.05``) or a comma list (``0.3,0.5,0.7``); every
    threshold in (0, 1], at most :data:`MAX_TIOU` of them, else a UserError naming ``option``.

    A range gives the same values as ``numpy.linspace(start, stop, n)`` with ``n = (stop - start) / step + 1``,
    as the official evaluation scripts build their thresholds.
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            for value in parts[:2]:
                in_range(value, f"{option} {shown(text)}", 0.0, 1.0, "thresholds", lo_open=True)
            start, stop, step = parts
            if not (math.isfinite(step) and step > 0) or stop < start:
                raise UserError(f"{option} {shown(text)}: need start <= stop and a finite step > 0")
            if (stop - start) / step + 1 > MAX_TIOU + 0.5:
                raise UserError(f"{option} {shown(text)}: more than {MAX_TIOU} thresholds")
            count = int(round((stop - start) / step)) + 1
            if abs(start + (count - 1) * step - stop) > 1e-6 * max(1.0, abs(stop)):
                raise UserError(f"{option} {shown(text)}: stop is not start plus a whole number of steps")
            if count == 1:
                return [start]
            step = (stop - start) / (count - 1)  # numpy.linspace's arithmetic: start + i * step, last = stop
            return [start + i * step for i in range(count - 1)] + [stop]
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UserError(f"{option} {shown(text)}: expected start:stop:step or a comma-separated list of "
                        f"numbers") from None
    if not values:
        raise UserError(f"{option}: no threshold given")
    if len(values) > MAX_TIOU:
        raise UserError(f"{option}: {len(values)} thresholds, at most {MAX_TIOU}")
    for value in values:
        in_range(value, option, 0.0, 1.0, "thresholds", lo_open=True)
    return values


def add_precision_argument(parser: argparse.ArgumentParser, default: str = "auto",
                           help: str = "forward precision: bf16 matmuls (scan, norms and decoding in float32) or "
                                       "exact fp32", choices: Optional[Sequence[str]] = None) -> None:
    """``--precision {auto,fp32,bf16}`` of a command's forward passes (``choices``: another list of
    :mod:`rdfa_s6.precision`, e.g. ``EXTRACT_PRECISIONS``): the choices and the ``auto`` rule of
    :mod:`rdfa_s6.precision` (the one home of both)."""
    from ..precision import PRECISIONS

    parser.add_argument("--precision", choices=tuple(choices or PRECISIONS), default=default,
                        help=f"{help}; auto = bf16 where the hardware has fast bfloat16 (AMX/AVX512-BF16 CPUs, "
                             "CUDA compute 8.0+), else fp32")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` (:func:`rdfa_s6.device.resolve_device`): the same name, default and help in every command."""
    parser.add_argument("--device", default="auto",
                        help="auto (the first CUDA GPU if there is one, else the CPU), cpu, cuda, cuda:N or mps")


def add_trust_remote_code_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust-remote-code``: the one consent for running code from outside the package when a backbone is
    built (a transformers folder's custom modelling code, a ``py:`` plug-in). Off by default."""
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a backbone to run code from outside rdfa-s6: the Python files of an hf: model "
                        "folder whose config names custom code (auto_map), or a py: plug-in; only for code you "
                        "trust (docs/extract.md)")


#: the help of ``--backbone`` (extract, demo): what a backbone name may be
BACKBONE_HELP = ("video backbone: r3d_18, r2plus1d_18, s3d, mvit_v2_s, swin3d_t (torchvision, Kinetics-400), "
                 "colour-motion (weight-free colour and motion statistics; demos), hf:FOLDER_OR_HUB_ID (a transformers "
                 "video model folder, e.g. VideoMAE or V-JEPA 2, or a hub id in the local cache; pip install "
                 "'rdfa-s6[hf]') or py:FILE.py:FACTORY (a plug-in; needs --trust-remote-code)")


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """The positional MODEL of the commands that run a trained model (``test``, ``infer``)."""
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="a trained model: a run folder (its final/ model, else its newest checkpoint) or a "
                        "checkpoint folder")


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--no-progress`` and ``--precision``: the options of a command that runs a checkpoint's
    detector over videos (``infer``, ``test``)."""
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_precision_argument(parser)
