"""Latent bugs found while giving every rule one home (issue 25), each with the test that failed before its fix.
(The others: the demo's figures and test precision in test_demo_pipeline.py, the once-per-batch bf16 warning in
test_precision.py.)"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rdfa_s6.api import Detector
from rdfa_s6.checkpoint import save_checkpoint
from rdfa_s6.config import load_config
from rdfa_s6.models import build_detector

TINY = ["model.embed_dim=8", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=8",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=32"]


@pytest.fixture
def tiny_cfg():
    torch.manual_seed(0)
    return load_config("demo", TINY)


def test_save_checkpoint_refuses_reserved_metadata_before_writing_anything(tmp_path, tiny_cfg):
    """It used to write the weights and the config, then refuse: a half-written checkpoint folder."""
    folder = tmp_path / "ck"
    with pytest.raises(ValueError, match="may not set"):
        save_checkpoint(folder, build_detector(tiny_cfg, input_dim=4, num_classes=3), tiny_cfg,
                        meta={"format": "mine", "epoch": 1})
    assert not folder.exists() or not any(folder.iterdir())


def test_predict_video_fuses_external_class_scores(monkeypatch, tiny_cfg):
    """``predict`` fused ``ext_scores``; ``predict_video`` had no way to: the video path never fused."""
    from rdfa_s6.video import reproduce

    feats = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)
    monkeypatch.setattr(reproduce, "backbone_for", lambda settings, weights=None, trust_remote_code=False: "backbone")
    monkeypatch.setattr(reproduce, "video_features", lambda path, settings, backbone, batch_size=8, device="cpu",
                        precision=None: (feats, {"fps": 30.0}))
    model = build_detector(tiny_cfg, input_dim=4, num_classes=1)
    extraction = {"feature_dim": 4, "stride": 4, "window": 16, "backbone": "colour-motion"}
    det = Detector(model, tiny_cfg, {0: "action"}, {0: "jump", 1: "run", 2: "swim"}, precision="fp32",
                   extraction=extraction)
    scores = [0.1, 0.7, 0.2]
    fused = det.predict_video(Path("v.mp4"), ext_scores=scores)
    assert fused == det.predict(feats, fps=30.0, stride=4, window=16, ext_scores=scores, video_id="v")
    assert fused and {d.label for d in fused} <= {"jump", "run", "swim"}
    assert {d.label for d in det.predict_video(Path("v.mp4"))} == {"action"}


def test_the_detector_network_has_its_own_name_and_inference_calls_the_module(tiny_cfg):
    """``rdfa_s6.Detector`` (the API) and the network shared a name; inference called ``forward_raw``, which
    bypassed module hooks, ``torch.compile`` and DDP wrappers."""
    import warnings

    import rdfa_s6.models
    from rdfa_s6.infer.predictor import predict_batch
    from rdfa_s6.models import DetectorNet

    model = build_detector(tiny_cfg, input_dim=4, num_classes=2).eval()
    assert type(model) is DetectorNet and "Detector" not in rdfa_s6.models.__all__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rdfa_s6.models.Detector is DetectorNet  # the deprecated alias, for one release
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(len(args)))
    from rdfa_s6.data.batch import Batch, VideoMeta

    batch = Batch(torch.randn(1, 4, 32), torch.ones(1, 1, 32, dtype=torch.bool),
                  [VideoMeta(video_id="v", fps=30.0, duration=4.0, feat_stride=4.0, num_frames=16.0)])
    predict_batch(model, batch, tiny_cfg.infer, {0: "a", 1: "b"})
    assert calls == [2]
    with torch.no_grad():
        a, b = model(batch.feats, batch.mask), model.forward_raw(batch.feats, batch.mask)
    assert all(torch.equal(x, y) for x, y in zip(a.cls_logits, b.cls_logits))


def test_evaluate_states_its_ground_truth_policy():
    """``eval.evaluate`` defaults to ``official`` while the config defaults to ``actionformer``: the default is a
    named constant, and the docstring says which is which."""
    import inspect

    from rdfa_s6.config.schema import EvalConfig
    from rdfa_s6.eval import evaluate
    from rdfa_s6.eval.groundtruth import EVALUATE_GT_POLICY

    assert inspect.signature(evaluate).parameters["gt_policy"].default == EVALUATE_GT_POLICY == "official"
    assert EvalConfig().gt_policy == "actionformer"
    assert "gt_policy=cfg.eval.gt_policy" in (evaluate.__doc__ or "")


def test_batch_orders_of_different_seeds_and_epochs_do_not_collide():
    """``seed * 1000 + epoch`` gave seed 0 epoch 1000 the order of seed 1 epoch 0."""
    from rdfa_s6.train.randomness import epoch_batches

    assert epoch_batches(64, 4, seed=0, epoch=1000) != epoch_batches(64, 4, seed=1, epoch=0)
    assert epoch_batches(64, 4, seed=7, epoch=3) == epoch_batches(64, 4, seed=7, epoch=3)


def test_keyed_seeds_are_distinct_and_fixed_width():
    """Crops were seeded with ``hash((seed, epoch, index)) & 0xFFFFFFFF``: 32 bits, and Python's tuple hash."""
    from rdfa_s6.keyed import CROPS, keyed_seed

    seeds = {keyed_seed(CROPS, s, e, i) for s in range(12) for e in range(12) for i in range(12)}
    assert len(seeds) == 12 ** 3 and max(seeds) >= 2 ** 32
    assert keyed_seed(1, 2 ** 32) != keyed_seed(2 ** 32 + 1) != keyed_seed(1, 0, 1)
    src = Path(__file__).resolve().parents[1] / "src" / "rdfa_s6"
    seeded_by_hash = [p.name for p in src.rglob("*.py") if "Random(hash(" in p.read_text(encoding="utf-8")]
    assert not seeded_by_hash

