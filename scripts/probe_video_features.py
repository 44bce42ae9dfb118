"""How well a backbone's clip features separate the synthetic video classes (why the video demo uses
``colour-motion``).

    python scripts/probe_video_features.py [--backbones colour-motion,r3d_18] [--per-class 12]

Renders ``--per-class`` 16-frame clips of each of the 5 classes of ``rdfa_s6.video.synth`` (random positions,
sizes and phases, on the demo's background) plus as many background-only clips, extracts one feature per clip
with each backbone (torchvision ones random-init), and prints the leave-one-out accuracy of a nearest-class-mean
classifier on standardised features (6 classes: chance = 16.7%).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from rdfa_s6.video.backbones import build_backbone
from rdfa_s6.video.synth import VideoSynthSpec, draw_action


def clips(per_class: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    spec = VideoSynthSpec(size=size)
    out, labels = [], []
    for cls in range(6):  # 5 = background
        for _ in range(per_class):
            params, offset, dur = rng.uniform(0, 1, 3), int(rng.integers(0, 60)), int(rng.integers(32, 120))
            base = rng.uniform(20, 50)
            frames = []
            for k in range(16):
                img = np.clip(base + rng.normal(0, 3, (spec.size, spec.size, 1)), 0, 255).repeat(3, 2).astype(np.uint8)
                if cls < 5:
                    step = min(offset + k, dur - 1)
                    draw_action(img, cls, step / (dur - 1), step, params)
                frames.append(img)
            out.append(np.stack(frames))
            labels.append(cls)
    return np.stack(out), np.array(labels)


def loo_nearest_mean(feats: np.ndarray, labels: np.ndarray) -> float:
    z = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    correct = 0
    for i in range(len(z)):
        keep = np.arange(len(z)) != i
        means = np.stack([z[keep & (labels == c)].mean(0) for c in range(6)])
        correct += int(np.argmin(((means - z[i]) ** 2).sum(1)) == labels[i])
    return correct / len(z)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default="colour-motion,r3d_18")
    parser.add_argument("--per-class", type=int, default=12)
    args = parser.parse_args()
    for name in args.backbones.split(","):
        bb = build_backbone(name, random_init=name != "colour-motion")
        video, labels = clips(args.per_class, 64)
        x = torch.from_numpy(video)
        # the demo videos are 64 px: scale them to the backbone's crop as decoding would
        x = torch.nn.functional.interpolate(x.permute(0, 4, 1, 2, 3).float(), size=(16, bb.crop, bb.crop),
                                            mode="trilinear", align_corners=False)
        x = x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 4, 1)
        with torch.no_grad():
            feats = torch.cat([bb.module(bb.preprocess(x[i : i + 8])) for i in range(0, len(x), 8)]).numpy()
        print(f"{name}: leave-one-out nearest-class-mean accuracy {100 * loo_nearest_mean(feats, labels):.1f}% "
              f"({len(labels)} clips, 6 classes, {feats.shape[1]}-d)")


if __name__ == "__main__":
    main()
