"""Plots of rdfa_s6.viz and the ``rdfa-s6 visualize`` command: each writes a readable PNG atomically."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from rdfa_s6.commands import visualize
from rdfa_s6.errors import DataError, UserError
from rdfa_s6.eval import evaluate
from rdfa_s6.viz import (
    plot_class_ap,
    plot_error_breakdown,
    plot_pr_curves,
    plot_timeline,
    plot_training_curve,
    precision_recall,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_side: int = 150) -> np.ndarray:
    """``path`` is a PNG that matplotlib reads back, reasonably large and not of one colour; no temp file
    is left beside it."""
    path = Path(path)
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    import matplotlib.image as mpimg

    img = mpimg.imread(str(path))
    assert img.ndim == 3 and img.shape[0] >= min_side and img.shape[1] >= min_side, img.shape
    assert float(img[..., :3].std()) > 0.01, "blank image"
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp.png")]
    assert not leftovers, leftovers
    return img


# ---- hand-made data -----------------------------------------------------------------------------------------

GT_EVENTS = [  # video, label, start, end
    ("v1", "Run", 5.0, 15.0), ("v1", "Jump", 30.0, 42.0), ("v1", "Run", 60.0, 70.0),
    ("v2", "Swim", 10.0, 20.0), ("v2", "Run", 40.0, 50.0),
    ("v3", "Jump", 1.0, 4.0),
]
LABEL_IDS = {"Run": 0, "Jump": 1, "Swim": 2}
DETS = [  # video, label, start, end, score; nothing for v3 and nothing of class Swim
    ("v1", "Run", 4.0, 16.0, 0.95), ("v1", "Run", 6.0, 14.0, 0.5), ("v1", "Run", 58.0, 71.0, 0.3),
    ("v1", "Run", 80.0, 90.0, 0.9), ("v1", "Jump", 31.0, 40.0, 0.8), ("v1", "Jump", 50.0, 55.0, 0.05),
    ("v2", "Run", 41.0, 49.0, 0.7), ("v2", "Jump", 10.0, 20.0, 0.6),
]


def gt_dict() -> Dict[str, Any]:
    db: Dict[str, Any] = {}
    for vid, lab, s, e in GT_EVENTS:
        db.setdefault(vid, {"subset": "Test", "duration": 100.0, "fps": 30.0, "annotations": []})
        db[vid]["annotations"].append({"label": lab, "segment": [s, e], "label_id": LABEL_IDS[lab]})
    db["train1"] = {"subset": "Validation", "duration": 50.0, "annotations": [{"label": "Run", "segment": [1, 2]}]}
    return {"database": db}


def pred_dict() -> Dict[str, Any]:
    res: Dict[str, List[Dict[str, Any]]] = {}
    for vid, lab, s, e, score in DETS:
        res.setdefault(vid, []).append({"segment": [s, e], "label": lab, "score": score})
    return {"results": res}


@pytest.fixture()
def files(tmp_path: Path) -> Dict[str, Path]:
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(gt_dict()))
    pred.write_text(json.dumps(pred_dict()))
    return {"gt": gt, "pred": pred}


def write_metrics_jsonl(path: Path, epochs: int = 3, with_val: bool = True) -> Path:
    lines = []
    step = 0
    for ep in range(1, epochs + 1):
        for _ in range(4):
            step += 10
            loss = 2.0 / (1 + step / 20)
            lines.append({"kind": "train", "epoch": ep, "step": step, "loss": loss, "cls_loss": 0.6 * loss,
                          "reg_loss": 0.4 * loss, "lr": 1e-4})
        rec = {"kind": "epoch", "epoch": ep, "step": step, "loss": loss}
        if with_val:
            rec["val_average_mAP"] = 0.1 * ep
        lines.append(rec)
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


# ---- the package ----------------------------------------------------------------------------------------

def test_import_has_no_side_effect() -> None:
    code = ("import sys, rdfa_s6.viz, rdfa_s6.commands.visualize; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_matplotlib_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(UserError, match=r"pip install 'rdfa-s6\[viz\]'"):
        plot_timeline("v", [(0, 1, "A")], [], 10, tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()


# ---- timeline -----------------------------------------------------------------------------------------------

def test_timeline_with_predictions(tmp_path: Path) -> None:
    gt = [(s, e, lab) for vid, lab, s, e in GT_EVENTS if vid == "v1"]
    preds = [(s, e, lab, sc) for vid, lab, s, e, sc in DETS if vid == "v1"] + [(91.0, 99.0, "Throw", 0.4)]
    out = plot_timeline("v1", gt, preds, 100.0, tmp_path / "sub" / "v1.png", top_k_per_class=2)
    assert out == tmp_path / "sub" / "v1.png"
    assert_png(out)


def test_timeline_video_without_predictions(tmp_path: Path) -> None:
    out = plot_timeline("v3", [(1.0, 4.0, "Jump")], [], 20.0, tmp_path / "v3.png")
    assert_png(out)


def test_timeline_without_duration_or_gt(tmp_path: Path) -> None:
    out = plot_timeline("v9", [], [(3.0, 9.0, "Run", 1.7), (1.0, 2.0, "Run", -0.2)], None, tmp_path / "v9.png")
    assert_png(out)


def test_timeline_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="top_k_per_class"):
        plot_timeline("v", [], [], 10, tmp_path / "x.png", top_k_per_class=0)
    with pytest.raises(UserError, match=r"predictions\[0\]"):
        plot_timeline("v", [], [(0, 1, "A")], 10, tmp_path / "x.png")
    with pytest.raises(UserError, match="finite"):
        plot_timeline("v", [(0, float("nan"), "A")], [], 10, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_overwrite_is_atomic_and_replaces(tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    out.write_bytes(b"old")
    plot_timeline("v", [(0, 1, "A")], [(0, 1, "A", 0.5)], 2, out)
    assert_png(out, min_side=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.png"]


# ---- precision-recall ---------------------------------------------------------------------------------------

def test_pr_curves_class_without_predictions(tmp_path: Path) -> None:
    out = plot_pr_curves(gt_dict(), pred_dict(), tmp_path / "pr.png", tiou=0.5)
    assert_png(out)


def test_precision_recall_matches_the_evaluator() -> None:
    from rdfa_s6.eval import align_predictions, load_ground_truth, load_predictions

    gt = load_ground_truth(gt_dict(), subset="test")
    aligned, _ = align_predictions(load_predictions(pred_dict()), gt)
    curves = precision_recall(aligned, gt, 0.5)
    metrics = evaluate(pred_dict(), gt_dict(), subset="test", tiou_thresholds=[0.5])
    assert list(curves) == list(metrics["per_class_AP"])
    for lab, c in curves.items():
        assert c["ap"] == pytest.approx(metrics["per_class_AP"][lab][0], abs=1e-12)
    assert curves["Swim"]["num_pred"] == 0 and curves["Swim"]["ap"] == 0.0
    run = curves["Run"]  # by score: 0.95 TP, 0.9 FP, 0.7 TP, 0.5 FP (double), 0.3 TP; 3 events
    np.testing.assert_allclose(run["precision"], [1, 0.5, 2 / 3, 0.5, 0.6])
    np.testing.assert_allclose(run["recall"], [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])


def test_pr_curves_bad_tiou(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="tIoU"):
        plot_pr_curves(gt_dict(), pred_dict(), tmp_path / "pr.png", tiou=1.5)


# ---- metrics plots ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def metrics() -> Dict[str, Any]:
    return evaluate(pred_dict(), gt_dict(), subset="test", tiou_thresholds=[0.3, 0.5, 0.7])


def test_class_ap(tmp_path: Path, metrics: Dict[str, Any]) -> None:
    assert_png(plot_class_ap(metrics, tmp_path / "ap.png"))
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    assert_png(plot_class_ap(path, tmp_path / "ap2.png"))


def test_class_ap_many_classes(tmp_path: Path) -> None:
    per_class = {f"class{i:03d}": [i / 300, i / 310] for i in range(120)}
    assert_png(plot_class_ap({"per_class_AP": per_class, "tiou_thresholds": [0.5, 0.75]}, tmp_path / "ap.png",
                             max_classes=30))


def test_error_breakdown(tmp_path: Path, metrics: Dict[str, Any]) -> None:
    assert metrics["errors"]["num_false_positives"] > 0
    assert_png(plot_error_breakdown(metrics, tmp_path / "err.png"))


def test_error_breakdown_without_false_positives(tmp_path: Path) -> None:
    errs = {"tiou_threshold": 0.5, "num_true_positives": 3, "num_false_positives": 0,
            "counts": {c: 0 for c in ("double_detection", "wrong_label", "localization", "confusion", "background")}}
    assert_png(plot_error_breakdown({"errors": errs}, tmp_path / "err.png"))


def test_metrics_plots_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="per_class_AP"):
        plot_class_ap({"mAP": [0.5]}, tmp_path / "a.png")
    with pytest.raises(DataError, match="errors"):
        plot_error_breakdown({"mAP": [0.5]}, tmp_path / "e.png")
    with pytest.raises(DataError, match="not found"):
        plot_class_ap(tmp_path / "missing.json", tmp_path / "a.png")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        plot_error_breakdown(bad, tmp_path / "e.png")


# ---- training curve -----------------------------------------------------------------------------------------

def test_training_curve(tmp_path: Path) -> None:
    path = write_metrics_jsonl(tmp_path / "metrics.jsonl")
    assert_png(plot_training_curve(path, tmp_path / "train.png"))


def test_training_curve_without_validation_and_truncated_last_line(tmp_path: Path) -> None:
    path = write_metrics_jsonl(tmp_path / "metrics.jsonl", with_val=False)
    with open(path, "a") as fobj:
        fobj.write('{"kind": "train", "st')  # a run killed while writing
    assert_png(plot_training_curve(path, tmp_path / "train.png"))


def test_training_curve_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("")
    with pytest.raises(UserError, match="no training records"):
        plot_training_curve(path, tmp_path / "train.png")
    assert not (tmp_path / "train.png").exists()


def test_training_curve_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        plot_training_curve(tmp_path / "nope.jsonl", tmp_path / "t.png")
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "train", "step": 1, "loss": 1.0}\nnot json\n{"kind": "epoch"}\n')
    with pytest.raises(DataError, match="line 2"):
        plot_training_curve(path, tmp_path / "t.png")


# ---- the command --------------------------------------------------------------------------------------------

def parse(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rdfa-s6")
    sub = parser.add_subparsers(dest="command")
    visualize.register(sub)
    return parser.parse_args(["visualize"] + argv)


def run_cli(argv: List[str]) -> int:
    args = parse(argv)
    return args.func(args)


def test_command_help_lists_every_option() -> None:
    parser = argparse.ArgumentParser(prog="rdfa-s6")
    sub = parser.add_subparsers(dest="command")
    p = visualize.register(sub)
    text = p.format_help()
    for opt in ("--gt", "--pred", "--out", "--subset", "--video-ids", "--num-videos", "--top-k", "--error-tiou",
                "--tiou", "--metrics", "--run"):
        assert opt in text
    assert "(default: 5)" in text  # ArgumentDefaultsHelpFormatter


def test_command_hand_made(tmp_path: Path, files: Dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_metrics_jsonl(run_dir / "metrics.jsonl")
    out = tmp_path / "plots"
    assert run_cli(["--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(out), "--subset", "test",
                    "--video-ids", "v3", "v1", "--run", str(run_dir)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["class_ap.png", "error_breakdown.png", "pr_curves_tiou0.50.png", "timeline_v1.png",
                     "timeline_v3.png", "training_curve.png"]
    for p in out.iterdir():
        assert_png(p)
    printed = capsys.readouterr().out
    assert "6 files written" in printed and str(out / "timeline_v3.png") in printed


def test_command_with_metrics_file(tmp_path: Path, files: Dict[str, Path], metrics: Dict[str, Any]) -> None:
    mpath = tmp_path / "metrics.json"
    mpath.write_text(json.dumps(metrics))
    out = tmp_path / "plots"
    assert run_cli(["--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(out),
                    "--metrics", str(mpath), "--num-videos", "1", "--error-tiou", "0.3", "--top-k", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["class_ap.png", "error_breakdown.png",
                                                     "pr_curves_tiou0.30.png", "timeline_v1.png"]


@pytest.mark.parametrize("extra, match", [
    (["--video-ids", "nope"], "not in subset"),
    (["--top-k", "0"], "--top-k"),
    (["--num-videos", "0"], "--num-videos"),
    (["--error-tiou", "0"], "--error-tiou"),
    (["--tiou", "0"], "--tiou"),
    (["--run", "/nonexistent/run"], "metrics.jsonl"),
    (["--subset", "nosuchsplit"], "no video of subset"),
    (["--metrics", "/nonexistent/m.json"], "not found"),
])
def test_command_bad_input(tmp_path: Path, files: Dict[str, Path], extra: List[str], match: str) -> None:
    with pytest.raises(UserError, match=match):
        run_cli(["--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(tmp_path / "o")] + extra)


def test_command_out_is_a_file(tmp_path: Path, files: Dict[str, Path]) -> None:
    (tmp_path / "o").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        run_cli(["--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(tmp_path / "o")])


def test_command_on_shared_data(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pred = shared_data / "evalcases" / "visible-easy" / "predictions.json"
    if not pred.is_file():
        pytest.skip(f"{pred} not found")
    out = tmp_path / "viz"
    assert run_cli(["--gt", str(shared_data / "thumos14.json"), "--pred", str(pred), "--out", str(out),
                    "--subset", "Test", "--num-videos", "2"]) == 0
    written = sorted(p.name for p in out.iterdir())
    timelines = [n for n in written if n.startswith("timeline_")]
    assert len(timelines) == 2
    assert {"pr_curves_tiou0.50.png", "class_ap.png", "error_breakdown.png"} <= set(written)
    for name in written:
        assert_png(out / name)
    printed = capsys.readouterr().out
    assert f"{len(written)} files written" in printed


def test_command_without_ground_truth_draws_detections_alone(tmp_path: Path, files: Dict[str, Path],
                                                             capsys: pytest.CaptureFixture) -> None:
    """`infer` output has no ground truth: timelines of the detections alone, no evaluation plots."""
    out = tmp_path / "plots"
    assert run_cli(["--pred", str(files["pred"]), "--out", str(out), "--num-videos", "2"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and all(n.startswith("timeline_") for n in names)
    for p in out.iterdir():
        assert_png(p)
    with pytest.raises(UserError, match="--video-ids: nope not in"):
        run_cli(["--pred", str(files["pred"]), "--out", str(out), "--video-ids", "nope"])


def test_timeline_without_ground_truth_has_no_ground_truth_row(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    captured = {}
    real = plt.subplots

    def spy(*a, **k):
        fig, ax = real(*a, **k)
        captured["ax"] = ax
        return fig, ax

    plt.subplots = spy
    try:
        plot_timeline("v", None, [(1.0, 2.0, "a", 0.9), (3.0, 4.0, "b", 0.5)], 10.0, tmp_path / "t.png")
    finally:
        plt.subplots = real
    labels = [t.get_text() for t in captured["ax"].get_yticklabels()]
    assert labels == ["a (top 1/1)", "b (top 1/1)"]


# ---- issue 22, pictures: colours, ticks, labels, words ------------------------------------------------------

@pytest.fixture()
def drawn(monkeypatch: pytest.MonkeyPatch) -> List[Any]:
    """The figures the plots draw, laid out (canvas drawn) just before they are saved and closed; each keeps its
    renderer as ``fig.renderer`` for measuring text."""
    from rdfa_s6.viz import eval_plots, mpl, pr_curves, timeline

    figures: List[Any] = []

    def keep(fig, out_png, dpi=120):
        fig.canvas.draw()
        fig.renderer = fig.canvas.get_renderer()
        figures.append(fig)
        return mpl.save_png(fig, out_png, dpi)

    for module in (eval_plots, pr_curves, timeline):
        monkeypatch.setattr(module, "save_png", keep)
    return figures


def test_class_colour_depends_on_the_name_alone(tmp_path: Path, drawn: List[Any]) -> None:
    """Blink has one colour whatever the other classes and their order: in class_colors and in two timelines."""
    from matplotlib.colors import to_hex

    from rdfa_s6.viz.mpl import class_colors

    first = to_hex(class_colors(["Blink", "Run"])["Blink"])
    assert to_hex(class_colors(["Run", "Jump", "Swim", "Blink"])["Blink"]) == first
    names = [f"class{i}" for i in range(30)] + ["Blink", "Ünïcødé 跳水", "$x$"]
    assert class_colors(names) == class_colors(names[::-1])
    for names in (["Blink", "Run"], ["Zebra", "Run", "Jump", "Blink"]):
        plot_timeline("v", [(1.0, 3.0, "Blink")], [(1.0, 3.0, "Blink", 0.9), (5.0, 6.0, "Run", 0.8)], 10.0,
                      tmp_path / "t.png", class_names=names)
    legends = [{t.get_text(): to_hex(h.get_facecolor()) for t, h in
                zip(fig.axes[0].get_legend().get_texts(), fig.axes[0].get_legend().legend_handles)}
               for fig in drawn]
    assert legends[0]["Blink"] == legends[1]["Blink"] == first


def test_class_colour_clashes_are_settled_by_the_names() -> None:
    """Two classes with the same own colour: the smaller hash keeps it, the other moves to another family; a
    class of a third family changes neither; up to 9 classes are of 9 families, up to 27 of 27 colours."""
    from rdfa_s6.viz.colors import FAMILIES, PALETTE, SHADES, class_colors, name_hash, own_color

    def family(colour: str) -> int:
        return PALETTE.index(colour) // SHADES

    slots: Dict[int, List[str]] = {}
    for i in range(300):
        slots.setdefault(name_hash(f"c{i}") % len(PALETTE), []).append(f"c{i}")
    a, b = sorted(next(v for v in slots.values() if len(v) >= 2)[:2], key=name_hash)
    pair = class_colors([b, a])
    assert pair[a] == own_color(a) and family(pair[b]) != family(pair[a])
    c = next(v[0] for v in slots.values() if family(own_color(v[0])) not in {family(x) for x in pair.values()})
    assert class_colors([c, b, a]) == {**pair, c: own_color(c)}
    names = [f"c{i}" for i in range(300)]
    for n in (len(FAMILIES), len(PALETTE)):
        colours = class_colors(names[:n]).values()
        assert len({family(x) if n <= len(FAMILIES) else x for x in colours}) == n
    assert set(class_colors(names).values()) == set(PALETTE)


def test_class_ap_value_labels_clear_the_average_line(tmp_path: Path, drawn: List[Any]) -> None:
    """No text on the axes crosses the dashed average line (measured in display coordinates), also a bar
    ending just short of it and the note of a gap."""
    per_class = {"Blink": [0.48], "Run": [0.8], "Jump": [0.51], "HighJump": [0.452], "Swim": [0.2]}
    plot_class_ap({"per_class_AP": per_class, "average_mAP": 0.4935, "tiou_thresholds": [0.5]}, tmp_path / "a.png")
    many = {f"class{i:03d}": [i / 130] for i in range(120)}
    plot_class_ap({"per_class_AP": many, "tiou_thresholds": [0.5]}, tmp_path / "b.png", max_classes=30)
    for fig in drawn:
        ax = fig.axes[0]
        renderer = fig.renderer
        (line,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        x = ax.transData.transform((line.get_xdata()[0], 0.0))[0]
        assert len(ax.texts) >= 5
        for text in ax.texts:
            box = text.get_window_extent(renderer)
            assert not box.x0 - 2 < x < box.x1 + 2, (text.get_text(), box, x)


def test_error_breakdown_has_whole_count_ticks_and_says_what_g_is(tmp_path: Path, drawn: List[Any]) -> None:
    errs = {"tiou_threshold": 0.5, "num_true_positives": 1, "num_false_positives": 4,
            "counts": {"double_detection": 1, "wrong_label": 0, "localization": 2, "confusion": 0, "background": 1}}
    plot_error_breakdown({"errors": errs}, tmp_path / "err.png")
    fig = drawn[0]
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    title = fig._suptitle.get_text()
    assert "top-G" not in title and "G best-scored detections of each class" in title
    assert "number of ground-truth events" in title and "1 true positive " in title


def test_counts_in_figures_agree_with_their_noun(tmp_path: Path, drawn: List[Any]) -> None:
    plot_timeline("v", [(1.0, 3.0, "Blink")], [(1.0, 3.0, "Blink", 0.9)], 10.0, tmp_path / "t.png", top_k_per_class=1)
    plot_class_ap({"per_class_AP": {"Blink": [0.5]}}, tmp_path / "a.png")
    gt = {"database": {"v": {"subset": "test", "annotations": [{"label": "Blink", "segment": [1.0, 3.0]}]}}}
    plot_pr_curves(gt, {"results": {"v": [{"segment": [1.0, 3.0], "label": "Blink", "score": 0.9}]}},
                   tmp_path / "pr.png")
    title = drawn[0].axes[0].get_title()
    assert "1 ground-truth event;" in title and "top 1 detection per class" in title
    assert "(1 class)" in drawn[1].axes[0].get_title()
    assert "over 1 class\n" in drawn[2]._suptitle.get_text()
