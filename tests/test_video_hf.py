"""``--backbone hf:FOLDER`` (transformers video models) and ``py:FILE:FACTORY`` (code plug-ins): features equal a
direct transformers forward of the same decoded frames through the folder's own processor; custom code runs only
with ``--trust-remote-code``; the layout equals the built-ins'; transformers is imported only behind the
torchvision guard."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
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
from rdfa_s6.video import hf
from rdfa_s6.video.backbones import build_backbone
from rdfa_s6.video.decode import read_all
from rdfa_s6.video.extract import ExtractOptions, extract
from rdfa_s6.video.reproduce import backbone_for

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")

try:
    hf.import_transformers()
    HAVE_TRANSFORMERS = True
except UserError:
    HAVE_TRANSFORMERS = False
needs_transformers = pytest.mark.skipif(not HAVE_TRANSFORMERS, reason="the hf extra is not installed")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A video (38 frames, 64 x 48, 30 fps) and tiny random VideoMAE and V-JEPA 2 folders (32 px, 4 frames)."""
    root = tmp_path_factory.mktemp("hf")
    write_video(root / "a.mp4", 38, fps=30)
    if HAVE_TRANSFORMERS:
        for family in ("videomae", "vjepa2"):
            hf.write_random_model(root / family, family, seed=1, **hf.TINY[family])
    return root


def _opts(out: Path, backbone: str, **kw) -> ExtractOptions:
    base = dict(out=out, backbone=backbone, workers=0, device="cpu", precision="fp32", window=8, stride=4)
    base.update(kw)
    return ExtractOptions(**base)


def _reference(folder: Path, video: Path, window: int, stride: int) -> np.ndarray:
    """Each clip's feature by hand: the decoded frames (short side at the processor's resize size, centre square),
    clip i = frames [i*S, i*S + W), W frames -> the model's n by frame floor((k + 0.5) * W / n), the folder's
    processor, the model loaded by transformers itself, mean of last_hidden_state over the tokens."""
    import transformers

    config = json.loads((folder / "config.json").read_text())
    n = config.get("num_frames") or config.get("frames_per_clip")
    processor = transformers.AutoVideoProcessor.from_pretrained(str(folder), local_files_only=True)
    side = processor.size.shortest_edge
    model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    frames, _ = read_all(video, side, side)
    rows = []
    for start in range(0, len(frames) - window + 1, stride):
        clip = frames[start : start + window]
        clip = clip[[int((k + 0.5) * window / n) for k in range(n)]]
        inputs = processor([torch.from_numpy(clip)], return_tensors="pt")
        with torch.no_grad():
            rows.append(model(**inputs).last_hidden_state.mean(dim=1)[0].numpy())
    return np.stack(rows)


def test_uniform_indices_spread_a_window_over_the_model_frames():
    assert hf.uniform_indices(8, 4).tolist() == [1, 3, 5, 7]
    assert hf.uniform_indices(4, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert hf.uniform_indices(16, 16).tolist() == list(range(16))
    assert hf.uniform_indices(6, 4).tolist() == [0, 2, 3, 5]


@needs_transformers
@pytest.mark.parametrize("family", ["videomae", "vjepa2"])
def test_features_equal_a_direct_transformers_forward(root, tmp_path, family, caplog):
    folder = root / family
    with caplog.at_level("INFO", logger="rdfa_s6.video.hf"):
        summary = extract([root / "a.mp4"], _opts(tmp_path / "out", f"hf:{folder}"))
    assert summary.done == ["a"] and not summary.failed
    got = np.load(tmp_path / "out" / "features" / "a.npy")
    ref = _reference(folder, root / "a.mp4", 8, 4)
    assert got.shape == ref.shape == ((38 - 8) // 4 + 1, 32)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert [r.getMessage() for r in caplog.records].count(
        f"hf:{folder} takes clips of 4 frames: each clip of 8 frames is resampled uniformly to 4") == 1
    meta = json.loads((tmp_path / "out" / "extraction.json").read_text())
    weights = folder / "model.safetensors"
    folded = hashlib.sha256(f"model.safetensors\0{hashlib.sha256(weights.read_bytes()).hexdigest()}\n".encode())
    assert (meta["backbone"], meta["weights"], meta["feature_dim"]) == (f"hf:{folder}", f"hf:{family}", 32)
    assert meta["weights_sha256"] == folded.hexdigest()
    bb = build_backbone(f"hf:{folder}")
    assert bb.config_sha256 == hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
    # bf16 autocast goes through the same encoder: close to fp32, not equal
    bf16 = extract([root / "a.mp4"], _opts(tmp_path / "bf16", f"hf:{folder}", precision="bf16"))
    assert bf16.done == ["a"]
    low = np.load(tmp_path / "bf16" / "features" / "a.npy")
    assert np.linalg.norm(low - got) / np.linalg.norm(got) < 0.05


def test_decode_size_follows_the_processor():
    from types import SimpleNamespace as NS

    assert hf.decode_size(NS(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})) == (36, 36)
    assert hf.decode_size(NS(size={"shortest_edge": 24}, crop_size={"height": 32, "width": 32})) == (32, 32)
    assert hf.decode_size(NS(size={"height": 32, "width": 40}, crop_size=None, do_center_crop=False)) == (0, 40)
    assert hf.decode_size(NS(size={"shortest_edge": 36}, crop_size=20, do_resize=False)) == (20, 20)
    with pytest.raises(UserError, match="no resize or crop size"):
        hf.decode_size(NS(size=None, crop_size=None))


def test_a_model_that_pools_itself_is_taken_as_it_is():
    from types import SimpleNamespace

    class Pooled(torch.nn.Module):
        def forward(self, pixel_values):
            return SimpleNamespace(last_hidden_state=pixel_values.flatten(1)[:, :5])

    pixels = hf.ProcessorInput(None, None, "test", True)
    x = torch.arange(24.0).reshape(2, 12)
    assert torch.equal(hf.MeanOfLastHiddenState(Pooled(), pixels)(x), x[:, :5])


@needs_transformers
def test_a_processor_that_squashes_whole_frames_gets_whole_frames(root, tmp_path):
    """size {height, width} resizes the whole frame (no aspect ratio kept): decoding squashes too, no crop."""
    import transformers

    folder = tmp_path / "squash"
    shutil.copytree(root / "videomae", folder)
    for name in hf.PROCESSOR_FILES:
        (folder / name).unlink(missing_ok=True)
    transformers.VideoMAEImageProcessor(size={"height": 32, "width": 32}, do_center_crop=False).save_pretrained(
        str(folder))
    bb = build_backbone(f"hf:{folder}")
    assert (bb.short_side, bb.crop) == (0, 32)
    extract([root / "a.mp4"], _opts(tmp_path / "out", f"hf:{folder}", window=4, stride=4))
    frames, _ = read_all(root / "a.mp4", 0, 32)
    # the white square is the top-left quarter of the 64 x 48 frame: 16 x 12 pixels -> 8 x 8 of 32 x 32 (a centre
    # crop of the short side scaled to 32 would start 5 columns in and show grey at column 7)
    assert frames[0, 2, 6].min() > 200 and frames[0, 2, 10].max() < 100 and frames[0, 6, 2].min() > 200
    processor = transformers.AutoVideoProcessor.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    with torch.no_grad():
        ref = [model(**processor([torch.from_numpy(frames[s : s + 4])], return_tensors="pt")).last_hidden_state
               .mean(dim=1)[0].numpy() for s in range(0, 38 - 4 + 1, 4)]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "features" / "a.npy"), np.stack(ref), rtol=1e-4, atol=1e-5)


@needs_transformers
def test_the_cli_at_the_model_clip_length_and_what_reproduce_refuses(root, tmp_path, capsys):
    folder = root / "vjepa2"
    assert main(["extract", str(root / "a.mp4"), "--out", str(tmp_path / "out"), "--backbone", f"hf:{folder}",
                 "--window", "4", "--stride", "2", "--workers", "0", "--precision", "fp32", "--no-progress"]) == 0
    got = np.load(tmp_path / "out" / "features" / "a.npy")
    np.testing.assert_allclose(got, _reference(folder, root / "a.mp4", 4, 2), rtol=1e-4, atol=1e-5)
    settings = json.loads((tmp_path / "out" / "extraction.json").read_text())
    assert backbone_for(settings).sha256 == settings["weights_sha256"]
    other = hf.write_random_model(tmp_path / "moved", "vjepa2", seed=2, **hf.TINY["vjepa2"])
    with pytest.raises(UserError, match=r"--backbone-weights .*: not the weights the model.s features"):
        backbone_for(settings, weights=other)


@needs_transformers
def test_missing_folder_files_and_hub_ids_are_one_line(root, tmp_path):
    with pytest.raises(UserError, match=r"hf:nobody/no-such-model: no such folder.*not in the local Hugging Face"):
        build_backbone("hf:nobody/no-such-model")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=r"no config.json"):
        build_backbone(f"hf:{empty}")
    (empty / "config.json").write_text((root / "videomae" / "config.json").read_text())
    with pytest.raises(UserError, match=r"no video_preprocessor_config.json or preprocessor_config.json"):
        build_backbone(f"hf:{empty}")
    with pytest.raises(UserError, match=r"the weights come from the model folder; drop --random-init"):
        build_backbone(f"hf:{root / 'videomae'}", random_init=True)


@needs_transformers
def test_a_hub_id_is_taken_from_the_local_cache(root, tmp_path, monkeypatch):
    """A hub id resolves to its snapshot in the Hugging Face cache (models--org--name/snapshots/<commit>)."""
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--someone--tiny-videomae"
    commit = "0" * 40
    shutil.copytree(root / "videomae", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    bb = build_backbone("hf:someone/tiny-videomae")
    local = build_backbone(f"hf:{root / 'videomae'}")
    assert (bb.name, bb.weights, bb.sha256) == ("hf:someone/tiny-videomae", "hf:someone/tiny-videomae", local.sha256)
    with pytest.raises(UserError, match=r"'someone/other' is not in the local Hugging Face cache"):
        build_backbone("hf:someone/other")


MODELING = '''
import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput


class TinyConfig(PretrainedConfig):
    model_type = "rdfa_tiny_remote"

    def __init__(self, hidden_size=12, **kwargs):
        self.hidden_size = hidden_size
        super().__init__(**kwargs)


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(3, config.hidden_size)
        self.post_init()

    def forward(self, pixel_values, **kwargs):  # [B, T, 3, H, W] -> tokens [B, T * H * W, D]
        return BaseModelOutput(last_hidden_state=self.proj(pixel_values.permute(0, 1, 3, 4, 2).flatten(1, 3)))
'''


def _remote_folder(root: Path, tmp_path: Path) -> Path:
    """A folder whose config.json maps AutoConfig/AutoModel to a modelling file in the folder (custom code)."""
    import importlib.util

    import transformers

    folder = tmp_path / "remote"
    folder.mkdir()
    (folder / "modeling_tiny.py").write_text(MODELING)
    spec = importlib.util.spec_from_file_location("rdfa_test_modeling_tiny", folder / "modeling_tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(3)
    module.TinyModel(module.TinyConfig()).save_pretrained(str(folder))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "modeling_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"}
    (folder / "config.json").write_text(json.dumps(config))
    transformers.VideoMAEImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
                                        ).save_pretrained(str(folder))
    return folder


@needs_transformers
def test_custom_code_runs_only_with_trust_remote_code(root, tmp_path, monkeypatch, capsys):
    import transformers.dynamic_module_utils as dyn

    monkeypatch.setattr(dyn, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))  # not the user's cache
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = _remote_folder(root, tmp_path)
    capsys.readouterr()
    args = ["extract", str(root / "a.mp4"), "--out", str(tmp_path / "out"), "--backbone", f"hf:{folder}", "--window",
            "8", "--workers", "0", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "modeling_tiny.TinyModel" in err and "--trust-remote-code" in err
    assert "runs the Python code in that folder" in err and not (tmp_path / "out").exists()
    assert main(args + ["--trust-remote-code"]) == 0
    got = np.load(tmp_path / "out" / "features" / "a.npy")
    # reference: the folder's linear layer on the processor's pixels, averaged over all pixels of the 8 frames
    import transformers
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    processor = transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    frames, _ = read_all(root / "a.mp4", 16, 16)
    rows = []
    for start in range(0, len(frames) - 8 + 1, 4):
        pixels = processor([list(frames[start : start + 8])], return_tensors="pt")["pixel_values"][0]
        mean_pixel = pixels.permute(0, 2, 3, 1).reshape(-1, 3).mean(0)
        rows.append((state["proj.weight"] @ mean_pixel + state["proj.bias"]).numpy())
    np.testing.assert_allclose(got, np.stack(rows), rtol=1e-4, atol=1e-5)
    _same_layout(tmp_path / "out", root, tmp_path)
    # infer on a video and Detector.predict_video rebuild the backbone through backbone_for: the same consent
    settings = json.loads((tmp_path / "out" / "extraction.json").read_text())
    with pytest.raises(UserError, match=r"custom code .*--trust-remote-code"):
        backbone_for(settings)
    assert backbone_for(settings, trust_remote_code=True).sha256 == settings["weights_sha256"]


PLUGIN = '''
import torch
from rdfa_s6.video.backbones import Backbone


class MeanColour(torch.nn.Module):
    def forward(self, x):  # [B, 3, W, H, W] -> [B, 3 * W]
        return x.mean(dim=(3, 4)).flatten(1)


def make():
    return Backbone("ignored", MeanColour(), 3 * 8, short_side=24, crop=20, mean=(0.5, 0.5, 0.5),
                    std=(0.25, 0.25, 0.25))
'''


def test_a_py_plugin_runs_only_with_trust_remote_code_and_writes_the_same_layout(root, tmp_path, capsys):
    plugin = tmp_path / "my_backbone.py"
    plugin.write_text(PLUGIN)
    args = ["extract", str(root / "a.mp4"), "--out", str(tmp_path / "out"), "--backbone", f"py:{plugin}:make",
            "--window", "8", "--workers", "0", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--trust-remote-code" in err and not (tmp_path / "out").exists()
    assert main(args + ["--trust-remote-code"]) == 0
    got = np.load(tmp_path / "out" / "features" / "a.npy")
    frames, _ = read_all(root / "a.mp4", 24, 20)
    ref = [((frames[s : s + 8].astype(np.float64) / 255 - 0.5) / 0.25).mean(axis=(1, 2)).T.reshape(-1)
           for s in range(0, 38 - 8 + 1, 4)]
    np.testing.assert_allclose(got, np.stack(ref), rtol=1e-4, atol=1e-5)
    meta = json.loads((tmp_path / "out" / "extraction.json").read_text())
    assert (meta["backbone"], meta["weights"]) == (f"py:{plugin}:make", "py:my_backbone.py:make")
    for bad, match in [(f"py:{plugin}", "expected --backbone py:FILE.py:FACTORY"),
                       (f"py:{plugin}:missing", "has no function 'missing'"),
                       (f"py:{tmp_path / 'nope.py'}:make", "file not found")]:
        with pytest.raises(UserError, match=match):
            build_backbone(bad, trust_remote_code=True)
    _same_layout(tmp_path / "out", root, tmp_path)


def _same_layout(out: Path, root: Path, tmp_path: Path) -> None:
    """The files and the extraction.json keys of ``out`` equal those of a built-in backbone's extraction."""
    extract([root / "a.mp4"], _opts(tmp_path / "builtin", "colour-motion"))

    def layout(folder: Path):
        meta = json.loads((folder / "extraction.json").read_text())
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".lock" not in p.name)
        return files, sorted(meta), sorted(meta["videos"]["a"])

    assert layout(out) == layout(tmp_path / "builtin")


@needs_transformers
def test_without_transformers_one_line_names_the_extra(root, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` raises ImportError
    assert main(["extract", str(root / "a.mp4"), "--out", str(tmp_path / "out"), "--backbone",
                 f"hf:{root / 'videomae'}", "--workers", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'rdfa-s6[hf]'" in err


def test_transformers_is_imported_in_one_place_only():
    pattern = re.compile(r"^\s*(import transformers|from transformers\b)", re.M)
    found = {str(p.relative_to(REPO / "src")): len(pattern.findall(p.read_text(encoding="utf-8")))
             for p in (REPO / "src").rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))}
    assert found == {"rdfa_s6/video/hf.py": 1}


@pytest.mark.slow  # about 15 s: a new interpreter imports torch and transformers
@needs_transformers
def test_extract_cli_in_a_fresh_process_imports_transformers_behind_the_guard(root, tmp_path):
    code = ("import sys; from rdfa_s6.cli import main; rc = main(sys.argv[1:]); "
            "assert 'transformers' in sys.modules and 'torchvision' in sys.modules; sys.exit(rc)")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", code, "extract", str(root / "a.mp4"), "--out", str(tmp_path / "out"),
                          "--backbone", f"hf:{root / 'videomae'}", "--workers", "0", "--no-progress"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert np.load(tmp_path / "out" / "features" / "a.npy").shape == ((38 - 16) // 4 + 1, 32)


@pytest.mark.slow
@needs_transformers
def test_demo_video_with_an_hf_backbone_then_infer_on_a_video_each_in_a_fresh_process(tmp_path):
    """demo --video --quick --backbone hf:<tiny VideoMAE> end to end (extract, training, predict_video for the
    example subtitles), then `rdfa-s6 infer` on one of its videos, each in a new interpreter."""
    hf.write_random_model(tmp_path / "tiny", "videomae", seed=0, **hf.TINY["videomae"])
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    cli = [sys.executable, "-m", "rdfa_s6"]
    res = subprocess.run(cli + ["demo", "--video", "--quick", "--backbone", f"hf:{tmp_path / 'tiny'}", "--out",
                                str(tmp_path / "demo"), "--no-progress"],
                         capture_output=True, text=True, env=env, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((tmp_path / "demo" / "data" / "extraction.json").read_text())
    assert (meta["weights"], meta["feature_dim"]) == ("hf:tiny", 32)
    assert (tmp_path / "demo" / "example.srt").is_file()
    video = sorted((tmp_path / "demo" / "videos").glob("synthvid_test_*.mp4"))[1]
    res = subprocess.run(cli + ["infer", str(tmp_path / "demo" / "run"), str(video), "--out", str(tmp_path / "r.json"),
                                "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert video.stem in json.loads((tmp_path / "r.json").read_text())["results"]
