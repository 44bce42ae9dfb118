"""The upstream datasets (issue 12, items 2-5): every preset's epochs and schedule length, the ground-truth
policy of each evaluation path, training-time clipping of segments beyond the features, the skip lists, and
the FineAction feature presets.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from rdfa_s6.cli import main
from rdfa_s6.config import config_to_dict, list_presets, load_config
from rdfa_s6.data.coords import steps_to_seconds
from rdfa_s6.data.dataset import Collate, TALDataset, clip_upstream
from rdfa_s6.data.prepare import prepare_data
from rdfa_s6.data.skiplist import read_skip_list, resolve_skip_file
from rdfa_s6.errors import DataError
from rdfa_s6.infer import runner
from rdfa_s6.train.assign import assign_batch
from rdfa_s6.train.loop import Trainer, TrainOptions
from rdfa_s6.train.optim import WarmupCosine

pytestmark = pytest.mark.usefixtures("one_thread")

# ---- epochs and schedule (item 2) ----------------------------------------------------------------------------
#: preset -> (train.epochs = total epochs, warm-up epochs, cosine epochs). Upstream's `epochs` excludes the
#: warm-up and sizes the cosine (docs/model.md §4.6): ActivityNet 10, HACS and FineAction 20, THUMOS-14 45.
EPOCHS = {
    "thumos14": (50, 5, 45),
    "thumos14_paper": (50, 5, 45),
    "thumos14_videomaev2g": (50, 5, 45),
    "thumos14_videomaev2g_paper": (50, 5, 45),
    "activitynet13": (15, 5, 10),
    "hacs": (25, 5, 20),
    "fineaction": (25, 5, 20),
    "fineaction_6b": (25, 5, 20),
    "demo": (30, 2, 28),
}


def test_every_preset_is_pinned():
    assert set(EPOCHS) == set(list_presets()) == set(GROUND_TRUTH)


@pytest.mark.parametrize("name", sorted(EPOCHS))
def test_preset_total_epochs_and_cosine_length(name):
    total, warmup, cosine = EPOCHS[name]
    cfg = load_config(name)
    assert (cfg.train.epochs, cfg.train.warmup_epochs) == (total, warmup)
    iters = 8  # even, so that the cosine has a middle iteration
    schedule = WarmupCosine.for_epochs(cfg.train.lr, cfg.train.warmup_epochs, cfg.train.epochs, iters)
    assert schedule.warmup == warmup * iters and schedule.total - schedule.warmup == cosine * iters
    # the lr peaks when the warm-up ends, is half-way down half-way through the cosine, at its floor at the end
    lr, floor = cfg.train.lr, schedule.eta_min
    assert schedule(warmup * iters) == pytest.approx(lr)
    assert schedule(warmup * iters + cosine * iters // 2) == pytest.approx((lr + floor) / 2)
    assert schedule(total * iters) == pytest.approx(floor)
    assert schedule(total * iters - iters) > 10 * floor  # still decaying in the last epoch


# ---- ground truth in the metric and clipping per preset (items 3, 4) -----------------------------------------
#: preset -> (eval.gt_policy, data.gt_clip, data.skip_videos_file, number of ids in it)
GROUND_TRUTH = {
    "thumos14": ("actionformer", "none", None, 0),
    "thumos14_paper": ("actionformer", "none", None, 0),
    "thumos14_videomaev2g": ("actionformer", "none", None, 0),
    "thumos14_videomaev2g_paper": ("actionformer", "none", None, 0),
    "activitynet13": ("actionformer", "upstream", None, 0),
    "hacs": ("actionformer", "upstream", "hacs_skip.txt", 31),
    "fineaction": ("actionformer", "upstream", "fineaction_skip.txt", 3),
    "fineaction_6b": ("actionformer", "upstream", "fineaction_skip.txt", 3),
    "demo": ("actionformer", "none", None, 0),
}


@pytest.mark.parametrize("name", sorted(GROUND_TRUTH))
def test_preset_gt_policy_clipping_and_skip_list(name):
    policy, clip, skip_file, count = GROUND_TRUTH[name]
    cfg = load_config(name)
    assert (cfg.eval.gt_policy, cfg.data.gt_clip, cfg.data.skip_videos_file) == (policy, clip, skip_file)
    if skip_file:
        ids = read_skip_list(resolve_skip_file(skip_file, None))
        assert len(ids) == len(set(ids)) == count and not any(i.startswith("#") or " " in i for i in ids)


def test_skip_lists_hold_upstreams_ids():
    """Spot checks against upstream's hacs.py list (first and last of each group); FineAction ids carry v_."""
    hacs = read_skip_list(resolve_skip_file("hacs_skip.txt", None))
    assert hacs[:3] == ["eiT_NhgxphY", "26FlKZDLIIM", "u-8hXMbaO60"]
    assert hacs[3] == "-LzyV1PtJXE" and hacs[-1] == "y41wrOt1K1M"
    assert read_skip_list(resolve_skip_file("fineaction_skip.txt", None)) == ["v_00004011", "v_00006080",
                                                                              "v_00002783"]


def test_fineaction_6b_differs_from_fineaction_only_in_the_features():
    one, six = config_to_dict(load_config("fineaction")), config_to_dict(load_config("fineaction_6b"))
    assert (one["data"]["input_dim"], one["data"]["file_suffix"]) == (1408, "_spatial_pool_feature_5")
    assert (six["data"]["input_dim"], six["data"]["file_suffix"]) == (3200, "_spatial_pool_feature_6")
    for d in (one, six):
        del d["name"], d["data"]["input_dim"], d["data"]["file_suffix"]
    assert one == six


@pytest.mark.parametrize("base", ["thumos14", "thumos14_paper"])
def test_videomaev2g_presets_differ_from_theirs_only_in_the_feature_files(base):
    """VideoMAE V2's released THUMOS-14 features: <video_id>.npy, [T, 1408], 16-frame clips every 4 frames."""
    iv2, mae = config_to_dict(load_config(base)), config_to_dict(load_config(base.replace("14", "14_videomaev2g")))
    assert (iv2["data"]["input_dim"], iv2["data"]["file_suffix"], iv2["data"]["file_ext"]) == \
        (3200, "_spatial_feature", ".pt")
    assert (mae["data"]["input_dim"], mae["data"]["file_suffix"], mae["data"]["file_ext"]) == (1408, "", ".npy")
    assert (mae["data"]["feat_stride"], mae["data"]["num_frames"]) == (4, 16)
    for d in (iv2, mae):
        del d["name"], d["data"]["input_dim"], d["data"]["file_suffix"], d["data"]["file_ext"]
    assert iv2 == mae


def test_config_rejects_unknown_gt_clip_and_gt_policy():
    from rdfa_s6.errors import ConfigError

    with pytest.raises(ConfigError, match="data.gt_clip.*none, upstream"):
        load_config("thumos14", ["data.gt_clip=T"])
    with pytest.raises(ConfigError, match="eval.gt_policy.*official, actionformer"):
        load_config("thumos14", ["eval.gt_policy=lenient"])


# ---- clip_upstream against hand-computed cases (item 4) ------------------------------------------------------
def test_clip_upstream_cuts_at_the_end_of_the_last_clip():
    # T = 10 steps, stride 8 frames, clips of 16: limit = 10 + 0.5 * 16 / 8 = 11 steps
    segments = np.array([
        [2.0, 5.0],     # inside: kept as is
        [9.0, 12.0],    # 2 of 3 before 11 (0.67 >= 0.5): kept, end cut to 11
        [10.5, 14.0],   # 0.5 of 3.5 (0.14): dropped
        [11.0, 12.0],   # starts at the limit: dropped
        [10.0, 12.0],   # 1 of 2 = 0.5 >= 0.5: kept, end 11 (at T it would be 0 of 2: dropped)
        [4.0, 4.0],     # zero length: dropped
        [-0.5, 1.0],    # starts before the first clip centre: kept
    ], dtype=np.float32)
    labels = np.arange(7)
    out, lab = clip_upstream(segments, labels, 10, 8.0, 16.0, 0.5)
    np.testing.assert_array_equal(out, [[2, 5], [9, 11], [10, 11], [-0.5, 1]])
    np.testing.assert_array_equal(lab, [0, 1, 4, 6])
    assert segments[1, 1] == 12.0  # the input is not modified


def test_clip_upstream_after_resizing_cuts_half_a_step_after_the_features():
    # ActivityNet: resized, so num_frames = feat_stride (41.7 frames here): limit = 192 + 0.5 = 192.5
    segments = np.array([[190.0, 193.0], [192.0, 194.0], [100.0, 192.4]], dtype=np.float32)
    out, lab = clip_upstream(segments, np.array([3, 4, 5]), 192, 41.7, 41.7, 0.5)
    np.testing.assert_allclose(out, [[190, 192.5], [100, 192.4]])
    np.testing.assert_array_equal(lab, [3, 5])
    # trunc_thresh decides: [190, 193] keeps 2.5 / 3 = 0.83
    assert len(clip_upstream(segments[:1], np.array([0]), 192, 41.7, 41.7, 0.84)[0]) == 0


# ---- a hand-made dataset for the dataset, trainer, skip-list and metric tests ---------------------------------
FPS, STRIDE, FRAMES, DIM = 30.0, 4, 16, 6
#: video -> (subset, T, segments in feature steps, label names). "edge": one segment inside, one ending 3 steps
#: after the features (T = 20, limit for gt_clip upstream = 20 + 16 / 8 = 22); "beyond": both start after T.
VIDEOS = {
    "edge": ("training", 20, [[2, 6], [18, 23]], ["Jump", "Jump"]),
    "beyond": ("training", 20, [[21, 25], [23, 26]], ["Jump", "Jump"]),
    "broken": ("training", 20, [[1, 5]], ["Jump"]),        # in the skip list below; no feature file
    "dup": ("test", 30, [[5, 10], [5, 10], [12, 12]], ["Jump", "Jump", "Jump"]),  # duplicate + zero length
    "lost": ("test", 30, [[5, 10]], ["Jump"]),              # in the skip list below; no feature file
}
SKIPPED = ["broken", "lost"]


@pytest.fixture(scope="module")
def hand_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hand_data")
    (root / "features").mkdir()
    database = {}
    rng = np.random.default_rng(0)
    for vid, (subset, length, steps, names) in VIDEOS.items():
        if vid not in SKIPPED:
            np.save(root / "features" / f"{vid}.npy", rng.standard_normal((length, DIM)).astype(np.float32))
        seconds = steps_to_seconds(np.array(steps, dtype=np.float64), FPS, STRIDE, FRAMES)
        database[vid] = {"subset": subset, "fps": FPS, "duration": (length - 1) * STRIDE / FPS + FRAMES / FPS,
                         "annotations": [{"label": n, "segment": [float(s), float(e)], "label_id": 0}
                                         for (s, e), n in zip(seconds, names)]}
    (root / "annotations.json").write_text(json.dumps({"database": database}))
    (root / "skip.txt").write_text("# made-up list\n" + "\n".join(f"{v}  # no features" for v in SKIPPED) + "\n\n")
    return root


#: a tiny model, no crop (so that only gt_clip acts), batch 1
HAND = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=8",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=32", "data.crop_ratio=null",
        "data.val_split=null", "train.batch_size=1", "train.epochs=3", "train.warmup_epochs=1",
        "data.skip_videos_file=skip.txt"]


def _sample(hand_data, clip, vid):
    cfg = load_config("demo", HAND + [f"data.gt_clip={clip}"])
    data = prepare_data(cfg.data, hand_data, ["training"])
    ds = TALDataset(data.annotations.split("training"), data.reader, cfg.data, training=True)
    return ds[[r.video_id for r in ds.records].index(vid)]


def test_dataset_gt_clip_none_keeps_segments_beyond_the_features(hand_data):
    edge, beyond = _sample(hand_data, "none", "edge"), _sample(hand_data, "none", "beyond")
    np.testing.assert_allclose(edge["segments"].numpy(), [[2, 6], [18, 23]], atol=1e-4)
    np.testing.assert_allclose(beyond["segments"].numpy(), [[21, 25], [23, 26]], atol=1e-4)


def test_dataset_gt_clip_upstream_cuts_at_t_plus_half_a_clip(hand_data):
    edge, beyond = _sample(hand_data, "upstream", "edge"), _sample(hand_data, "upstream", "beyond")
    # limit 22: [18, 23] keeps 4 / 5 and ends at 22; [21, 25] keeps 1 / 4 (< 0.5) and [23, 26] starts after it
    np.testing.assert_allclose(edge["segments"].numpy(), [[2, 6], [18, 22]], atol=1e-4)
    assert beyond["segments"].shape == (0, 2) and beyond["labels"].shape == (0,)


@pytest.fixture(scope="module")
def hand_trainer(hand_data, tmp_path_factory) -> Trainer:
    cfg = load_config("demo", HAND)
    return Trainer(cfg, TrainOptions(out_dir=tmp_path_factory.mktemp("hand_run") / "run", data_root=hand_data,
                                     progress=False))


def test_trainer_schedule_is_total_epochs_with_cosine_after_warmup(hand_trainer):
    # 2 training videos (the skipped one left out), batch 1: 2 iterations an epoch
    assert hand_trainer.iters_per_epoch == 2
    assert (hand_trainer.schedule.warmup, hand_trainer.schedule.total) == (1 * 2, 3 * 2)


def test_segments_beyond_the_features_give_no_positive_point(hand_trainer):
    """With gt_clip none a segment after the features stays in the targets; its positive points are all in
    the padding, which the loss masks out."""
    trainer = hand_trainer
    beyond = next(i for i, r in enumerate(trainer.train_set.records) if r.video_id == "beyond")
    edge = 1 - beyond
    batch = Collate(32, trainer.model.max_div_factor, training=True)([trainer.train_set[beyond],
                                                                      trainer.train_set[edge]])
    trainer.model.eval()  # points and masks do not depend on the mode; drop path would need a step
    with torch.no_grad():
        out = trainer.model(batch.feats, batch.mask)
    trainer.model.train()
    cls_t, _ = assign_batch(out.points, batch.segments, batch.labels, trainer.data.num_classes,
                            trainer.cfg.train.center_sample_radius)
    positive, valid = cls_t.sum(-1) > 0, torch.cat(out.masks, dim=1)
    assert positive[0].any() and not (positive[0] & valid[0]).any()   # "beyond": positives only in padding
    assert (positive[1] & valid[1]).any()                              # "edge": positives inside


# ---- skip lists (item 4) ---------------------------------------------------------------------------------------
def test_skip_list_leaves_videos_out_with_one_warning(hand_data, caplog):
    cfg = load_config("demo", HAND)
    with caplog.at_level(logging.WARNING, logger="rdfa_s6"):
        data = prepare_data(cfg.data, hand_data, ["training", "test"])  # no error for their missing features
    warnings = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(warnings) == 1 and "skipping 2 video(s)" in warnings[0]
    assert "broken" in warnings[0] and "lost" in warnings[0] and "skip.txt" in warnings[0]
    assert [r.video_id for r in data.annotations.split("training")] == ["edge", "beyond"]
    assert [r.video_id for r in data.annotations.split("test")] == ["dup"]
    assert set(SKIPPED) <= set(data.annotations.videos)  # still in the ground truth of the metric


def test_skip_list_warning_names_the_first_few(tmp_path, caplog):
    from rdfa_s6.data.annotations import parse_annotations
    from rdfa_s6.data.skiplist import apply_skip_list

    ann = parse_annotations({"database": {f"v{i}": {"subset": "training", "fps": 30} for i in range(9)}})
    with caplog.at_level(logging.WARNING, logger="rdfa_s6"):
        hit = apply_skip_list(ann, [f"v{i}" for i in range(8)] + ["not_in_file"], ["training"], "list.txt")
    assert hit == [f"v{i}" for i in range(8)] and [r.video_id for r in ann.split("training")] == ["v8"]
    assert "skipping 8 video(s)" in caplog.text and "v0, v1, v2, v3, v4 and 3 more" in caplog.text
    assert "not_in_file" not in caplog.text


def test_skip_list_file_errors(hand_data, tmp_path):
    with pytest.raises(DataError, match="data.skip_videos_file: 'nosuch.txt'"):
        resolve_skip_file("nosuch.txt", hand_data)
    assert resolve_skip_file("skip.txt", hand_data) == hand_data / "skip.txt"
    assert resolve_skip_file(str(hand_data / "skip.txt"), None) == hand_data / "skip.txt"
    assert read_skip_list(hand_data / "skip.txt") == SKIPPED


def test_check_data_honours_the_skip_list(hand_data, capsys):
    code = main(["check-data", "demo", "--data-root", str(hand_data), *HAND, "data.val_split=null"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "not found" not in out and "broken" not in out


# ---- the ground-truth policy of each evaluation path (item 3) --------------------------------------------------
#: one detection on "dup" matching its [5, 10]-step event: 1 of 3 events found with "official", 1 of 1 with
#: "actionformer" (the duplicate and the zero-length event dropped); "lost" is a skipped video of the test split
DETECTION = {"results": {"dup": [{"segment": [float(x) for x in steps_to_seconds(np.array([5.0, 10.0]), FPS,
                                                                                 STRIDE, FRAMES)],
                                  "label": "Jump", "score": 0.9}]}}
OFFICIAL, ACTIONFORMER = 1 / 4, 1 / 2   # "lost" adds one missed event under both policies


def _evaluate_split(hand_data, monkeypatch, overrides=()):
    cfg = load_config("demo", HAND + list(overrides))
    data = prepare_data(cfg.data, hand_data, ["test"])
    monkeypatch.setattr(runner, "predict_split", lambda *args, **kwargs: DETECTION)
    return runner.evaluate_split(None, cfg, data, "test")[1]


def test_train_test_and_demo_score_with_the_actionformer_policy(hand_data, monkeypatch):
    metrics = _evaluate_split(hand_data, monkeypatch)
    assert metrics["gt_policy"] == "actionformer" and metrics["num_gt"] == 2
    assert metrics["mAP"] == pytest.approx([ACTIONFORMER] * 5)
    official = _evaluate_split(hand_data, monkeypatch, ["eval.gt_policy=official"])
    assert official["gt_policy"] == "official" and official["num_gt"] == 4
    assert official["mAP"] == pytest.approx([OFFICIAL] * 5)


def test_evaluate_command_defaults_to_the_official_policy(hand_data, tmp_path, capsys):
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(DETECTION))
    args = ["evaluate", "--pred", str(pred), "--gt", str(hand_data / "annotations.json"), "--subset", "test"]
    assert main(args + ["--json", str(tmp_path / "a.json")]) == 0
    assert main(args + ["--json", str(tmp_path / "b.json"), "--gt-policy", "actionformer"]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["gt_policy"] == "official" and a["mAP"] == pytest.approx([OFFICIAL] * 5)
    assert b["gt_policy"] == "actionformer" and b["mAP"] == pytest.approx([ACTIONFORMER] * 5)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "'official' keeps every event" in text and "'actionformer' drops zero-length" in text
    assert "eval.gt_policy" in text and "(default: official)" in text
