"""``rdfa-s6 watch SOURCE --model RUN``: detections from a live or endless source, as JSON lines.

A thin shell over :func:`rdfa_s6.stream.watch.watch` (the library's :meth:`rdfa_s6.Detector.stream`): argument
checks, the output files, one line per detection and the closing summary."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import IO, Any, List, Optional, Tuple

from ._common import HelpFormatter, add_inference_arguments, check_feature_grid, in_range

#: the longest --timeout: a day
MAX_TIMEOUT_S = 86_400.0


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "watch",
        help="detect actions in a live or endless stream (a video, URL, camera, or feature chunks)",
        description="Watch SOURCE with a trained model and report each detection as soon as it is final, as one "
        "JSON line {\"segment\": [start_s, end_s], \"label\", \"label_id\", \"score\", \"emitted\"} (emitted: the "
        "stream time in seconds at which it was reported). SOURCE is a video file (--follow: one still being "
        "written), a URL FFmpeg opens (rtsp://, http://, tcp://, udp://), a capture device (/dev/video0), a folder "
        "where .npy chunks of [n, C] feature rows appear (a file named END ends the stream), or - for .npy records "
        "on stdin. Videos are cut into clips and encoded as the model's training features were. The model runs "
        "on windows of --window-steps feature steps every --hop-steps; a detection ending at t seconds is "
        "reported by stream time t + D (D from the windows, stride and fps, printed at the start), and never "
        "twice. The end of the source, Ctrl-C, or no data for --timeout seconds flush the pending detections "
        "(a stall then exits with status 2). docs/streaming.md explains the windowing and the formats.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("source", metavar="SOURCE",
                        help="a video file, a URL, a capture device, a folder of .npy chunks, or - (stdin)")
    parser.add_argument("--model", type=Path, required=True, metavar="MODEL",
                        help="a trained model: a run folder (its final/ model, else its newest checkpoint) or a "
                        "checkpoint folder")
    parser.add_argument("--out", type=Path, default=None,
                        help="append the JSON lines to this file, flushed per detection (default: stdout)")
    parser.add_argument("--srt", type=Path, default=None, metavar="PATH",
                        help="also write SubRip subtitles: a growing .srt file, one cue (label, score) per detection "
                        "as it is reported (the file is started afresh)")
    parser.add_argument("--follow", action="store_true",
                        help="SOURCE is a video file still being written: wait at its end for more (up to "
                        "--timeout)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds a source may send nothing before it counts as stalled")
    parser.add_argument("--window-steps", type=int, default=None,
                        help="feature steps per model window (default: the model's data.max_seq_len)")
    parser.add_argument("--hop-steps", type=int, default=None,
                        help="feature steps between two windows (default: half a window)")
    parser.add_argument("--min-score", type=float, default=0.0, help="keep the detections scored at least this")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of the videos (feature rows only; default: the config's data.default_fps, "
                        "else the frame rate all training videos had)")
    parser.add_argument("--stride", type=float, default=None,
                        help="frames between consecutive rows of the feature files (default: data.feat_stride)")
    parser.add_argument("--window", type=float, default=None, help="frames per feature clip (default: data.num_frames)")
    parser.add_argument("--backbone-weights", type=Path, default=None, metavar="FILE",
                        help="backbone weights: for video inputs, the file the training features were extracted "
                        "with, when torchvision's cache does not hold it (checked by sha256)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per backbone call (1 to 1024)")
    add_inference_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..api import Detector
    from ..atomic import open_regular
    from ..checkpoint import resolve_model_dir
    from ..errors import UserError
    from ..export import Options, Segment
    from ..export.subtitles import write_srt
    from ..messages import plural, printable, shown
    from ..outputs import check_outputs
    from ..stream.sources import check_source, source_kind
    from ..stream.watch import INTERRUPTED, STALLED, WatchOptions, watch
    from ..stream.windows import MAX_WINDOW_STEPS

    check_source(args.source)
    in_range(args.timeout, "--timeout", 0.0, MAX_TIMEOUT_S, "seconds", lo_open=True)
    in_range(args.window_steps, "--window-steps", 1, MAX_WINDOW_STEPS, "feature steps")
    in_range(args.hop_steps, "--hop-steps", 1, MAX_WINDOW_STEPS, "feature steps")
    if args.window_steps is not None and args.hop_steps is not None and args.hop_steps > args.window_steps:
        raise UserError(f"--hop-steps {args.hop_steps}: at most --window-steps ({args.window_steps})")
    in_range(args.min_score, "--min-score", 0.0, 1.0, "a score")
    check_feature_grid(args)
    in_range(args.batch_size, "--batch-size", 1, 1024, "clips")
    model_dir = resolve_model_dir(args.model)
    kind = source_kind(args.source)
    inputs: List[Tuple[Any, str]] = [(p, "--model") for p in sorted(model_dir.iterdir()) if p.is_file()]
    if kind != "pipe" and "://" not in args.source:
        inputs.append((Path(args.source), "SOURCE"))
    inputs.append((args.backbone_weights, "--backbone-weights"))
    check_outputs([(args.out, "--out", "file"), (args.srt, "--srt", "file")], inputs)
    if args.out is not None and args.srt is not None and Path(args.out).resolve() == Path(args.srt).resolve():
        raise UserError(f"--out and --srt are the same file {shown(args.out)}")
    det = Detector.from_pretrained(model_dir, device=args.device, precision=args.precision)
    opts = WatchOptions(timeout=args.timeout, follow=args.follow, window_steps=args.window_steps,
                        hop_steps=args.hop_steps, min_score=args.min_score, fps=args.fps, stride=args.stride,
                        window=args.window, batch_size=args.batch_size, backbone_weights=args.backbone_weights,
                        handle_sigint=True)
    out: IO[str] = sys.stdout
    files: List[IO[Any]] = []
    if args.out is not None:
        out = os.fdopen(open_regular(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "a", encoding="utf-8")
        files.append(out)
    srt: Optional[IO[bytes]] = None
    if args.srt is not None:
        srt = os.fdopen(open_regular(args.srt, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb")
        files.append(srt)
    cues = 0

    def emit(d) -> None:
        nonlocal cues
        out.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")
        out.flush()
        if srt is not None:
            cues += 1
            cue = write_srt({"stream": [Segment(d.start, d.end, d.label, d.score)]}, Options())
            srt.write((b"\n" if cues > 1 else b"") + str(cues).encode() + cue[1:])  # the cue, renumbered
            srt.flush()

    bar: Any = None

    def on_start(stream) -> None:
        nonlocal bar
        w = stream.windowing
        if not args.no_progress:
            from tqdm import tqdm

            print(f"rdfa-s6 watch: windows of {w.window} steps every {w.hop}; a detection is reported at most "
                  f"{w.delay_bound:.1f} s of stream time after its end (the first ones at {w.first_report:.1f} s)",
                  file=sys.stderr)
            bar = tqdm(desc="watch", unit="s", bar_format="{desc}: {n:.1f} s of stream [{elapsed}]",
                       disable=None)

    def on_progress(seconds: float) -> None:
        if bar is not None:
            bar.n = seconds
            bar.refresh()

    try:
        summary = watch(det, args.source, opts, emit, on_progress, on_start)
    finally:
        if bar is not None:
            bar.close()
        for f in files:
            f.close()
    where = f": {printable(args.out)}" if args.out is not None else ""
    if summary.ended == STALLED:
        print(f"rdfa-s6 watch: {shown(args.source)}: no data for {args.timeout:g} s (--timeout); stopped after "
              f"{summary.stream_seconds:.1f} s of stream, {plural(summary.detections, 'detection')}{where}",
              file=sys.stderr)
        return 2
    how = "stopped (Ctrl-C)" if summary.ended == INTERRUPTED else "the source ended"
    print(f"rdfa-s6 watch: {how} after {summary.stream_seconds:.1f} s of stream: "
          f"{plural(summary.detections, 'detection')}{where}", file=sys.stderr)
    return 0
