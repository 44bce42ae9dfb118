"""Detection on video files: a run trained on ``rdfa-s6 extract`` features records the extraction, and
``infer``/``Detector.predict_video`` on a video extract the same features; SRT/WebVTT output (the formats
themselves are tested with ``rdfa-s6 export``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("av")

from _video_helpers import labelled_colour_motion_data

from rdfa_s6.api import Detector
from rdfa_s6.cli import main
from rdfa_s6.errors import UserError
from rdfa_s6.video.synth import VideoSynthSpec

TINY = ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2", "model.stem.chan_pool_len=16",
        "model.regression_ranges=[[0,4],[4,8],[8,10000]]", "data.max_seq_len=64", "train.epochs=1",
        "train.batch_size=2", "train.warmup_epochs=0", "data.val_split=null"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """videos/ (synthetic MP4s) -> data/ (rdfa-s6 extract, labelled with the ground truth) -> runs/x (tiny)."""
    root = tmp_path_factory.mktemp("video_infer")
    spec = VideoSynthSpec(train_videos=4, val_videos=0, test_videos=2, size=32, min_frames=90, max_frames=150,
                          action_frames=(20, 40), seed=5)
    labelled_colour_motion_data(root, spec)
    assert main(["train", "demo", "--data-root", str(root / "data"), "--out", str(root / "runs" / "x"),
                 "--no-progress", *TINY]) == 0
    return root


@pytest.mark.slow
def test_run_records_the_extraction_and_predict_video_equals_predict_on_the_extracted_file(workdir):
    meta = json.loads((workdir / "runs" / "x" / "final" / "meta.json").read_text())
    assert meta["extraction"]["backbone"] == "colour-motion" and meta["extraction"]["stride"] == 4
    # the backbone's identity travels with the model (checked by predict_video: tests/test_records.py)
    assert meta["extraction"]["config_sha256"] is None and meta["extraction"]["versions"]["rdfa-s6"]
    det = Detector.from_pretrained(workdir / "runs" / "x")
    vid = "synthvid_test_0000"
    rec = json.loads((workdir / "data" / "extraction.json").read_text())["videos"][vid]
    from_file = det.predict(workdir / "data" / "features" / f"{vid}.npy", fps=rec["fps"], stride=4, window=16)
    from_video = det.predict_video(workdir / "videos" / f"{vid}.mp4")
    assert from_video and from_video == from_file


@pytest.mark.slow
def test_infer_on_a_video_writes_json_srt_and_vtt(workdir, tmp_path, capsys):
    video = workdir / "videos" / "synthvid_test_0001.mp4"
    assert main(["infer", str(workdir / "runs" / "x"), str(video), "--out", str(tmp_path / "r.json"),
                 "--srt", str(tmp_path / "r.srt"), "--vtt", str(tmp_path / "r.vtt"), "--cues", "1000",
                 "--no-progress"]) == 0
    results = json.loads((tmp_path / "r.json").read_text())["results"]["synthvid_test_0001"]
    srt = (tmp_path / "r.srt").read_text()
    vtt = (tmp_path / "r.vtt").read_text()
    assert results and srt.count(" --> ") == len(results) == vtt.count(" --> ") and vtt.startswith("WEBVTT\n\n")
    assert main(["infer", str(workdir / "runs" / "x"), str(video), "--out", str(tmp_path / "r.json"),
                 "--srt", str(tmp_path / "r3.srt"), "--cues", "3", "--no-progress"]) == 0
    assert (tmp_path / "r3.srt").read_text().count(" --> ") == min(3, len(results))
    # a folder mixing feature files and videos, several videos: one subtitle file per video in a folder
    assert main(["infer", str(workdir / "runs" / "x"), str(workdir / "videos"), "--out", str(tmp_path / "all.json"),
                 "--srt", str(tmp_path / "subs"), "--no-progress"]) == 0
    assert len(json.loads((tmp_path / "all.json").read_text())["results"]) == 6
    assert sorted(p.name for p in (tmp_path / "subs").iterdir())[0] == "synthvid_test_0000.srt"


@pytest.mark.slow
def test_a_model_trained_on_other_features_says_what_it_needs(workdir, tmp_path, capsys):
    det = Detector.from_pretrained(workdir / "runs" / "x")
    det.extraction = None  # as a converted official model: no extraction recorded
    with pytest.raises(UserError, match=r"not trained on features from `rdfa-s6 extract`.*\[T, 208\]"):
        det.predict_video(workdir / "videos" / "synthvid_test_0000.mp4")

