"""``rdfa-s6 convert``: turn an official RDFA-S6 ``.pth`` checkpoint into an rdfa-s6 checkpoint folder.

A thin shell over :func:`rdfa_s6.models.official.convert_official` (reading the container without unpickling
code, picking the EMA or raw weights, checking every key and shape): options, the output folder, a message.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..messages import printable
from ._common import HelpFormatter, deprecated

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
    parser.add_argument("official", type=Path, metavar="OFFICIAL.pth", help="the official checkpoint file")
    parser.add_argument("out_dir", type=Path, help="output folder: the checkpoint folder to write (created)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides: e.g. data.input_dim=1408 (a model trained on other features)")
    parser.add_argument("--weight-set", choices=("ema", "raw"), default="ema",
                        help="which weights to take: the EMA model (used for the official results) or the raw one")
    parser.add_argument("--preset", default="thumos14", help="config preset (or .yaml path) the checkpoint belongs to")
    deprecated(parser, "--set", "key=value after the other arguments", dest="set_overrides", append=True)
    deprecated(parser, "--weights", "--weight-set", dest="weight_set", choices=("ema", "model"),
               translate=lambda v: {"model": "raw"}.get(v, v))
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Holds the output folder (a second process on it is refused) while converting into it."""
    from ..checkpoint import CONFIG_FILE, META_FILE, WEIGHTS_FILE, save_checkpoint
    from ..models.official import convert_official
    from ..outputs import check_outputs
    from ..runlock import hold_folder

    written = [(args.out_dir / name, "out_dir", "file") for name in (WEIGHTS_FILE, CONFIG_FILE, META_FILE)]
    check_outputs([(args.out_dir, "out_dir", "folder"), *written], [(args.official, "the official checkpoint")])
    with hold_folder(args.out_dir):
        overrides = [*args.overrides, *getattr(args, "set_overrides", [])]
        source_key = {"ema": "ema", "raw": "model"}[args.weight_set]  # the official checkpoint's names
        model, cfg, meta = convert_official(args.official, args.preset, overrides, source_key)
        save_checkpoint(args.out_dir, model, cfg, meta=meta)
    state = model.state_dict()
    n = sum(v.numel() for v in state.values())
    source = meta["source_weights"]
    print(f"converted {printable(args.official)} ({len(state)} tensors, {n:,} values, {source}) -> "
          f"{printable(args.out_dir)}")
    return 0
