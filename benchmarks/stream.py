"""Streaming (docs/streaming.md): quality and speed of ``Detector.stream`` and ``rdfa-s6 watch``.

    PYTHONPATH=src python benchmarks/stream.py --model demo_out/run --data demo_out/data [--skip-video]

Reports, for the demo model (``rdfa-s6 demo --quick``):

1. mAP of the stream against ``predict`` on whole videos: the demo's test split (every video shorter than one
   window: identical by construction), a synthetic set of videos 8x longer than ``data.max_seq_len`` made with
   the demo data's generator (same seed: the same action patterns; up to 32 actions per video), and videos of
   the same length made of 8 demo-length videos end to end;
2. the real-time factor (stream seconds per wall second) of the stream on features, and the largest delay
   (emitted - end, stream seconds) of the detections reported before the end, against the stated bound;
3. the real-time factor of ``watch`` on a synthetic video with the weight-free ``colour-motion`` backbone and
   with a random-init ``r3d_18`` (a random-init detector of the matching width: speed only); ``live``: the same
   colour-motion watch on a source served at real-time pace over TCP, with the processing lag (wall time of each
   report minus the stream time at which it became final); ``memory``: peak RSS of a colour-motion watch on a
   video served in a loop (an hour of stream by default).

Prints one JSON document (and the CPU's name); numbers go to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _results(dets_by_video: Dict[str, List[Any]]) -> Dict[str, Any]:
    return {"results": {vid: [d.to_dict() for d in dets] for vid, dets in dets_by_video.items()}}


def _stream_all(det, feats: np.ndarray, fps: float, chunk: int) -> List[Any]:
    s = det.stream(fps)
    out: List[Any] = []
    for i in range(0, feats.shape[0], chunk):
        out += s.push(feats[i : i + chunk])
    return out + s.close()


def quality(det, data: Path, subset: str, chunk: int) -> Dict[str, Any]:
    """average mAP (and per-threshold mAP) of predict and of the stream on ``data`` (annotations + features)."""
    from rdfa_s6.eval.report import evaluate

    ann = json.loads((data / "annotations.json").read_text())["database"]
    vids = [v for v, e in ann.items() if e["subset"] == subset]
    whole, streamed = {}, {}
    steps = []
    for vid in vids:
        feats = np.load(data / "features" / f"{vid}.npy")
        steps.append(feats.shape[0])
        fps = float(ann[vid].get("fps") or det.default_fps)
        whole[vid] = det.predict(feats, fps=fps)
        streamed[vid] = _stream_all(det, feats, fps, chunk)
    tious = det.config.eval.tiou_thresholds
    policy = det.config.eval.gt_policy
    m_whole = evaluate(_results(whole), data / "annotations.json", subset, tious, policy)
    m_stream = evaluate(_results(streamed), data / "annotations.json", subset, tious, policy)
    return {"videos": len(vids), "steps_min": min(steps), "steps_max": max(steps),
            "predict_avg_mAP": round(100 * m_whole["average_mAP"], 2),
            "stream_avg_mAP": round(100 * m_stream["average_mAP"], 2),
            "predict_mAP": [round(100 * x, 2) for x in m_whole["mAP"]],
            "stream_mAP": [round(100 * x, 2) for x in m_stream["mAP"]],
            "detections_predict": sum(len(v) for v in whole.values()),
            "detections_stream": sum(len(v) for v in streamed.values())}


def long_synthetic(out: Path, max_seq_len: int, seed: int, videos: int) -> Path:
    """Test videos of exactly 8 * max_seq_len steps from the demo generator (same seed: same patterns)."""
    from rdfa_s6.data.synth import SynthSpec, generate

    length = 8 * max_seq_len
    generate(out, SynthSpec(train_videos=0, val_videos=0, test_videos=videos, min_len=length, max_len=length,
                            max_actions=32, seed=seed))
    return out


def concatenated_synthetic(out: Path, max_seq_len: int, seed: int, videos: int) -> Path:
    """Test videos of 8 * max_seq_len steps, each 8 demo-like videos of max_seq_len steps end to end (the
    generator's random-walk drift grows with length: a 2048-step video from it is much harder than any training
    video; these keep the training videos' statistics)."""
    from rdfa_s6.atomic import atomic_write_bytes
    from rdfa_s6.data.coords import covered_seconds
    from rdfa_s6.data.synth import FEAT_STRIDE, FPS, NUM_FRAMES, SynthSpec, generate

    parts = out / "parts"
    generate(parts, SynthSpec(train_videos=0, val_videos=0, test_videos=8 * videos, min_len=max_seq_len,
                              max_len=max_seq_len, seed=seed))
    ann = json.loads((parts / "annotations.json").read_text())["database"]
    ids = sorted(ann)
    (out / "features").mkdir(parents=True, exist_ok=True)
    database = {}
    for g in range(videos):
        group = ids[8 * g : 8 * g + 8]
        feats = np.concatenate([np.load(parts / "features" / f"{v}.npy") for v in group])
        shift = max_seq_len * FEAT_STRIDE / FPS  # seconds per part: steps * stride / fps
        events = [{**e, "segment": [e["segment"][0] + i * shift, e["segment"][1] + i * shift]}
                  for i, v in enumerate(group) for e in ann[v]["annotations"]]
        vid = f"long_{g:04d}"
        np.save(out / "features" / f"{vid}.npy", feats)
        database[vid] = {"subset": "test", "fps": FPS, "annotations": events,
                         "duration": round(covered_seconds(feats.shape[0], FPS, FEAT_STRIDE, NUM_FRAMES), 3)}
    atomic_write_bytes(out / "annotations.json", json.dumps({"database": database}).encode("utf-8"))
    return out


def feature_speed(det, seconds: float, chunk: int) -> Dict[str, Any]:
    """Real-time factor on random features and the delays of the detections reported before the end."""
    fps = det.default_fps or 30.0
    w = det.stream(fps).windowing
    rows = int(seconds * fps / w.stride)
    feats = np.random.default_rng(0).standard_normal((rows, det.input_dim)).astype(np.float32)
    s = det.stream(fps)
    live = []
    start = time.perf_counter()
    for i in range(0, rows, chunk):
        live += s.push(feats[i : i + chunk])
    wall = time.perf_counter() - start
    s.close()
    return {"stream_seconds": round(s.stream_time, 1), "wall_seconds": round(wall, 2),
            "realtime_factor": round(s.stream_time / wall, 1), "window_steps": w.window, "hop_steps": w.hop,
            **_delays(live, w.delay_bound, w.first_report)}


def watch_speed(backbone: str, seconds: float, tmp: Path, cfg_name: str = "demo") -> Dict[str, Any]:
    """``watch`` on a synthetic video with ``backbone`` (random-init weights where it has weights) and a
    random-init detector of the matching width."""
    from _video_helpers import write_video

    from rdfa_s6.api import Detector
    from rdfa_s6.config import load_config
    from rdfa_s6.models import build_detector
    from rdfa_s6.stream.watch import WatchOptions, watch
    from rdfa_s6.video.backbones import build_backbone

    bb = build_backbone(backbone, random_init=backbone != "colour-motion")
    cfg = load_config(cfg_name)
    torch.manual_seed(0)
    model = build_detector(cfg, input_dim=bb.feature_dim, num_classes=5)
    det = Detector(model, cfg, {i: f"class_{i}" for i in range(5)}, precision="fp32",
                   extraction={"backbone": backbone, "weights": "weight-free" if backbone == "colour-motion"
                               else "random-init", "feature_dim": bb.feature_dim, "fps": None, "stride": 4,
                               "window": 16, "dtype": "float32", "precision": "fp32", "short_side": bb.short_side,
                               "crop": bb.crop})
    video = tmp / f"{backbone}.mp4"
    write_video(video, int(seconds * 30), fps=30, width=160, height=120)
    found: List[Any] = []
    summary = watch(det, str(video), WatchOptions(), found.append)
    return {"backbone": backbone, "feature_dim": bb.feature_dim, "crop": bb.crop,
            "stream_seconds": round(summary.stream_seconds, 1), "wall_seconds": round(summary.wall_seconds, 1),
            "realtime_factor": round(summary.stream_seconds / summary.wall_seconds, 2),
            "detections": summary.detections, **_delays([d for d in found if d.emitted < summary.stream_seconds - 1e-3],
                                                        summary.delay_bound, summary.first_report)}


def _delays(live: List[Any], bound: float, first: float) -> Dict[str, Any]:
    """The stated bound (``emitted <= max(end + D, T0)``) against the detections reported before the end: the
    largest ``emitted - end`` of those ending after ``T0 - D`` (where ``D`` is the bound) and the largest excess
    over the bound (<= 0: kept; times are rounded to 0.1 ms)."""
    later = [d.emitted - d.end for d in live if d.end >= first - bound]
    return {"delay_bound_s": round(bound, 2), "first_report_s": round(first, 2), "live_detections": len(live),
            "max_delay_s": round(max(later), 2) if later else None,
            "max_excess_over_bound_s": round(max(d.emitted - max(d.end + bound, first) for d in live), 4)
            if live else None}


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), and how many this process sees."""
    import os
    import platform

    try:
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
    except OSError:
        names = []
    return f"{names[0] if names else platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def _ts_bytes(seconds: float, fps: int = 30) -> bytes:
    """An MPEG-TS (mpeg4) of the test pattern, in memory."""
    import io

    import av
    from _video_helpers import frame_image

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mpegts") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for k in range(int(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame_image(k, 160, 120), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _colour_motion_detector():
    from rdfa_s6.api import Detector
    from rdfa_s6.config import load_config
    from rdfa_s6.models import build_detector
    from rdfa_s6.video.backbones import build_backbone

    bb = build_backbone("colour-motion")
    cfg = load_config("demo")
    torch.manual_seed(0)
    return Detector(build_detector(cfg, input_dim=bb.feature_dim, num_classes=5), cfg, precision="fp32",
                    extraction={"backbone": "colour-motion", "weights": "weight-free", "feature_dim": bb.feature_dim,
                                "fps": None, "stride": 4, "window": 16, "dtype": "float32", "precision": "fp32"})


def _serve(data: bytes, loops: int = 1, seconds: float = 0.0) -> str:
    """Serve ``data`` ``loops`` times to the first client of a 127.0.0.1 socket; with ``seconds``, paced evenly
    over that long (a live source at real-time pace). Returns the tcp:// URL."""
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            for _ in range(loops):
                if not seconds:
                    conn.sendall(data)
                    continue
                pieces = max(1, int(seconds * 10))
                size = -(-len(data) // pieces)
                start = time.perf_counter()
                for i in range(pieces):
                    conn.sendall(data[i * size : (i + 1) * size])
                    time.sleep(max(0.0, start + (i + 1) * seconds / pieces - time.perf_counter()))
        sock.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def live_delay(seconds: float) -> Dict[str, Any]:
    """``watch`` (colour-motion) on a source served at real-time pace: wall-clock delay of each detection
    reported before the end, from the moment its end was served (start + end s) to its report."""
    from rdfa_s6.stream.watch import WatchOptions, watch

    det = _colour_motion_detector()
    url = _serve(_ts_bytes(seconds), seconds=seconds)
    t0 = time.perf_counter()
    live: List[Any] = []
    lag: List[float] = []

    def emit(d) -> None:
        now = time.perf_counter() - t0
        if now < seconds - 1.0:  # reported while the source still ran
            live.append(d)
            lag.append(now - d.emitted)  # wall time of the report minus the stream time it was final at

    summary = watch(det, url, WatchOptions(), emit)
    return {"stream_seconds": round(summary.stream_seconds, 1), **_delays(live, summary.delay_bound,
                                                                          summary.first_report),
            "max_processing_lag_s": round(max(lag), 2) if lag else None}


def watch_memory(loops: int) -> Dict[str, Any]:
    """Peak RSS of ``watch`` (colour-motion, demo-width random detector) on a 20 s video served in a loop over
    TCP ``loops`` times, after the first tenth of the stream and at its end."""
    import resource

    from rdfa_s6.stream.watch import WatchOptions, watch

    det = _colour_motion_detector()
    url = _serve(_ts_bytes(20.0), loops=loops)
    total = 20.0 * loops
    peaks: Dict[str, float] = {}

    def progress(seconds: float) -> None:
        for name, part in (("tenth", 0.1), ("half", 0.5)):
            if seconds >= total * part and name not in peaks:
                peaks[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    summary = watch(det, url, WatchOptions(), lambda d: None, progress)
    end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"stream_seconds": round(summary.stream_seconds, 1), "wall_seconds": round(summary.wall_seconds, 1),
            "realtime_factor": round(summary.stream_seconds / summary.wall_seconds, 1),
            "peak_rss_mb_after_a_tenth": round(peaks.get("tenth", float("nan")), 1),
            "peak_rss_mb_after_half": round(peaks.get("half", float("nan")), 1),
            "peak_rss_mb_at_end": round(end, 1)}


def main(argv: List[str]) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from rdfa_s6.api import Detector

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("demo_out/run"))
    parser.add_argument("--data", type=Path, default=Path("demo_out/data"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the demo data (its generator's patterns)")
    parser.add_argument("--long-videos", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=37, help="rows per push")
    parser.add_argument("--feature-seconds", type=float, default=3600.0)
    parser.add_argument("--video-seconds", type=float, default=90.0, help="watch: colour-motion video length")
    parser.add_argument("--r3d-seconds", type=float, default=10.0, help="watch: r3d_18 video length")
    parser.add_argument("--live-seconds", type=float, default=60.0, help="live: seconds served at real-time pace")
    parser.add_argument("--parts", default="memory,quality,features,colour-motion,r3d_18,live",
                        help="which measurements (comma-separated): memory (first: it reads the process's peak "
                        "RSS), quality, features, colour-motion, r3d_18, live")
    parser.add_argument("--loops", type=int, default=90, help="memory: times the 20 s video is served (90: 30 min)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    det = Detector.from_pretrained(args.model, device="cpu", precision="fp32")
    report: Dict[str, Any] = {"cpu": cpu_name(), "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        parts = args.parts.split(",")
        if "memory" in parts:
            report["watch_memory"] = watch_memory(args.loops)
        if "quality" in parts:
            report["demo_test_split"] = quality(det, args.data, "test", args.chunk)
            data = long_synthetic(Path(tmp) / "long", det.config.data.max_seq_len, args.seed, args.long_videos)
            report["synthetic_8x"] = quality(det, data, "test", args.chunk)
            data = concatenated_synthetic(Path(tmp) / "concat", det.config.data.max_seq_len, args.seed,
                                          args.long_videos)
            report["concatenated_8x"] = quality(det, data, "test", args.chunk)
        if "features" in parts:
            report["features"] = feature_speed(det, args.feature_seconds, 225)
        if "colour-motion" in parts:
            report["watch_colour_motion"] = watch_speed("colour-motion", args.video_seconds, Path(tmp))
        if "r3d_18" in parts:
            report["watch_r3d_18"] = watch_speed("r3d_18", args.r3d_seconds, Path(tmp))
        if "live" in parts:
            report["live"] = live_delay(args.live_seconds)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
