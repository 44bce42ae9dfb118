"""``rdfa-s6 infer CHECKPOINT FEATURES``: detect actions in feature files of unannotated videos."""
from __future__ import annotations

import argparse
import csv
import io
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
        "memory grows linearly with length.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint folder or run folder")
    parser.add_argument("features", type=Path, help="a feature file or a folder of them")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of the videos (default: the config's data.default_fps; required if unset)")
    parser.add_argument("--stride", type=float, default=None,
                        help="frames between consecutive rows of the feature files (default: data.feat_stride)")
    parser.add_argument("--window", type=float, default=None, help="frames per feature clip (default: data.num_frames)")
    parser.add_argument("--out", type=Path, default=Path("detections.json"), help="results JSON to write")
    parser.add_argument("--csv", type=Path, default=None, help="also write video_id,start_s,end_s,label,score rows")
    parser.add_argument("--min-score", type=float, default=0.0, help="drop detections scored below this")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    add_precision_argument(parser)
    parser.set_defaults(func=run)
    return parser


def _feature_files(features: Path, extensions) -> list:
    from ..errors import UserError

    if features.is_dir():
        files = sorted(p for p in features.iterdir() if p.suffix in extensions and p.is_file())
        if not files:
            raise UserError(f"{features} holds no {'/'.join(extensions)} feature file")
        return files
    if features.is_file():
        if features.suffix not in extensions:
            raise UserError(f"{features}: feature files must end in {', '.join(extensions)}")
        return [features]
    raise UserError(f"feature file or folder {features} not found")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..checkpoint import atomic_write_bytes, atomic_write_json, load_detector, read_label_names
    from ..data.coords import covered_seconds
    from ..data.dataset import model_input
    from ..data.features import EXTENSIONS, FeatureReader
    from ..data.transforms import pad_batch
    from ..errors import UserError
    from ..infer.predictor import predict_batch
    from ..train.state import resolve_model_dir

    positive(args.fps, "--fps", "frames per second")
    positive(args.stride, "--stride", "frames")
    positive(args.window, "--window", "frames", allow_zero=True)
    if args.min_score != args.min_score:  # NaN
        raise UserError(f"--min-score: expected a number, got {args.min_score}")
    output_file(args.out, "--out")
    output_file(args.csv, "--csv")
    files = _feature_files(args.features, EXTENSIONS)
    model_dir = resolve_model_dir(args.checkpoint)
    model, cfg = load_detector(model_dir, device=args.device)
    names = read_label_names(model_dir, model.num_classes) or {i: f"class_{i}" for i in range(model.num_classes)}
    fps = args.fps or cfg.data.default_fps
    if not fps:
        raise UserError(f"--fps is required: the model's config ({model_dir / 'config.json'}) has no "
                        f"data.default_fps")
    rate = cfg.data.downsample_rate
    file_stride = args.stride or cfg.data.feat_stride
    window = args.window if args.window is not None else cfg.data.num_frames
    results = {}
    for path in tqdm(files, desc="infer", unit="video", disable=None):
        feats = FeatureReader(path.parent, "", "", path.suffix, 1, model.input_dim).load(path.stem)
        duration = covered_seconds(feats.shape[1], fps, file_stride, window)  # all rows of the file
        feats = feats[:, ::rate]  # as FeatureReader does with data.downsample_rate in training
        feats, stride, num_frames = model_input(feats, cfg.data, file_stride * rate, window)
        batch_feats, mask = pad_batch([feats.to(args.device)], cfg.data.max_seq_len, model.max_div_factor,
                                      training=False)
        meta = {"video_id": path.stem, "fps": fps, "feat_stride": stride, "num_frames": num_frames,
                "duration": duration}
        with torch.no_grad():
            dets = predict_batch(model, {"feats": batch_feats, "mask": mask, "meta": [meta]}, cfg.infer, names,
                                 precision=args.precision)
        results[path.stem] = [d for d in dets[path.stem] if d["score"] >= args.min_score]
    atomic_write_json(args.out, {"version": "rdfa-s6", "external_data": {}, "results": results})
    if args.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["video_id", "start_s", "end_s", "label", "score"])
        for vid, dets in results.items():
            for d in dets:
                writer.writerow([vid, d["segment"][0], d["segment"][1], d["label"], f"{d['score']:.6f}"])
        atomic_write_bytes(args.csv, buf.getvalue().encode())
    total = sum(len(v) for v in results.values())
    print(f"{total} detections in {len(results)} video(s): {args.out}" + (f", {args.csv}" if args.csv else ""))
    return 0
