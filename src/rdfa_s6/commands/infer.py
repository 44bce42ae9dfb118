"""``rdfa-s6 infer CHECKPOINT FEATURES``: detect actions in feature files of unannotated videos.

A thin shell over :class:`rdfa_s6.Detector`: argument checks, the progress bar, files and messages."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._common import HelpFormatter, add_precision_argument, output_file, positive

log = logging.getLogger(__name__)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "infer",
        help="detect actions in feature files (no annotations needed)",
        description="Run a trained model on one feature file ([T, C] .npy/.npz/.pt) or on every such file in a "
        "folder, and write the detections (ActivityNet results JSON, labels by name; CSV with --csv). Times are "
        "seconds: row i of a file is the clip of --window frames starting at frame i * --stride, at --fps, so "
        "T rows cover ((T - 1) * stride + window) / fps seconds, and detections are clipped to that. The model's "
        "data.downsample_rate and data.force_upsampling apply as in training. Videos of any length are "
        "processed whole (padded to a multiple of the coarsest pyramid stride; anchor points beyond the model's "
        "precomputed buffer of model.max_buffer_len_factor * data.max_seq_len steps are computed on the fly); "
        "memory grows linearly with length. The same pipeline is rdfa_s6.Detector.predict in Python.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint folder or run folder")
    parser.add_argument("features", type=Path, help="a feature file or a folder of them")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of the videos (default: the config's data.default_fps, else the frame rate "
                        "all training videos had; required if neither exists)")
    parser.add_argument("--stride", type=float, default=None,
                        help="frames between consecutive rows of the feature files (default: data.feat_stride)")
    parser.add_argument("--window", type=float, default=None, help="frames per feature clip (default: data.num_frames)")
    parser.add_argument("--out", type=Path, default=Path("detections.json"), help="results JSON to write")
    parser.add_argument("--csv", type=Path, default=None, help="also write video_id,start_s,end_s,label,score rows")
    parser.add_argument("--min-score", type=float, default=0.0, help="drop detections scored below this")
    parser.add_argument("--ext-scores", type=Path, default=None, metavar="FILE",
                        help="external video-level class scores to fuse with (JSON {video_id: [p_0..p_K]}, class "
                        "index = label_id) for the videos it lists (default: the config's infer.ext_score_file, "
                        "taken under --data-root when relative)")
    parser.add_argument("--no-ext-scores", action="store_true",
                        help="do not fuse, even when the config names an external score file")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder that a relative infer.ext_score_file of the config is taken under")
    parser.add_argument("--batch-size", type=int, default=8, help="videos per forward pass (same-length groups)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_precision_argument(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..api import Detector
    from ..data.features import feature_files
    from ..errors import UserError
    from ..infer.fusion import external_scores_for
    from ..infer.results import write_results_csv, write_results_json

    positive(args.fps, "--fps", "frames per second")
    positive(args.stride, "--stride", "frames")
    positive(args.window, "--window", "frames", allow_zero=True)
    if args.min_score != args.min_score:  # NaN
        raise UserError(f"--min-score: expected a number, got {args.min_score}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    output_file(args.out, "--out")
    output_file(args.csv, "--csv")
    files = feature_files(args.features)
    det = Detector.from_pretrained(args.checkpoint, device=args.device, precision=args.precision)
    if args.fps is None and det.default_fps is None:
        raise UserError(f"--fps is required: the model's config ({det.source}/config.json) has no "
                        f"data.default_fps and its training videos had no common frame rate")
    external = None if args.no_ext_scores else external_scores_for(
        args.ext_scores, det.config.infer.ext_score_file, args.data_root)
    videos = {p.stem: p for p in files}
    with tqdm(total=len(videos), desc="infer", unit="video", disable=True if args.no_progress else None) as bar:
        results = det.predict_many(videos, args.fps, stride=args.stride, window=args.window,
                                   ext_scores={v: s for v, s in (external or {}).items() if v in videos},
                                   min_score=args.min_score, batch_size=args.batch_size,
                                   on_video=lambda _vid: bar.update(1))
    write_results_json(args.out, results)
    if args.csv:
        write_results_csv(args.csv, results)
    total = sum(len(v) for v in results.values())
    fused = len(set(external or {}) & set(videos))
    print(f"{total} detections in {len(results)} video(s): {args.out}" + (f", {args.csv}" if args.csv else "")
          + (f" ({fused} fused with external class scores)" if fused else ""))
    return 0
