"""Training-throughput benchmark: iterations/s and peak memory of ``rdfa-s6 train``'s loop, per preset.

    python benchmarks/train.py [--iters N] [--warmup 1] [--threads N] [--presets demo,thumos14]

Each preset runs in a fresh subprocess (so that its peak resident memory, ``ru_maxrss``, is its own) on data
written to a temporary folder:

- ``demo``: the built-in synthetic dataset (C=32, 5 classes, videos of 96-256 steps), the preset as is
  (batch 4, padded to 256 steps).
- ``thumos14``: random features of THUMOS-14 size: batch 2, T=2304 (every video exactly ``max_seq_len``
  steps), C=3200, 20 classes, a few actions per video; the preset as is except ``data.file_ext=.npy``.

Both use ``train.num_workers=0`` (the loading is then part of the measured time and the memory is one
process's). A measured iteration is the trainer's own ``train_step`` (forward, label assignment, losses,
backward, clipping, AdamW, EMA) plus fetching its batch; ``--warmup`` iterations are run first and not timed.
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
from typing import Dict, List

import numpy as np

THUMOS = {"T": 2304, "C": 3200, "classes": 20, "fps": 30.0}


def make_demo_data(root: Path, videos: int) -> List[str]:
    from rdfa_s6.data.synth import SynthSpec, generate

    generate(root, SynthSpec(train_videos=videos, val_videos=2, test_videos=0, seed=0))
    return ["train.num_workers=0"]


def make_thumos_data(root: Path, videos: int) -> List[str]:
    """``videos`` training videos of random [T, C] features (two distinct files, the rest symlinks)."""
    rng = np.random.default_rng(0)
    (root / "features").mkdir(parents=True)
    T, C, fps = THUMOS["T"], THUMOS["C"], THUMOS["fps"]
    duration = ((T - 1) * 4 + 16) / fps
    database = {}
    for i in range(videos):
        vid = f"video_validation_{i:07d}"
        path = root / "features" / f"{vid}_spatial_feature.npy"
        if i < 2:
            np.save(path, rng.standard_normal((T, C), dtype=np.float32))
        else:
            path.symlink_to(root / "features" / f"video_validation_{i % 2:07d}_spatial_feature.npy")
        actions = []
        for _ in range(int(rng.integers(2, 8))):
            start = float(rng.uniform(0, duration - 20))
            actions.append({"label": f"class_{(i + len(actions)) % THUMOS['classes']}",
                            "label_id": (i + len(actions)) % THUMOS["classes"],
                            "segment": [round(start, 2), round(start + float(rng.uniform(1, 20)), 2)]})
        database[vid] = {"subset": "Validation", "duration": round(duration, 3), "fps": fps, "annotations": actions}
    (root / "thumos14.json").write_text(json.dumps({"database": database}))
    return [f"data.annotation_file={root / 'thumos14.json'}", f"data.feature_dir={root / 'features'}",
            "data.file_ext=.npy", "train.num_workers=0"]


#: preset -> (data writer, batch size, default timed iterations)
DATA = {"demo": (make_demo_data, 4, 20), "thumos14": (make_thumos_data, 2, 3)}


def child(preset: str, iters: int, warmup: int, threads: int) -> Dict[str, float]:
    """Run in the subprocess: train ``warmup + iters`` iterations, return the measurements."""
    import torch

    from rdfa_s6.config import load_config
    from rdfa_s6.train.loop import Trainer, TrainOptions
    from rdfa_s6.train.randomness import epoch_batches

    if threads:
        torch.set_num_threads(threads)
    writer, batch, _ = DATA[preset]
    with tempfile.TemporaryDirectory(prefix=f"bench_train_{preset}_") as tmp:
        root = Path(tmp)
        overrides = writer(root / "data", batch * (iters + warmup))
        cfg = load_config(preset, overrides=overrides + ["data.val_split=null"])
        trainer = Trainer(cfg, TrainOptions(out_dir=root / "run", data_root=root / "data", progress=False))
        rss_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tc = trainer.cfg.train
        trainer.train_set.set_epoch(1)
        loader = iter(trainer._loader(epoch_batches(len(trainer.train_set), tc.batch_size, tc.seed, 1)))
        times = []
        for i in range(warmup + iters):
            start = time.perf_counter()
            trainer.train_step(next(loader))
            if i >= warmup:
                times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    return {"preset": preset, "batch": tc.batch_size, "T": trainer.cfg.data.max_seq_len,
            "C": trainer.data.input_dim, "params": sum(p.numel() for p in trainer.model.parameters()),
            "threads": torch.get_num_threads(), "s_per_it": seconds, "it_per_s": 1.0 / seconds,
            "rss_setup_mb": rss_setup / 1024, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="demo,thumos14")
    parser.add_argument("--iters", type=int, default=0,
                        help="timed iterations, median reported (0: 20 for demo, 3 for thumos14)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.iters, args.warmup, args.threads)))
        return
    rows = []
    for preset in args.presets.split(","):
        if preset not in DATA:
            sys.exit(f"unknown preset {preset!r}; this benchmark knows {', '.join(DATA)}")
        iters = args.iters or DATA[preset][2]
        cmd = [sys.executable, __file__, "--child", preset, "--iters", str(iters), "--warmup", str(args.warmup),
               "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{preset}: the benchmark failed:\n{proc.stderr[-3000:]}")
        rows.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "iters": iters})
    load = os.getloadavg()[0]
    print(f"training throughput on {os.cpu_count()} CPUs (load average {load:.1f} at the end); median of the timed "
          f"iterations after {args.warmup} warm-up")
    print("| preset | batch x T x C | params | threads | timed its | s/it | it/s | RSS after setup (MiB) "
          "| peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['batch']} x {r['T']} x {r['C']} | {r['params'] / 1e6:.2f} M | {r['threads']} | "
              f"{r['iters']} | {r['s_per_it']:.3f} | {r['it_per_s']:.3f} | {r['rss_setup_mb']:.0f} | "
              f"{r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
