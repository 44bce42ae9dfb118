"""Trustworthy features (issue 26): ``extraction.json`` records each feature file's sha256, shape and dtype and
the backbone's identity; ``check-data`` verifies the files against it; ``infer`` on a video refuses a backbone
that is not the one the features came from."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av")

from _video_helpers import write_video

from rdfa_s6.cli import main
from rdfa_s6.errors import UserError
from rdfa_s6.video import backbones as bb_mod
from rdfa_s6.video.backbones import Backbone, build_backbone
from rdfa_s6.video.records import read_extraction
from rdfa_s6.video.reproduce import backbone_for, check_identity

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """A data root from ``rdfa-s6 extract`` (colour-motion) of 4 tiny videos, labelled: 2 training, 2 test."""
    root = tmp_path_factory.mktemp("records")
    (root / "videos").mkdir()
    for i, n in enumerate((40, 48, 56, 44)):
        write_video(root / "videos" / f"v{i}.mp4", n, fps=10, width=32, height=32)
    assert main(["extract", str(root / "videos"), "--out", str(root / "data"), "--backbone", "colour-motion",
                 "--workers", "0", "--no-progress"]) == 0
    ann = json.loads((root / "data" / "annotations.json").read_text())
    for i, (vid, entry) in enumerate(sorted(ann["database"].items())):
        entry["subset"] = "training" if i < 2 else "test"
        entry["annotations"] = [{"segment": [0.5, 2.0], "label": "a", "label_id": 0}]
    (root / "data" / "annotations.json").write_text(json.dumps(ann))
    return root / "data"


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


CHECK = ["check-data", "demo", "data.val_split=null", "--no-progress"]


def test_extraction_records_each_file_sha256_shape_dtype_and_the_backbone_identity(extracted):
    data = json.loads((extracted / "extraction.json").read_text())
    assert data["config_sha256"] is None and data["weights"] == "weight-free"
    assert data["versions"]["torch"] in (torch.__version__, torch.__version__.split("+")[0])
    assert set(data["versions"]) >= {"torch", "torchvision", "av", "rdfa-s6"}
    for vid, rec in data["videos"].items():
        path = extracted / "features" / f"{vid}.npy"
        arr = np.load(path)
        assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # independent of the writer
        assert rec["shape"] == list(arr.shape) and rec["dtype"] == arr.dtype.name == "float32"
    settings = read_extraction(extracted)
    assert settings is not None and "versions" in settings and settings["config_sha256"] is None


def test_check_data_verifies_the_feature_files(extracted, tmp_path, capsys):
    assert main(CHECK + ["--data-root", str(extracted)]) == 0
    assert "feature files verified against extraction.json: 4 match" in capsys.readouterr().out
    # one flipped byte in the data of one file: named, exit status 2, one line on stderr
    flipped = _copy(extracted, tmp_path / "flipped")
    victim = flipped / "features" / "v2.npy"
    raw = bytearray(victim.read_bytes())
    raw[-3] ^= 0x01
    victim.write_bytes(bytes(raw))
    assert main(CHECK + ["--data-root", str(flipped)]) == 2
    out, err = capsys.readouterr()
    assert str(victim) in out and "sha256 differs" in out and "v1.npy" not in out
    assert len(err.strip().splitlines()) == 1 and str(victim) in err
    # --no-verify: the flip goes unnoticed (the values are still finite floats)
    assert main(CHECK + ["--data-root", str(flipped), "--no-verify"]) == 0
    assert "verified" not in capsys.readouterr().out
    # a truncated file and a missing one: both named
    cut = _copy(extracted, tmp_path / "cut")
    short = cut / "features" / "v1.npy"
    short.write_bytes(short.read_bytes()[:-8])
    (cut / "features" / "v3.npy").unlink()
    assert main(CHECK + ["--data-root", str(cut), "--show", "10"]) == 2
    out = capsys.readouterr().out
    assert f"feature file {short} of video 'v1'" in out
    assert f"feature file {cut / 'features' / 'v3.npy'} of video 'v3' is missing" in out
    # a file replaced by another of a different length: the shape is named
    other = _copy(extracted, tmp_path / "other")
    np.save(other / "features" / "v0.npy", np.zeros((3, 208), np.float32))
    assert main(CHECK + ["--data-root", str(other)]) == 2
    assert "shape [3, 208] float32, extraction.json records" in capsys.readouterr().out


def test_an_old_extraction_json_without_checksums_still_works(extracted, tmp_path, capsys):
    old = _copy(extracted, tmp_path / "old")
    data = json.loads((old / "extraction.json").read_text())
    for key in ("config_sha256", "versions"):
        data.pop(key)
    for rec in data["videos"].values():
        for key in ("sha256", "shape", "dtype"):
            rec.pop(key)
    (old / "extraction.json").write_text(json.dumps(data))
    assert main(CHECK + ["--data-root", str(old)]) == 0
    out = capsys.readouterr().out
    assert "records no checksums" in out and "feature files not verified" in out
    settings = read_extraction(old)
    assert settings is not None and "config_sha256" not in settings
    # a folder an older rdfa-s6 started and a newer one extended: the files with a checksum are verified
    mixed = _copy(extracted, tmp_path / "mixed")
    data = json.loads((mixed / "extraction.json").read_text())
    for key in ("sha256", "shape", "dtype"):
        data["videos"]["v0"].pop(key)
    (mixed / "extraction.json").write_text(json.dumps(data))
    assert main(CHECK + ["--data-root", str(mixed)]) == 0
    assert "3 match; 1 file recorded without a checksum (extracted by an older rdfa-s6) not verified" in \
        capsys.readouterr().out
    # a model that recorded these settings still rebuilds its backbone (no config sha256 to compare)
    assert backbone_for(settings).name == "colour-motion"


def _settings(**kw):
    base = {"backbone": "colour-motion", "weights": "weight-free", "weights_sha256": None, "config_sha256": None,
            "feature_dim": 208, "fps": None, "stride": 4, "window": 16, "short_side": 64, "crop": 64,
            "dtype": "float32"}
    base.update(kw)
    return base


def test_a_backbone_that_is_not_the_one_the_features_came_from_is_refused(monkeypatch):
    # the same backbone is accepted
    assert backbone_for(_settings()).name == "colour-motion"
    assert backbone_for(_settings(backbone="r3d_18", weights="random-init")).weights == "random-init"
    # another name, another weights origin, another sha256: one line naming what differs
    with pytest.raises(UserError, match=r"^not the backbone .*: backbone colour-motion, the features were extracted "
                                        r"with r3d_18$"):
        check_identity(_settings(backbone="r3d_18", weights="random-init"), build_backbone("colour-motion"))
    seeded = build_backbone("r3d_18", random_init=True)
    with pytest.raises(UserError, match="random-init weights, the features were extracted with the weights file "
                                        "r3d.pth"):
        check_identity(_settings(backbone="r3d_18", weights="r3d.pth", weights_sha256="ab" * 32), seeded)
    seeded.weights, seeded.sha256 = "/x/r3d.pth", "cd" * 32
    with pytest.raises(UserError, match=r"weights sha256 cdcdcdcdcdcd\.\.\., .* \(sha256 abababababab\.\.\.\)"):
        check_identity(_settings(backbone="r3d_18", weights="r3d.pth", weights_sha256="ab" * 32), seeded)
    # a plug-in backbone (as transformers ones are) whose configuration differs
    fake = Backbone("fake", torch.nn.Identity(), 4, 8, 8, (0.5,) * 3, (0.5,) * 3, weights="w.safetensors",
                    sha256="11" * 32, config_sha256="22" * 32)
    recorded = _settings(backbone="fake", weights="w.safetensors", weights_sha256="11" * 32, config_sha256="33" * 32)
    with pytest.raises(UserError, match=r"config sha256 222222222222\.\.\., the features were extracted with config "
                                        r"sha256 333333333333\.\.\."):
        backbone_for(recorded, backbone=fake)
    assert backbone_for(dict(recorded, config_sha256="22" * 32), backbone=fake) is fake
    # the same through the registry: a rebuilt backbone whose config differs from the recorded one is refused
    monkeypatch.setitem(bb_mod.BACKBONES, "fake", lambda state: Backbone(
        "fake", torch.nn.Identity(), 4, 8, 8, (0.5,) * 3, (0.5,) * 3, config_sha256="22" * 32))
    monkeypatch.setattr(bb_mod, "WEIGHT_FREE", bb_mod.WEIGHT_FREE | {"fake"})
    with pytest.raises(UserError, match="config sha256 222222222222"):
        backbone_for(_settings(backbone="fake", config_sha256="33" * 32))
    assert backbone_for(_settings(backbone="fake", config_sha256="22" * 32)).name == "fake"


def test_predict_video_refuses_a_plugin_backbone_whose_config_differs(monkeypatch):
    """Through the API: the caller's backbone is checked before any video is decoded; the same one is used."""
    from rdfa_s6.api import Detector
    from rdfa_s6.config import load_config
    from rdfa_s6.models import build_detector
    from rdfa_s6.video import reproduce

    cfg = load_config("demo", ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2",
                               "model.stem.chan_pool_len=16", "model.regression_ranges=[[0,4],[4,8],[8,10000]]"])
    torch.manual_seed(0)
    extraction = _settings(backbone="fake", weights="w.safetensors", weights_sha256="11" * 32,
                           config_sha256="33" * 32, feature_dim=4)
    det = Detector(build_detector(cfg, input_dim=4, num_classes=1), cfg, {0: "a"}, precision="fp32",
                   extraction=extraction)
    used = []
    monkeypatch.setattr(reproduce, "video_features", lambda path, settings, backbone, **kw: (
        used.append(backbone) or np.zeros((20, 4), np.float32), {"fps": 30.0}))
    fake = Backbone("fake", torch.nn.Identity(), 4, 8, 8, (0.5,) * 3, (0.5,) * 3, weights="w.safetensors",
                    sha256="11" * 32, config_sha256="22" * 32)
    with pytest.raises(UserError, match="^not the backbone the model's features came from: config sha256 2222"):
        det.predict_video(Path("v.mp4"), backbone=fake)
    assert used == []
    fake.config_sha256 = "33" * 32
    det.predict_video(Path("v.mp4"), backbone=fake)
    assert used == [fake]
