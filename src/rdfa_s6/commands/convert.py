"""``rdfa-s6 convert``: turn an official RDFA-S6 ``.pth`` checkpoint into an rdfa-s6 checkpoint folder.

A thin shell over :func:`rdfa_s6.models.official.convert_official` (reading the container without unpickling
code, picking the EMA or raw weights, checking every key and shape): options, the output folder, a message.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..messages import printable
from ._common import HelpFormatter

log = logging.getLogger(__name__)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        help="convert an official RDFA-S6 .pth checkpoint into an rdfa-s6 checkpoint folder",
        description="Read an official RDFA-S6 checkpoint (torch.save dict with 'model' and 'model_ema') without "
        "unpickling code, check every key and shape against the preset, and write a folder with "
        "model.safetensors, config.json and meta.json that `rdfa-s6 test`, `infer` and `rdfa_s6.load_detector` read.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="official .pth file")
    parser.add_argument("out_dir", type=Path, help="output checkpoint folder (created)")
    parser.add_argument("--weights", choices=("ema", "model"), default="ema",
                        help="which weights to take: the EMA model (used for the official results) or the raw one")
    parser.add_argument("--preset", default="thumos14", help="config preset (or .yaml path) the checkpoint belongs to")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set data.input_dim=1408 (repeatable)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Holds the output folder (a second process on it is refused) while converting into it."""
    from ..checkpoint import CONFIG_FILE, META_FILE, WEIGHTS_FILE, save_checkpoint
    from ..models.official import convert_official
    from ..outputs import check_outputs
    from ..runlock import hold_folder

    written = [(args.out_dir / name, "out_dir", "file") for name in (WEIGHTS_FILE, CONFIG_FILE, META_FILE)]
    check_outputs([(args.out_dir, "out_dir", "folder"), *written], [(args.checkpoint, "checkpoint")])
    with hold_folder(args.out_dir):
        model, cfg, meta = convert_official(args.checkpoint, args.preset, args.overrides, args.weights)
        save_checkpoint(args.out_dir, model, cfg, meta=meta)
    state = model.state_dict()
    n = sum(v.numel() for v in state.values())
    source = meta["source_weights"]
    print(f"converted {printable(args.checkpoint)} ({len(state)} tensors, {n:,} values, {source}) -> "
          f"{printable(args.out_dir)}")
    return 0
