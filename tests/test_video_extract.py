"""``rdfa-s6 extract``: features equal a reference built from decoded frames, batching and workers change
nothing, resume and torchrun give the same files, bad inputs are listed and skipped."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av")

from _video_helpers import write_video

from rdfa_s6.cli import main
from rdfa_s6.errors import UserError
from rdfa_s6.video import extract as extract_mod
from rdfa_s6.video.backbones import build_backbone, import_torchvision
from rdfa_s6.video.clips import clip_frame_indices, num_clips
from rdfa_s6.video.decode import read_all
from rdfa_s6.video.extract import ExtractOptions, extract

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def videos(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "a.mp4", 70, fps=30)  # T = (70 - 16) // 4 + 1 = 14
    write_video(folder / "b.webm", 10, fps=25)  # shorter than a clip: one padded clip
    write_video(folder / "c.mkv", 33, fps=24, width=40, height=56)  # T = 5
    return folder


def _files(out: Path):
    return {p.name: np.load(p) for p in sorted((out / "features").glob("*.npy"))}


def _opts(out, **kw):
    base = dict(out=out, backbone="colour-motion", workers=0, device="cpu", precision="fp32")
    base.update(kw)
    return ExtractOptions(**base)


def test_features_equal_the_backbone_on_clips_cut_from_the_decoded_frames(videos, tmp_path):
    summary = extract([videos], _opts(tmp_path / "out", batch_size=3))
    assert sorted(summary.done) == ["a", "b", "c"] and not summary.failed and summary.merged
    bb = build_backbone("colour-motion")
    meta = json.loads((tmp_path / "out" / "extraction.json").read_text())
    ann = json.loads((tmp_path / "out" / "annotations.json").read_text())["database"]
    for vid, ext, n, fps in [("a", ".mp4", 70, 30), ("b", ".webm", 10, 25), ("c", ".mkv", 33, 24)]:
        frames, _ = read_all(videos / f"{vid}{ext}", bb.short_side, bb.crop)
        clips = torch.from_numpy(frames[clip_frame_indices(len(frames), 16, 4)])  # reference: all at once
        ref = bb.module(bb.preprocess(clips)).numpy()
        got = np.load(tmp_path / "out" / "features" / f"{vid}.npy")
        assert got.shape == (num_clips(n, 16, 4), 208) == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
        rec = meta["videos"][vid]
        assert (rec["num_frames"], rec["T"], rec["fps"]) == (n, len(ref), fps)
        assert rec["duration"] == pytest.approx(n / fps, abs=1e-6)
        assert ann[vid] == {"subset": "training", "annotations": [], "duration": rec["duration"], "fps": fps}
    assert meta["weights"] == "weight-free" and (meta["stride"], meta["window"], meta["fps"]) == (4, 16, None)


def test_batch_size_workers_and_resampling(videos, tmp_path):
    extract([videos], _opts(tmp_path / "b1", batch_size=1))
    extract([videos], _opts(tmp_path / "b7w1", batch_size=7, workers=1))
    one, many = _files(tmp_path / "b1"), _files(tmp_path / "b7w1")
    assert one.keys() == many.keys()
    for k in one:
        np.testing.assert_allclose(one[k], many[k], rtol=1e-5, atol=1e-6)
    extract([videos / "a.mp4"], _opts(tmp_path / "r", fps=10, stride=2, window=8))
    rec = json.loads((tmp_path / "r" / "extraction.json").read_text())["videos"]["a"]
    # 70 frames at 30 fps = 2.333 s -> 24 frames at 10 fps -> (24 - 8) // 2 + 1 = 9 clips
    assert (rec["num_frames"], rec["T"], rec["fps"], rec["native_fps"]) == (24, 9, 10.0, 30.0)


def test_resumed_run_equals_uninterrupted_run(videos, tmp_path, monkeypatch):
    extract([videos], _opts(tmp_path / "full"))
    out = tmp_path / "resumed"
    real_write = extract_mod.write_video_features
    calls = []

    def killed_on_second(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt  # a kill while the second video is being written
        return real_write(*args, **kwargs)

    monkeypatch.setattr(extract_mod, "write_video_features", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        extract([videos], _opts(out))
    monkeypatch.setattr(extract_mod, "write_video_features", real_write)
    assert list(_files(out)) == ["a.npy"] and not (out / "extraction.json").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    summary = extract([videos], _opts(out))
    assert summary.skipped == ["a"] and sorted(summary.done) == ["b", "c"]
    full, resumed = _files(tmp_path / "full"), _files(out)
    assert full.keys() == resumed.keys() and all(np.array_equal(full[k], resumed[k]) for k in full)
    assert json.loads((out / "extraction.json").read_text()) == \
        json.loads((tmp_path / "full" / "extraction.json").read_text())
    with pytest.raises(UserError, match="stride"):
        extract([videos], _opts(out, stride=8))  # other settings into the same folder are refused


def test_bad_inputs_are_listed_and_skipped_with_exit_status_2(videos, tmp_path, capsys):
    import av

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text.mp4").write_text("this is not a video\n")
    good = (videos / "a.mp4").read_bytes()
    (bad / "truncated.mp4").write_bytes(good[: len(good) // 2])
    corrupt = bytearray((videos / "c.mkv").read_bytes())
    corrupt[200:] = os.urandom(len(corrupt) - 200)
    (bad / "corrupt.mkv").write_bytes(bytes(corrupt))
    with av.open(str(bad / "audio.mkv"), "w") as c:  # an audio stream only
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in list(s.encode(frame)) + list(s.encode()):
            c.mux(p)
    for name, codec in [("empty.mkv", "mjpeg"), ("empty0.mp4", "mpeg4")]:  # a video stream without frames
        with av.open(str(bad / name), "w") as c:
            s = c.add_stream(codec, rate=25)
            s.width, s.height, s.pix_fmt = 32, 32, "yuvj420p" if codec == "mjpeg" else "yuv420p"
            c.start_encoding()
    write_video(bad / "tiny.mkv", 20, width=6, height=4)  # odd but valid: processed
    args = ["extract", str(videos), str(bad), str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "out"),
            "--backbone", "colour-motion", "--workers", "1", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    failed = json.loads((tmp_path / "out" / "extraction.json").read_text())["failed"]
    assert set(failed) == {"text", "truncated", "corrupt", "audio", "empty", "empty0", "nope"}
    assert len(err) == len(failed) and all(any(str(bad / n) in line or "nope.mp4" in line for n in
                                               os.listdir(bad)) for line in err)
    assert "no video stream" in failed["audio"]
    assert "End of file" in failed["empty"] and "no video stream" in failed["empty0"]  # how FFmpeg sees them
    assert set(_files(tmp_path / "out")) == {"a.npy", "b.npy", "c.npy", "tiny.npy"}
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]


def test_unknown_backbone_missing_weights_and_wrong_window_are_user_errors(videos, tmp_path):
    with pytest.raises(UserError, match="unknown backbone"):
        build_backbone("resnet9000")
    with pytest.raises(UserError, match="no weights for backbone 'r3d_18'.*download https://"):
        build_backbone("r3d_18")
    fixed = build_backbone("colour-motion")
    fixed.window = 16  # as mvit_v2_s declares
    with pytest.raises(UserError, match="exactly 16 frames"):
        extract_mod.validate(_opts(tmp_path, window=8), fixed)


def test_weights_file_is_loaded_and_recorded_with_its_sha256(tmp_path):
    import hashlib

    tv = import_torchvision()
    torch.manual_seed(0)
    reference = tv.models.video.r3d_18(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "r3d.pth")
    bb = build_backbone("r3d_18", weights=tmp_path / "r3d.pth")
    assert bb.sha256 == hashlib.sha256((tmp_path / "r3d.pth").read_bytes()).hexdigest()
    x = torch.randn(1, 3, 4, 32, 32)
    reference.fc = torch.nn.Identity()
    with torch.no_grad():
        np.testing.assert_allclose(bb.module(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)
    # --random-init is seeded with 0: the network torch.manual_seed(0) builds, whatever the global RNG state
    torch.manual_seed(123)
    seeded = build_backbone("r3d_18", random_init=True)
    assert seeded.weights == "random-init" and seeded.sha256 is None
    assert all(torch.equal(p, q) for p, q in zip(seeded.module.parameters(), bb.module.parameters()))
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="do not fit"):
        build_backbone("r3d_18", weights=tmp_path / "other.pth")


def test_bf16_features_are_close_to_fp32():
    from rdfa_s6.video.backbones import KINETICS_MEAN, KINETICS_STD, Backbone

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 16, 3), torch.nn.ReLU(), torch.nn.Conv3d(16, 32, 3),
                              torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten())
    bb = Backbone("tiny", net, 32, 32, 32, KINETICS_MEAN, KINETICS_STD)
    clips = torch.randint(0, 256, (2, 8, 32, 32, 3), dtype=torch.uint8)
    fp32 = extract_mod.FeatureEncoder(bb, torch.device("cpu"), "fp32")(clips)
    bf16 = extract_mod.FeatureEncoder(bb, torch.device("cpu"), "bf16")(clips)
    rel = (bf16 - fp32).norm() / fp32.norm()
    assert rel < 0.05, rel


@pytest.mark.slow
def test_torchrun_two_processes_write_the_same_files_as_one(videos, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    base = ["extract", str(videos), "--backbone", "colour-motion", "--workers", "0", "--no-progress"]
    subprocess.run([sys.executable, "-m", "rdfa_s6", *base, "--out", str(tmp_path / "one")], check=True, env=env)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0",
                    "-m", "rdfa_s6", *base, "--out", str(tmp_path / "two")], check=True, env=env)
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert one.keys() == two.keys() == {"a.npy", "b.npy", "c.npy"}
    assert all(np.array_equal(one[k], two[k]) for k in one)
    for name in ("extraction.json", "annotations.json"):
        a = json.loads((tmp_path / "one" / name).read_text())
        b = json.loads((tmp_path / "two" / name).read_text())
        assert a == b
    markers = sorted(p.name for p in (tmp_path / "two" / ".extract").glob("rank-*"))
    assert markers == ["rank-0-of-2.json", "rank-1-of-2.json"]
