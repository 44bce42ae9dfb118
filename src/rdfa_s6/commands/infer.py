"""``rdfa-s6 infer CHECKPOINT INPUT...``: detect actions in feature files or video files of unannotated videos.

A thin shell over :class:`rdfa_s6.Detector`: argument checks, the progress bar, files and messages."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ._common import (
    HelpFormatter,
    add_inference_arguments,
    add_model_argument,
    add_trust_remote_code_argument,
    check_feature_grid,
    in_range,
)

log = logging.getLogger(__name__)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "infer",
        help="detect actions in feature files or videos (no annotations needed)",
        description="Run a trained model on feature files ([T, C] .npy/.npz/.pt), video files, or every such file "
        "in the folders given, and write the detections (ActivityNet results JSON, labels by name; CSV with "
        "--csv; SRT/WebVTT subtitles with --srt/--vtt). A video is first turned into features exactly as the "
        "model's training features were extracted (the run records the `rdfa-s6 extract` settings of its "
        "training data); a model trained on other features says which features it needs. Times are "
        "seconds: row i of a file is the clip of --window frames starting at frame i * --stride, at --fps, so "
        "T rows cover ((T - 1) * stride + window) / fps seconds, and detections are clipped to that. The model's "
        "data.downsample_rate and data.force_upsampling apply as in training. Videos of any length are "
        "processed whole (padded to a multiple of the coarsest pyramid stride; anchor points beyond the model's "
        "precomputed buffer of model.max_buffer_len_factor * data.max_seq_len steps are computed on the fly); "
        "memory grows linearly with length. The same pipeline is rdfa_s6.Detector.predict in Python. Under torchrun "
        "(one process per GPU, on one or several machines) process r of W takes inputs r, r + W, ... sorted by "
        "video id and writes its part beside --out (.<name>.parts/); the last to finish writes the files a "
        "one-process run writes.",
        formatter_class=HelpFormatter,
    )
    add_model_argument(parser)
    parser.add_argument("features", type=Path, nargs="+", metavar="INPUT",
                        help="feature files, video files, or folders of either")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of the videos (default: the config's data.default_fps, else the frame rate "
                        "all training videos had; required if neither exists)")
    parser.add_argument("--stride", type=float, default=None,
                        help="frames between consecutive rows of the feature files (default: data.feat_stride)")
    parser.add_argument("--window", type=float, default=None, help="frames per feature clip (default: data.num_frames)")
    parser.add_argument("--out", type=Path, default=Path("detections.json"), help="results JSON to write")
    parser.add_argument("--csv", type=Path, default=None,
                        help="also write video_id,start_s,end_s,label,score rows (text cells that a spreadsheet "
                        "would run as a formula, starting with = + - @ tab or CR, get a leading ')")
    parser.add_argument("--raw-csv", action="store_true",
                        help="CSV cells as they are: video ids and labels written unchanged, for programs (not "
                        "spreadsheets)")
    parser.add_argument("--srt", type=Path, default=None, metavar="PATH",
                        help="also write SubRip subtitles, one cue (label, score) per detection: a .srt file for "
                        "one video, else a folder of <video_id>.srt (the format of `rdfa-s6 export --format srt`)")
    parser.add_argument("--vtt", type=Path, default=None, metavar="PATH", help="the same as WebVTT (.vtt)")
    parser.add_argument("--cues", type=int, default=10,
                        help="subtitle cues per video: its best-scored detections (all of them stay in JSON and CSV)")
    parser.add_argument("--cue-min-score", type=float, default=0.0,
                        help="detections scored below this get no subtitle cue")
    parser.add_argument("--backbone-weights", type=Path, default=None, metavar="FILE",
                        help="backbone weights: for video inputs, the file the training features were extracted "
                        "with, when torchvision's cache does not hold it, or the moved folder of an hf: backbone "
                        "(checked by sha256)")
    add_trust_remote_code_argument(parser)
    parser.add_argument("--min-score", type=float, default=0.0, help="keep the detections scored at least this")
    parser.add_argument("--ext-scores", type=Path, default=None, metavar="FILE",
                        help="external video-level class scores to fuse with (JSON {video_id: [p_0..p_K]}, class "
                        "index = label_id) for the videos it lists (default: the config's infer.ext_score_file, "
                        "taken under --data-root when relative)")
    parser.add_argument("--no-ext-scores", action="store_true",
                        help="do not fuse, even when the config names an external score file")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="dataset folder: a relative infer.ext_score_file of the config is taken under it")
    parser.add_argument("--batch-size", type=int, default=8, help="videos per forward pass (same-length groups)")
    add_inference_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import sys

    from tqdm import tqdm

    from .. import shards
    from ..api import Detector
    from ..checkpoint import resolve_model_dir
    from ..device import resolve_device
    from ..errors import UserError
    from ..export import export_results
    from ..infer.fusion import external_scores_for
    from ..infer.results import results_document, write_results_csv, write_results_json
    from ..messages import plural, printable, shown
    from ..outputs import check_outputs
    from ..precision import resolve_precision

    check_feature_grid(args)
    in_range(args.min_score, "--min-score", 0.0, 1.0, "a score")
    in_range(args.cue_min_score, "--cue-min-score", 0.0, 1.0, "a score")
    in_range(args.cues, "--cues", 0, 100_000, "a number of cues")
    in_range(args.batch_size, "--batch-size", 1, 4096, "a number of videos")
    model_dir = _model_dir(args.model, args.features, resolve_model_dir)
    feature_paths, video_paths = _inputs(args.features)
    per_feature = [f"--{name}" for name in ("fps", "stride", "window") if getattr(args, name) is not None]
    if video_paths and per_feature and not feature_paths:
        raise UserError(f"{', '.join(per_feature)}: only for feature files; a video file's frames are read at its "
                        f"own frame rate and cut into clips as the model's training features were (recorded "
                        f"with the model)")
    outputs = [(args.out, "--out", "file"), (args.csv, "--csv", "file")]
    total_inputs = len(feature_paths) + len(video_paths)
    for option in ("srt", "vtt"):  # a .srt/.vtt file for one video; otherwise a folder of <video_id>.<option>
        path = getattr(args, option)
        if path is not None and path.suffix.lower() == f".{option}" and total_inputs != 1:
            raise UserError(f"--{option} {shown(path)}: one .{option} file holds one video, the inputs are "
                            f"{total_inputs} videos; give a folder")
        kind = "file" if path is not None and path.suffix.lower() == f".{option}" else "folder"
        outputs.append((path, f"--{option}", kind))
    inputs = [(p, "INPUT") for p in feature_paths + video_paths]
    inputs += [(p, "CHECKPOINT") for p in sorted(model_dir.iterdir()) if p.is_file()]
    inputs += [(args.ext_scores, "--ext-scores"), (args.backbone_weights, "--backbone-weights")]
    check_outputs(outputs, inputs)
    rank, world, local_rank = shards.rank_and_world()
    all_inputs = feature_paths + video_paths
    if world > 1:  # under torchrun: this rank's share of the inputs (sorted by video id), one GPU per process
        mine = set(shards.share(sorted(all_inputs, key=lambda p: p.stem), rank, world))
        feature_paths, video_paths = [p for p in feature_paths if p in mine], [p for p in video_paths if p in mine]
        total_inputs = len(mine)
    det = Detector.from_pretrained(model_dir, device=resolve_device(args.device, local_rank),
                                   precision=args.precision)
    if feature_paths and args.fps is None and det.default_fps is None:  # a video's fps comes from the video
        raise UserError(f"--fps is required: the model's config ({det.source}/config.json) has no "
                        f"data.default_fps and its training videos had no common frame rate")
    if video_paths and per_feature:
        print(f"rdfa-s6 infer: note: {', '.join(per_feature)} apply to the "
              f"{plural(len(feature_paths), 'feature file')}; the {plural(len(video_paths), 'video file')} use their "
              f"own frame rate and the model's recorded clips", file=sys.stderr)
    external = None if args.no_ext_scores else external_scores_for(
        args.ext_scores, det.config.infer.ext_score_file, args.data_root)
    videos = {p.stem: p for p in feature_paths}
    failed: Dict[str, str] = {}

    def fail(vid: str, err: Exception) -> None:
        failed[vid] = str(err)

    results = {}
    with tqdm(total=total_inputs, desc="infer", unit="video", disable=True if args.no_progress else None) as bar:
        if videos:
            results = det.predict_many(videos, args.fps, stride=args.stride, window=args.window,
                                       ext_scores={v: s for v, s in (external or {}).items() if v in videos},
                                       min_score=args.min_score, batch_size=args.batch_size,
                                       on_video=lambda _vid: bar.update(1), on_error=fail)
        for path in video_paths:
            try:
                results[path.stem] = det.predict_video(path, backbone_weights=args.backbone_weights,
                                                       trust_remote_code=args.trust_remote_code,
                                                       min_score=args.min_score,
                                                       ext_scores=(external or {}).get(path.stem))
            except UserError as err:  # a corrupt or unreadable video: the others go on (as extract does)
                fail(path.stem, err)
            bar.update(1)
    if world > 1:
        merged = _merge_shards(args, model_dir, all_inputs, rank, world, results, failed)
        if merged is None:
            print(f"{plural(sum(len(v) for v in results.values()), 'detection')} in "
                  f"{plural(len(results), 'video')} (rank {rank} of {world}); the last rank to finish writes "
                  f"{printable(args.out)}")
            return 2 if failed else 0
        results, failed, total_inputs = merged[0], merged[1], len(all_inputs)
    if not results:
        if len(failed) == 1:
            raise UserError(next(iter(failed.values())))
        raise UserError(f"none of the {total_inputs} inputs could be used; the first: "
                        f"{next(iter(failed.values()))}")
    write_results_json(args.out, results, {"precision": resolve_precision(det.precision, det.device),
                                           "device": str(det.device)})
    if args.csv:
        write_results_csv(args.csv, results, raw=args.raw_csv)
    if args.srt or args.vtt:  # the export formats of `rdfa-s6 export`, for the --cues best detections per video
        best = {vid: sorted(dets, key=lambda d: -d.score)[: args.cues] for vid, dets in results.items()}
        for fmt in ("srt", "vtt"):
            if getattr(args, fmt):
                export_results(results_document(best), fmt, getattr(args, fmt), min_score=args.cue_min_score)
    total = sum(len(v) for v in results.values())
    fused = len(set(external or {}) & set(results))
    extra = "".join(f", {printable(p)}" for p in (args.csv, args.srt, args.vtt) if p)
    print(f"{plural(total, 'detection')} in {plural(len(results), 'video')}: {printable(args.out)}{extra}"
          + (f" ({fused} fused with external class scores)" if fused else ""))
    for reason in failed.values():
        print(f"rdfa-s6 infer: failed: {shown(reason, 400)}", file=sys.stderr)
    if failed:
        print(f"rdfa-s6 infer: {len(failed)} of {plural(total_inputs, 'input')} failed; the results of the others "
              f"were written", file=sys.stderr)
    return 2 if failed else 0


def _shard_job(args: argparse.Namespace, model_dir: Path, inputs: List[Path]) -> str:
    """What makes two torchrun launches one job: torchrun's run id, the arguments, and the size and time of the
    inputs and checkpoint files (a marker of an earlier launch with other inputs is never merged)."""
    import hashlib
    import json
    import os

    files = sorted(inputs) + sorted(p for p in model_dir.iterdir() if p.is_file())
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    key = {"run": os.environ.get("TORCHELASTIC_RUN_ID"), "args": {k: str(v) for k, v in sorted(vars(args).items())
                                                                  if k != "func"}, "files": stats}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _merge_shards(args: argparse.Namespace, model_dir: Path, inputs: List[Path], rank: int, world: int,
                  results: Dict[str, list], failed: Dict[str, str]) -> Optional[Tuple[Dict[str, list], Dict[str, str]]]:
    """Under torchrun: write this rank's detections and failures as its marker in ``.<out name>.parts/`` beside
    ``--out`` (:mod:`rdfa_s6.shards`' rule, as ``extract``), and when every rank of this launch has, return all of
    them in the order of a one-process run (inputs as given); None while other ranks are still working."""
    from .. import shards
    from ..api import Detection

    folder = args.out.parent / f".{args.out.name}.parts"
    job = _shard_job(args, model_dir, inputs)
    shards.write_marker(folder, rank, world, {"results": {vid: [d.to_dict() for d in dets]
                                                          for vid, dets in results.items()},
                                              "failed": dict(failed)}, job=job)
    markers = shards.read_markers(folder, world, job)
    if markers is None:
        return None
    found: Dict[str, list] = {}
    failures: Dict[str, str] = {}
    for marker in markers:
        found.update({vid: [Detection.from_dict(e) for e in dets] for vid, dets in marker["results"].items()})
        failures.update(marker["failed"])
    order = [p.stem for p in inputs]
    return ({vid: found[vid] for vid in order if vid in found},
            {vid: failures[vid] for vid in order if vid in failures})


def _model_dir(checkpoint: Path, inputs: List[Path], resolve) -> Path:
    """The checkpoint folder of CHECKPOINT; when it is not one but an input is, the arguments were swapped."""
    from ..errors import DataError, UserError
    from ..messages import shown

    try:
        return resolve(checkpoint)
    except DataError:
        for given in inputs:
            try:
                resolve(given)
            except DataError:
                continue
            raise UserError(f"{shown(checkpoint)} is not a model and {shown(given)} is: the first argument must be "
                            f"the checkpoint or run folder (rdfa-s6 infer CHECKPOINT INPUT...)") from None
        raise


def _inputs(paths: List[Path]) -> Tuple[List[Path], List[Path]]:
    """(feature files, video files) among ``paths``, by extension; folders contribute their files of either kind.
    Two inputs with one video id (``a/x.npy`` and ``b/x.npy``, ``y.npy`` and ``y.pt``, the same file twice) are
    refused: detections are keyed by the file name without its extension."""
    from ..data.features import EXTENSIONS
    from ..errors import UserError
    from ..messages import shown
    from ..video.decode import VIDEO_EXTENSIONS
    from ..video.reproduce import is_video_file

    feats: List[Path] = []
    videos: List[Path] = []
    for path in paths:
        if path.is_dir():
            found_videos = sorted(p for p in path.iterdir() if p.is_file() and is_video_file(p))
            found_feats = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix in EXTENSIONS]
            if not found_videos and not found_feats:
                raise UserError(f"{shown(path)} holds no feature file ({'/'.join(EXTENSIONS)}) and no video file")
            feats += found_feats
            videos += found_videos
        elif path.is_file() and (path.suffix in EXTENSIONS or is_video_file(path)):
            (feats if path.suffix in EXTENSIONS else videos).append(path)
        elif path.is_file():
            raise UserError(f"{shown(path)}: expected a feature file ({', '.join(EXTENSIONS)}) or a video file "
                            f"({', '.join(VIDEO_EXTENSIONS)})")
        else:
            raise UserError(f"feature or video file or folder {shown(path)} not found")
    seen: Dict[str, Path] = {}
    for path in feats + videos:
        other = seen.setdefault(path.stem, path)
        if other is not path:
            raise UserError(f"the inputs {shown(other)} and {shown(path)} share the video id {shown(path.stem)!r}; "
                            f"detections are keyed by file name without extension: give one of them")
    return feats, videos
