"""Feature extraction throughput: decoding alone, the backbone alone, both overlapped; fp32 vs bf16; peak memory;
FLOPs per clip of the transformers video families.

    python benchmarks/extract.py [--backbones colour-motion,hf:videomae-base,r3d_18,...] [--clips 4] [--threads 2]
    python benchmarks/extract.py --flops      # FLOPs per clip of VideoMAE and V-JEPA 2 sizes only (seconds)

The default run (about 3 minutes on 2 cores) compares ``colour-motion`` with ``hf:videomae-base``: a random
VideoMAE-Base (``VideoMAEConfig()`` defaults: 16 frames of 224 x 224, 12 layers of 768) saved to a temporary
folder and loaded through ``--backbone hf:``, then prints the FLOPs table. It starts with the CPU's model name and
whether it has ``avx512_bf16``/``amx_bf16`` (fast bfloat16).

For each backbone (random weights: the timing does not depend on the weight values), in its own process:
a synthetic H.264 video of exactly ``--clips`` clips (W = 16 frames, S = 4, 30 fps, ``--size``-pixel square
frames of moving shapes) is written, then

- ``decode``: PyAV decoding + resize/crop + cutting the clips (what a worker process does), alone;
- ``backbone fp32`` / ``backbone bf16``: the backbone on the pre-decoded clips (batches of 8), after one warm-up;
- ``end-to-end``: ``rdfa_s6.video.extract.extract`` with one decoding worker process (decoding overlapped with
  the backbone), fp32, files written.

Each backbone-only measurement times pairs of clips until all ``--clips`` are done or ``--budget`` seconds are
spent (the number of clips timed is shown); the end-to-end run always processes all clips.

FLOPs per clip are counted by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2) over one
forward of the model built on the ``meta`` device (shapes only, no arithmetic, so the giant sizes cost nothing);
for the timed VideoMAE-Base the count on a real clip is shown too.

Throughput is in video-seconds per wall-second, counting ``clips * S / fps`` seconds of video (the steady-state
rate of a long video). Ratios are taken within the same run: ``e2e / backbone`` (target <= 1.15: decoding is
hidden behind the backbone) and ``bf16 speed-up`` (target >= 2 on CPUs with AMX, or on CUDA). ``bf16 rel err``
is ||f_bf16 - f_fp32|| / ||f_fp32|| over the clips' features. Peak memory is the process's maximum RSS (the
decoding worker's in parentheses).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = "colour-motion,hf:videomae-base"
FPS, W, S = 30, 16, 4
#: backbone names of this benchmark that stand for a random transformers model built here: name -> family
HF_RANDOM = {"hf:videomae-base": "videomae"}
#: the sizes of the FLOPs table: (label, family, config overrides, where the numbers come from)
FAMILIES = [
    ("VideoMAE-S 16x224", "videomae", dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                           intermediate_size=1536), "MCG-NJU/videomae-small-finetuned-kinetics"),
    ("VideoMAE-B 16x224", "videomae", {}, "VideoMAEConfig() defaults = MCG-NJU/videomae-base"),
    ("VideoMAE-L 16x224", "videomae", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                           intermediate_size=4096), "MCG-NJU/videomae-large"),
    ("VideoMAE-H 16x224", "videomae", dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16,
                                           intermediate_size=5120), "MCG-NJU/videomae-huge-finetuned-kinetics"),
    ("V-JEPA 2 ViT-L 64x256", "vjepa2", {}, "VJEPA2Config() defaults = facebook/vjepa2-vitl-fpc64-256"),
    ("V-JEPA 2 ViT-L 16x256", "vjepa2", dict(frames_per_clip=16), "the same model on 16-frame clips"),
    ("V-JEPA 2 ViT-H 64x256", "vjepa2", dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16),
     "facebook/vjepa2-vith-fpc64-256"),
    ("V-JEPA 2 ViT-g 64x256", "vjepa2", dict(hidden_size=1408, num_hidden_layers=40, num_attention_heads=22,
                                             mlp_ratio=48 / 11), "facebook/vjepa2-vitg-fpc64-256"),
]


def _random_hf_folder(name: str, tmp: Path) -> str:
    """``hf:<folder>`` of a random model of the family ``name`` stands for, saved under ``tmp``."""
    from rdfa_s6.video.hf import write_random_model

    folder = tmp / name.split(":", 1)[1]
    write_random_model(folder, HF_RANDOM[name], seed=0)
    return f"hf:{folder}"


def count_flops(family: str, overrides: dict) -> float:
    """FLOPs of one clip through ``family``'s model (FlopCounterMode on the meta device; multiply-add = 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from rdfa_s6.video.hf import import_transformers

    tf = import_transformers()
    with torch.device("meta"):
        if family == "videomae":
            cfg = tf.VideoMAEConfig(**overrides)
            model, frames, size, key, extra = tf.VideoMAEModel(cfg), cfg.num_frames, cfg.image_size, "pixel_values", {}
        else:
            cfg = tf.VJEPA2Config(**overrides)
            model, frames, size = tf.VJEPA2Model(cfg), cfg.frames_per_clip, cfg.crop_size
            key, extra = "pixel_values_videos", {"skip_predictor": True}
        x = torch.zeros(1, frames, 3, size, size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**{key: x}, **extra)
    return float(counter.get_total_flops())


def flops_table() -> None:
    print("\n| model | GFLOPs per clip | configuration |\n|---|---|---|", flush=True)
    for label, family, overrides, source in FAMILIES:
        print(f"| {label} | {count_flops(family, overrides) / 1e9:,.0f} | {source} |", flush=True)


def cpu_line() -> str:
    from rdfa_s6.cpuinfo import cpu_flags, cpu_model

    flags = cpu_flags() or frozenset()
    return (f"CPU: {cpu_model()}; avx512_bf16: {'yes' if 'avx512_bf16' in flags else 'no'}, "
            f"amx_bf16: {'yes' if 'amx_bf16' in flags else 'no'}; {os.cpu_count()} logical CPUs")


def one(name: str, clips: int, size: int, threads: int, budget: float, bf16: bool) -> dict:
    import numpy as np
    import torch

    from rdfa_s6.video.backbones import build_backbone
    from rdfa_s6.video.extract import ClipStream, ExtractOptions, FeatureEncoder, extract, resolve_precision
    from rdfa_s6.video.synth import VideoSynthSpec, render_video, write_mp4

    torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(prefix="rdfa-extract-bench-"))
    n_frames = (clips - 1) * S + W
    frames, _ = render_video(n_frames, VideoSynthSpec(size=size, action_frames=(8, 16)), np.random.default_rng(0))
    video = tmp / "bench.mp4"
    write_mp4(video, frames, FPS)
    video_s = clips * S / FPS
    spec = _random_hf_folder(name, tmp) if name in HF_RANDOM else name
    bb = build_backbone(spec, random_init=not spec.startswith("hf:") and name != "colour-motion")
    stream = ClipStream([("bench", video)], bb.short_side, bb.crop, W, S, 8, None)
    t = time.perf_counter()
    batches = [p for kind, _, p in stream if kind == "clips"]
    decode_s = time.perf_counter() - t
    out = {"backbone": name, "clips": clips, "crop": bb.crop, "decode": video_s / decode_s,
           "decode_clips_s": clips / decode_s}
    feats = {}
    clip_list = torch.cat(batches)
    for precision in ("fp32", "bf16") if bf16 else ("fp32",):
        enc = FeatureEncoder(bb, torch.device("cpu"), precision)
        if precision == "fp32" and spec.startswith("hf:"):  # the warm-up's FLOPs check the meta-device count
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                enc(clip_list[:1])
            out["gflops_real_clip"] = counter.get_total_flops() / 1e9
        else:
            enc(clip_list[:1])  # warm-up
        done, t = [], time.perf_counter()
        for i in range(0, len(clip_list), 2):  # pairs of clips until all are done or the budget is spent
            done.append(enc(clip_list[i : i + 2]))
            if time.perf_counter() - t > budget:
                break
        n = sum(len(f) for f in done)
        feats[precision] = torch.cat(done)
        out[f"backbone_{precision}"] = n * S / FPS / (time.perf_counter() - t)
        out[f"clips_{precision}"] = n
        out[f"clips_s_{precision}"] = n / (time.perf_counter() - t)
    if bf16:
        out["bf16_speedup"] = out["backbone_bf16"] / out["backbone_fp32"]
        n = min(len(feats["fp32"]), len(feats["bf16"]))
        out["bf16_rel_err"] = float((feats["bf16"][:n] - feats["fp32"][:n]).norm() / feats["fp32"][:n].norm())
    out["decode_over_backbone"] = out["backbone_fp32"] / out["decode"]  # time ratio, per clip
    opts = ExtractOptions(out=tmp / "out", backbone=spec, workers=1, device="cpu", precision="fp32")
    t = time.perf_counter()
    extract([video], opts, backbone=bb)
    out["e2e"] = video_s / (time.perf_counter() - t)
    out["e2e_clips_s"] = clips / (video_s / out["e2e"])
    out["e2e_over_backbone"] = out["backbone_fp32"] / out["e2e"]  # time ratio
    out["auto_precision"] = resolve_precision("auto", torch.device("cpu"))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["worker_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def probe(threads: int) -> None:
    """fp32 vs bf16 autocast on one r3d_18 clip of 8 x 56 x 56 (median of 3 after a warm-up)."""
    import statistics

    import torch

    from rdfa_s6.precision import cpu_bf16_support
    from rdfa_s6.video.backbones import build_backbone
    from rdfa_s6.video.extract import FeatureEncoder

    torch.set_num_threads(threads)
    bb = build_backbone("r3d_18", random_init=True)
    clip = torch.randint(0, 256, (1, 8, 56, 56, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    times, feats = {}, {}
    for precision in ("fp32", "bf16"):
        enc = FeatureEncoder(bb, torch.device("cpu"), precision)
        feats[precision] = enc(clip)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            enc(clip)
            runs.append(time.perf_counter() - t)
        times[precision] = statistics.median(runs)
    err = float((feats["bf16"] - feats["fp32"]).norm() / feats["fp32"].norm())
    print(f"r3d_18, one 8x56x56 clip, {threads} threads, fast bf16: {cpu_bf16_support().fast}: "
          f"fp32 {1000 * times['fp32']:.0f} ms, "
          f"bf16 {1000 * times['bf16']:.0f} ms (bf16 speed-up {times['fp32'] / times['bf16']:.2f}x), "
          f"bf16 rel err {err:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default=DEFAULT)
    parser.add_argument("--clips", type=int, default=3, help="clips per measurement (the video's length)")
    parser.add_argument("--size", type=int, default=224, help="source video frame size, pixels (square)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds per backbone-only measurement: pairs of clips are timed until all are done "
                        "or this is spent (bf16 without AMX is slow)")
    parser.add_argument("--bf16", choices=["auto", "yes", "no"], default="auto",
                        help="time the backbones in bf16 too; auto = only on CPUs with AMX (elsewhere bf16 is "
                        "emulated and a single clip can take minutes: see --probe)")
    parser.add_argument("--probe", action="store_true",
                        help="only compare fp32 and bf16 on one small r3d_18 clip (8 x 56 x 56), which is quick "
                        "even without AMX")
    parser.add_argument("--flops", action="store_true", help="only the FLOPs table")
    parser.add_argument("--no-flops", action="store_true", help="no FLOPs table")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bf16 == "auto":
        from rdfa_s6.precision import cpu_bf16_support

        args.bf16 = "yes" if cpu_bf16_support().fast else "no"
    if not args.one:
        print(cpu_line(), flush=True)
    if args.flops:
        flops_table()
        return
    if args.probe:
        probe(args.threads)
        return
    if args.one:
        print(json.dumps(one(args.one, args.clips, args.size, args.threads, args.budget, args.bf16 == "yes")))
        return
    print(f"{args.clips} clips of {W} frames every {S} at {FPS} fps from {args.size}px H.264; {args.threads} threads; "
          f"throughput in video-s per wall-s", flush=True)
    head = ["backbone", "crop", "decode", "bb fp32 (clips)", "bb bf16 (clips)", "bf16 speed-up", "bf16 rel err",
            "e2e fp32", "e2e/bb time", "clips/s: decode, bb fp32, e2e", "decode/bb time", "peak RSS MB (worker)"]
    print("| " + " | ".join(head) + " |\n" + "|---" * len(head) + "|", flush=True)
    for name in args.backbones.split(","):
        res = subprocess.run([sys.executable, __file__, "--one", name, "--clips", str(args.clips), "--size",
                              str(args.size), "--threads", str(args.threads), "--budget", str(args.budget),
                              "--bf16", args.bf16],
                             check=False, capture_output=True, text=True, env=dict(os.environ))
        if res.returncode:
            print(f"| {name} | failed: {res.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        bf = (f"{r['backbone_bf16']:.2f} ({r['clips_bf16']}) | {r['bf16_speedup']:.2f}x | {r['bf16_rel_err']:.1e}"
              if "backbone_bf16" in r else "not timed (no AMX) | - | -")
        print(f"| {name} | {r['crop']} | {r['decode']:.3g} | {r['backbone_fp32']:.3g} ({r['clips_fp32']}) | {bf} | "
              f"{r['e2e']:.3g} | {r['e2e_over_backbone']:.2f} | "
              f"{r['decode_clips_s']:.3g}, {r['clips_s_fp32']:.3g}, {r['e2e_clips_s']:.3g} | "
              f"{r['decode_over_backbone']:.3g} | {r['peak_rss_mb']:.0f} ({r['worker_rss_mb']:.0f}) |", flush=True)
        if "gflops_real_clip" in r:  # CPU's fused attention kernel is not one FlopCounterMode counts
            print(f"  ({name}: {r['gflops_real_clip']:.1f} GFLOPs counted on one real clip, the attention matmuls of "
                  f"CPU's fused scaled_dot_product_attention not included)", flush=True)
    print(f"auto precision here: {r.get('auto_precision', '?')} (bf16 only on CUDA or CPUs with AMX or AVX512-BF16)")
    if not args.no_flops:
        flops_table()


if __name__ == "__main__":
    main()
