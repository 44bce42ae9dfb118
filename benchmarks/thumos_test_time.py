"""Wall time of ``rdfa-s6 test`` on the THUMOS-14 test set, with synthetic features of the real lengths.

    python benchmarks/thumos_test_time.py ANNOTATIONS.json [--every 1] [--precisions fp32,auto]

Real InternVideo2 features are not needed: for every test video of the annotation file (212 for THUMOS-14)
it makes random [3200, T] features with T = duration x fps / 4 (the preset's feature stride) and runs what
``rdfa-s6 test`` runs per video: padding, the ``thumos14`` detector's forward (random initialisation, the
converted official model's shapes) and the post-processing (decoding, soft-NMS, seconds), batch size 1.
Data loading from disk and the mAP evaluation (~0.2 s, see benchmarks/evaluator.py) are not included.
``--every k`` times every k-th video only (sorted by length, so the sample spans short and long ones) and
extrapolates to the whole set by the number of feature steps; the output says which.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from rdfa_s6 import build_detector, load_config
from rdfa_s6.data.transforms import pad_batch
from rdfa_s6.infer.predictor import predict_batch
from rdfa_s6.precision import resolve_precision


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("annotations", type=Path)
    parser.add_argument("--subset", default="test")
    parser.add_argument("--every", type=int, default=1, help="time every k-th video (by length), extrapolate")
    parser.add_argument("--precisions", default="fp32,auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config("thumos14")
    model = build_detector(cfg, cfg.data.input_dim, cfg.data.num_classes).eval()
    database = json.loads(args.annotations.read_text())["database"]
    videos = sorted(((vid, e) for vid, e in database.items() if e["subset"].lower() == args.subset.lower()),
                    key=lambda item: item[1]["duration"])
    steps = {vid: max(1, int(e["duration"] * e.get("fps", 30.0) / cfg.data.feat_stride)) for vid, e in videos}
    sample = videos[:: args.every]
    names = {i: f"class_{i}" for i in range(cfg.data.num_classes)}
    gen = torch.Generator().manual_seed(0)
    feats = {vid: torch.randn(cfg.data.input_dim, steps[vid], generator=gen) for vid, _ in sample}
    total_steps, sample_steps = sum(steps.values()), sum(steps[vid] for vid, _ in sample)
    mean_steps = total_steps / len(videos)
    print(f"{len(videos)} {args.subset} videos, {total_steps} feature steps in all (mean {mean_steps:.0f},"
          f" max {max(steps.values())}); timing {len(sample)} of them ({sample_steps} steps), "
          f"{torch.get_num_threads()} threads")
    for requested in args.precisions.split(","):
        precision = resolve_precision(requested)
        start = time.perf_counter()
        for vid, entry in sample:
            batch, mask = pad_batch([feats[vid]], cfg.data.max_seq_len, model.max_div_factor, training=False)
            meta = {"video_id": vid, "fps": entry.get("fps", 30.0), "feat_stride": cfg.data.feat_stride,
                    "num_frames": cfg.data.num_frames, "duration": entry["duration"]}
            with torch.no_grad():
                predict_batch(model, {"feats": batch, "mask": mask, "meta": [meta]}, cfg.infer, names,
                              precision=precision)
        seconds = time.perf_counter() - start
        whole = seconds * total_steps / sample_steps
        print(f"--precision {requested} ({precision}): {seconds:.1f} s for the sample; "
              f"{'measured' if len(sample) == len(videos) else 'extrapolated'} whole set {whole:.0f} s "
              f"({whole / 60:.1f} min)")


if __name__ == "__main__":
    main()
