"""``rdfa-s6 infer CHECKPOINT FEATURES``: detect actions in feature files of unannotated videos."""
from __future__ import annotations

import argparse
import csv
import io
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "infer",
        help="detect actions in feature files (no annotations needed)",
        description="Run a trained model on one feature file ([T, C] .npy/.npz/.pt) or on every such file in a "
        "folder, and write the detections (ActivityNet results JSON, labels by name; CSV with --csv). Times are "
        "seconds: feature step i covers frames [i*stride, i*stride + window) at --fps. Videos of any length are "
        "processed whole (padded to a multiple of the coarsest pyramid stride); memory grows linearly with length.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint folder or run folder")
    parser.add_argument("features", type=Path, help="a feature file or a folder of them")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of the videos (default: the config's data.default_fps; required if unset)")
    parser.add_argument("--stride", type=float, default=None,
                        help="frames between feature steps (default: data.feat_stride * data.downsample_rate)")
    parser.add_argument("--window", type=float, default=None, help="frames per feature clip (default: data.num_frames)")
    parser.add_argument("--out", type=Path, default=Path("detections.json"), help="results JSON to write")
    parser.add_argument("--csv", type=Path, default=None, help="also write video_id,start_s,end_s,label,score rows")
    parser.add_argument("--min-score", type=float, default=0.0, help="drop detections scored below this")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..checkpoint import atomic_write_bytes, atomic_write_json, load_detector
    from ..data.features import EXTENSIONS, FeatureReader
    from ..data.transforms import pad_batch
    from ..errors import UserError
    from ..infer.predictor import predict_batch
    from ..train.state import label_names_of, resolve_model_dir

    model_dir = resolve_model_dir(args.checkpoint)
    model, cfg = load_detector(model_dir, device=args.device)
    names = label_names_of(model_dir) or {i: f"class_{i}" for i in range(model.num_classes)}
    fps = args.fps or cfg.data.default_fps
    if not fps or fps <= 0:
        raise UserError("--fps is required (the model's config has no data.default_fps)")
    stride = args.stride or cfg.data.feat_stride * cfg.data.downsample_rate
    window = args.window if args.window is not None else cfg.data.num_frames
    if args.features.is_dir():
        files = sorted(p for p in args.features.iterdir() if p.suffix in EXTENSIONS)
        if not files:
            raise UserError(f"{args.features} holds no {'/'.join(EXTENSIONS)} feature file")
    elif args.features.is_file():
        files = [args.features]
    else:
        raise UserError(f"feature file or folder {args.features} not found")
    results = {}
    for path in tqdm(files, desc="infer", unit="video", disable=None):
        reader = FeatureReader(path.parent, "", "", path.suffix, 1, model.input_dim)
        feats = reader.load(path.stem).to(args.device)
        length = feats.shape[1]
        batch_feats, mask = pad_batch([feats], cfg.data.max_seq_len, model.max_div_factor, training=False)
        meta = {"video_id": path.stem, "fps": fps, "feat_stride": stride, "num_frames": window,
                "duration": (length * stride + window) / fps}
        with torch.no_grad():
            dets = predict_batch(model, {"feats": batch_feats, "mask": mask, "meta": [meta]}, cfg.infer, names)
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
