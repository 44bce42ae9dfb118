"""Checks shared by several commands: options and output paths are validated before any work starts."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Dict, Mapping, Optional

from ..errors import DataError, UserError


def output_file(path: Optional[Path], option: str, folder_must_exist: bool = False) -> None:
    """``option`` names a file to write: it must not be a folder, and its folder must exist (with
    ``folder_must_exist``) or be creatable."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder; expected a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if folder_must_exist and not folder.is_dir():
        raise UserError(f"{option} {path}: folder {folder} does not exist")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {path}: {parent} is a file, not a folder")
            break


def output_dir(path: Optional[Path], option: str) -> None:
    """``option`` names a folder to write into (created if needed): it must not be a file."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: exists and is not a folder")
    output_file(path / "x", option)


def positive(value: Optional[float], option: str, what: str, allow_zero: bool = False) -> None:
    """A finite number > 0 (>= 0 with ``allow_zero``), else a UserError naming the option."""
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{option}: expected a {'non-negative' if allow_zero else 'positive'} number of {what}, "
                        f"got {value}")


def check_label_names(data_names: Mapping[int, str], model_names: Dict[int, str], ann_path: str,
                      model_dir: Path) -> None:
    """The annotation file's class ids (``label_id`` -> ``label``) must name the classes the model was trained on,
    when the checkpoint stores their names; else detections would be evaluated under the wrong names."""
    for lid, name in sorted(data_names.items()):
        trained = model_names.get(lid)
        if trained is not None and trained != name:
            raise DataError(f"{ann_path}: label_id {lid} is {name!r} but the model in {model_dir} was trained "
                            f"with label_id {lid} = {trained!r}; expected the class ids of the training data")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, shown only where it tells something: not for required options,
    positionals, flags, empty or unset (None) defaults, nor where the help text already states its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.required or not action.option_strings or any(default is v for v in (None, False, argparse.SUPPRESS)) or default == []
                or isinstance(action, (argparse._VersionAction, argparse._CountAction)) or "default" in text or "%(default)" in text):
            return text
        return text + " (default: %(default)s)"


def add_precision_argument(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--precision {auto,fp32,bf16}`` of a command's forward passes (see :mod:`rdfa_s6.precision`)."""
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=default,
                        help="forward precision: bf16 matmuls (scan, norms and decoding in float32) or exact fp32; "
                             "auto = bf16 where the hardware has fast bfloat16 (AMX/AVX512-BF16 CPUs, CUDA "
                             "compute 8.0+), else fp32")
