"""``rdfa-s6 extract VIDEO_OR_FOLDER... --out DIR --backbone NAME``: video files -> clip features."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..precision import EXTRACT_PRECISIONS
from ._common import (
    BACKBONE_HELP,
    HelpFormatter,
    add_device_argument,
    add_precision_argument,
    add_trust_remote_code_argument,
    deprecated,
    in_range,
)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "extract",
        help="decode videos and extract clip features with a video backbone (the dataset layout train reads)",
        description="Decode video files with PyAV and extract one feature per clip: clip i covers frames "
        "[i*S, i*S + W) of the video at its own frame rate (or resampled to --fps), so a video of N frames gives "
        "T = floor((N - W) / S) + 1 features (one padded clip when N < W) and step t is centred at "
        "(t*S + W/2) / fps seconds. Writes OUT/features/<video_id>.npy [T, C], OUT/annotations.json (each video "
        "with duration, fps and --subset, no annotations) and OUT/extraction.json (settings and per-video facts). "
        "Finished videos are skipped when rerun; under torchrun each rank takes its share. A video that cannot "
        "be decoded is reported in one line and skipped; the exit status is then 2.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("inputs", type=Path, nargs="+", metavar="VIDEO_OR_FOLDER",
                        help="video files or folders of them")
    parser.add_argument("--out", type=Path, required=True, help="output folder (the dataset root)")
    parser.add_argument("--backbone", required=True, help=BACKBONE_HELP)
    add_trust_remote_code_argument(parser)
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--backbone-weights", type=Path, default=None, metavar="FILE",
                         help="backbone weights: a torchvision state dict file (default: torchvision's cache, if it "
                         "holds the file)")
    deprecated(weights, "--weights", "--backbone-weights", dest="backbone_weights", type=Path)
    weights.add_argument("--random-init", action="store_true",
                         help="an untrained network with a fixed seed (tests and demos; recorded as such)")
    parser.add_argument("--fps", type=float, default=None, help="resample every video to this frame rate, 0.01 to "
                        "1000 (default: each video's own rate; a variable-rate video is resampled to its average rate)")
    parser.add_argument("--stride", type=int, default=4, help="S: frames between consecutive clips (1 to 100000)")
    parser.add_argument("--window", type=int, default=16, help="W: frames per clip (1 to 1024)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per backbone call (1 to 1024)")
    add_device_argument(parser)
    add_precision_argument(parser, help="bf16 or fp16 (GPUs without bfloat16) autocast for the backbone, or fp32",
                           choices=EXTRACT_PRECISIONS)
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="of the feature files")
    parser.add_argument("--subset", default="training", help="subset of the new videos in annotations.json")
    parser.add_argument("--workers", type=int, default=1,
                        help="decoding processes, 0 to 64 (0: decode in the main process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import sys

    from ..messages import one_line, printable, shown
    from ..video.extract import FPS_RANGE, ExtractOptions, dist_env, extract
    from ._progress import video_bar

    in_range(args.fps, "--fps", *FPS_RANGE, "frames per second")
    in_range(args.stride, "--stride", 1, 100_000, "frames")
    in_range(args.window, "--window", 1, 1024, "frames")
    in_range(args.batch_size, "--batch-size", 1, 1024, "clips")
    in_range(args.workers, "--workers", 0, 64, "processes")
    from ..outputs import check_outputs
    from ..video.backbones import backbone_path

    source = backbone_path(args.backbone)
    check_outputs([(args.out, "--out", "folder")], [(source, "--backbone")] if source is not None else [])
    rank, world, _ = dist_env()
    opts = ExtractOptions(out=args.out, backbone=args.backbone, weights=args.backbone_weights,
                          random_init=args.random_init,
                          fps=args.fps, stride=args.stride, window=args.window, batch_size=args.batch_size,
                          device=args.device, precision=args.precision, subset=args.subset, workers=args.workers,
                          dtype=args.dtype, rank=rank, world_size=world, trust_remote_code=args.trust_remote_code)
    if world == 1:  # one process owns --out; the ranks of one torchrun job share it by design (one shard each)
        from ..runlock import hold_folder

        with hold_folder(args.out):
            summary = extract(args.inputs, opts, progress=video_bar("extract", not args.no_progress))
    else:
        summary = extract(args.inputs, opts, progress=video_bar("extract", not args.no_progress))
    where = f" (rank {rank} of {world})" if world > 1 else ""
    speed = f", {summary.video_seconds / summary.seconds:.1f} video-s/s" if summary.seconds > 0 and summary.done else ""
    print(f"extracted {len(summary.done)} video(s){where}, {len(summary.skipped)} already done, "
          f"{len(summary.failed)} failed, in {summary.seconds:.1f} s{speed} -> {shown(args.out)}")
    if summary.merged:
        print(f"wrote {printable(args.out / 'extraction.json')} and {printable(args.out / 'annotations.json')}")
    for reason in summary.failed.values():
        print(f"rdfa-s6 extract: failed: {one_line(reason)}", file=sys.stderr)
    return 2 if summary.failed else 0
