"""The synthetic generator, the dataset and ``prepare_data`` (docs/model.md §2.1-2.7 end to end in memory).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rdfa_s6.config.schema import DataConfig
from rdfa_s6.data.annotations import load_annotations
from rdfa_s6.data.coords import seconds_to_steps
from rdfa_s6.data.dataset import Collate, TALDataset, split_records
from rdfa_s6.data.features import FeatureReader, feature_reader
from rdfa_s6.data.prepare import prepare_data
from rdfa_s6.data.synth import FEAT_STRIDE, FPS, NUM_FRAMES, SynthSpec, generate
from rdfa_s6.errors import DataError

# --------------------------------------------------------------------------------------------------------------
# Synthetic data, dataset, prepare_data
# --------------------------------------------------------------------------------------------------------------
SMALL = SynthSpec(train_videos=6, val_videos=2, test_videos=3, num_classes=3, dim=16, min_len=40, max_len=70,
                  action_len=(4, 12), seed=3)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    assert generate(root, SMALL) == {"training": 6, "validation": 2, "test": 3}
    return root


def _cfg(**kw) -> DataConfig:
    base = dict(file_ext=".npy", train_split="training", test_split="test", max_seq_len=48)
    base.update(kw)
    return DataConfig(**base)


def test_synth_dataset_loads_and_segments_fit(synth_root):
    ann = load_annotations(synth_root / "annotations.json")
    assert len(ann.videos) == 11 and set(ann.subsets()) == {"training", "validation", "test"}
    reader = FeatureReader(synth_root / "features", ext=".npy", input_dim=SMALL.dim)
    total = 0
    for rec in ann.videos.values():
        feats = reader.load(rec.video_id)
        t = feats.shape[1]
        assert feats.shape[0] == SMALL.dim and SMALL.min_len <= t <= SMALL.max_len
        # the duration covers the T clips: at least up to the last clip's centre, at most T whole clips
        assert rec.fps == FPS
        assert ((t - 1) * FEAT_STRIDE + NUM_FRAMES / 2) / FPS - 1e-3 <= rec.duration
        assert rec.duration <= (t * FEAT_STRIDE + NUM_FRAMES) / FPS + 1e-3
        assert np.all(rec.segments <= rec.duration + 1e-9)
        steps = seconds_to_steps(rec.segments, rec.fps, FEAT_STRIDE, NUM_FRAMES)
        # seconds are rounded to 1 ms: at most 0.0005 * 30 / 4 = 0.00375 steps off the integer grid
        assert np.all(steps >= -0.00375) and np.all(steps <= t)
        np.testing.assert_allclose(steps, np.round(steps), atol=0.00375)
        assert np.all(steps[:, 1] - steps[:, 0] >= SMALL.action_len[0] - 0.01)
        assert np.all(rec.labels < SMALL.num_classes)
        total += len(rec.labels)
    assert total > 0


def test_dataset_training_crops_are_reproducible(synth_root):
    ann = load_annotations(synth_root / "annotations.json")
    cfg = _cfg()
    records = split_records(ann, "training")
    reader = feature_reader(cfg, synth_root / "features", SMALL.dim)

    def samples(epoch, seed=5):
        ds = TALDataset(records, reader, cfg, training=True, seed=seed)
        ds.set_epoch(epoch)
        return [ds[i] for i in range(len(ds))]

    first, again, later = samples(1), samples(1), samples(2)
    for a, b in zip(first, again):
        torch.testing.assert_close(a["feats"], b["feats"])
        torch.testing.assert_close(a["segments"], b["segments"])
        assert torch.equal(a["labels"], b["labels"])
    differs = any(a["feats"].shape != b["feats"].shape or not torch.equal(a["feats"], b["feats"])
                  for a, b in zip(first, later))
    assert differs
    for s in first + later:
        t = s["feats"].shape[1]
        assert t <= cfg.max_seq_len and s["feats"].dtype == torch.float32
        assert s["segments"].dtype == torch.float32 and s["labels"].dtype == torch.int64
        assert len(s["segments"]) == len(s["labels"])
        if len(s["segments"]):
            assert (s["segments"] >= -0.01).all() and (s["segments"] <= t).all()
        assert s["meta"].feat_stride == 4.0 and s["meta"].num_frames == 16.0 and s["meta"].fps == 30.0
    batch = Collate(cfg.max_seq_len, 32, training=True)(first[:2])
    assert batch.feats.shape == (2, SMALL.dim, cfg.max_seq_len) and batch.mask.dtype == torch.bool
    assert batch.mask[0, 0].sum() == first[0]["feats"].shape[1]
    assert batch.meta == [first[0]["meta"], first[1]["meta"]] and batch.segments[1] is first[1]["segments"]


def test_dataset_inference_samples_are_whole_videos(synth_root):
    ann = load_annotations(synth_root / "annotations.json")
    cfg = _cfg()
    reader = feature_reader(cfg, synth_root / "features")
    ds = TALDataset(split_records(ann, "test"), reader, cfg, training=False)
    for i, rec in enumerate(ds.records):
        s = ds[i]
        assert s["meta"].video_id == rec.video_id
        torch.testing.assert_close(s["feats"], reader.load(rec.video_id))
        expected = seconds_to_steps(rec.segments, 30.0, 4.0, 16.0).astype(np.float32)
        np.testing.assert_allclose(s["segments"].numpy(), expected.reshape(-1, 2))


def test_prepare_data_infers_dim_and_classes(synth_root):
    prepared = prepare_data(_cfg(), synth_root, ["training", "test"])
    data = json.loads((synth_root / "annotations.json").read_text())
    ids = {a["label_id"] for v in data["database"].values() for a in v["annotations"]}
    assert prepared.input_dim == SMALL.dim
    assert prepared.num_classes == max(ids) + 1
    assert prepared.reader.input_dim == SMALL.dim
    assert set(prepared.label_names) == set(range(prepared.num_classes))
    agnostic = prepare_data(_cfg(class_agnostic=True), synth_root, ["training"])
    assert agnostic.num_classes == 1 and agnostic.label_names == {0: "action"}


def test_prepare_data_missing_feature_file_names_the_video(tmp_path):
    generate(tmp_path, SMALL)
    (tmp_path / "features" / "synth_test_0001.npy").unlink()
    with pytest.raises(DataError, match="synth_test_0001"):
        prepare_data(_cfg(), tmp_path, ["training", "test"])
    # a split that does not need the missing file is fine
    prepare_data(_cfg(), tmp_path, ["training"])


def test_prepare_data_empty_split_lists_subsets(synth_root):
    with pytest.raises(DataError) as info:
        prepare_data(_cfg(), synth_root, ["training", "Validation_set"])
    msg = str(info.value)
    assert "'Validation_set'" in msg
    for subset in ("training (6)", "validation (2)", "test (3)"):
        assert subset in msg, msg
    with pytest.raises(DataError, match="data-root"):
        prepare_data(_cfg(), None, ["training"])
    with pytest.raises(DataError, match="not found"):
        prepare_data(_cfg(), synth_root / "nowhere", ["training"])
