"""One vocabulary for the command line (issue 22): an option name means one thing in every command.

The test walks every sub-command's parser. Wherever one option name (or one positional's name) appears in two
commands, its type, choices, default, nargs, action and metavar must agree, and so must its help's "family"
(the help text up to its first ':', '(', ';' or ','), unless the difference is listed in :data:`EXCEPTIONS`
with its reason. Old spellings stay accepted for one release and print one deprecation line
(:data:`DEPRECATED`).
"""
from __future__ import annotations

import argparse
import re
from collections import defaultdict
from typing import Any, Dict, List, Tuple

import pytest
from _hostile import run_cli

from rdfa_s6.cli import build_parser

#: (option, field) -> why that field may differ between commands
EXCEPTIONS: Dict[Tuple[str, str], str] = {
    ("--out", "*"): "the command's main output: a file or a folder as each command's help says; never an input",
    ("--batch-size", "family"): "each command batches its own unit: extract clips per backbone call, infer videos per "
                                "forward pass",
    ("--dim", "family"): "synth's feature channels C, bench's scan channels d: both the channel count of what the "
                         "command makes",
    ("--dim", "default"): "synth's small synthetic features, bench's model width",
    ("--fps", "family"): "one quantity (the videos' frame rate as the features see it): extract sets it by resampling, "
                         "infer and export are told it",
    ("--stride", "type"): "extract decides the clip grid in whole frames; infer reads an existing grid, which may be "
                          "fractional after resampling",
    ("--stride", "default"): "extract's grid has a default (4); infer's defaults to the model's data.feat_stride",
    ("--stride", "family"): "the same S (frames between clips), said for the clips extract makes and the rows infer "
                            "reads",
    ("--window", "type"): "as --stride",
    ("--window", "default"): "as --stride (extract 16; infer the model's data.num_frames)",
    ("--window", "family"): "as --stride",
    ("--subset", "default"): "extract names the subset it assigns to new videos (training); evaluate, view and "
                             "visualize the split they score (test)",
    ("--subset", "family"): "as the default",
    ("--precision", "choices"): "train and extract also offer fp16 (train with a gradient scaler; extract as half-"
                                "precision autocast of the backbone, for GPUs without bfloat16)",
    ("--precision", "default"): "training stays float32 unless asked (bf16 autocast changes what is learnt); the "
                                "forward passes of the other commands default to auto",
    ("--precision", "family"): "as the default",
    ("--backbone", "default"): "extract must be told which backbone; demo --video defaults to its weight-free "
                               "colour-motion",
    ("--seed", "family"): "one meaning, the seed of the command's randomness: demo and synth draw synthetic data "
                          "with it, import the split by video (--split-fractions)",
    ("POS:overrides", "family"): "train takes any key, test only infer.* and eval.*, check-data and convert the "
                                 "data and model keys they need",
}


def _family(text: str) -> str:
    return re.split(r"[:(;,]", text or "", maxsplit=1)[0].strip().lower()


def _signatures() -> Dict[str, List[Tuple[str, Dict[str, Any]]]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: Dict[str, List[Tuple[str, Dict[str, Any]]]] = defaultdict(list)
    for command, cmd_parser in sub.choices.items():
        for action in cmd_parser._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue  # --help, and the deprecated spellings (hidden)
            name = max(action.option_strings, key=len) if action.option_strings else f"POS:{action.dest}"
            found[name].append((command, {
                "type": getattr(action.type, "__name__", action.type), "choices": tuple(action.choices or ()),
                "default": action.default, "nargs": action.nargs, "action": type(action).__name__,
                "metavar": action.metavar, "family": _family(action.help)}))
    return found


def _clashes() -> List[str]:
    problems = []
    for name, uses in sorted(_signatures().items()):
        if len(uses) < 2:
            continue
        for field in ("type", "choices", "default", "nargs", "action", "metavar", "family"):
            if (name, "*") in EXCEPTIONS or (name, field) in EXCEPTIONS:
                continue
            values = {repr(sig[field]) for _, sig in uses}
            if len(values) > 1:
                problems.append(f"{name} {field}: " + "; ".join(f"{c}={sig[field]!r}" for c, sig in uses))
    return problems


def test_every_option_name_has_one_meaning():
    assert not _clashes(), "\n".join(_clashes())


def test_every_exception_is_still_needed():
    """An exception that no longer matches a difference is stale: remove it."""
    signatures = _signatures()
    stale = []
    for (name, field), _reason in EXCEPTIONS.items():
        uses = signatures.get(name, [])
        fields = ("type", "choices", "default", "nargs", "action", "metavar", "family") if field == "*" else (field,)
        if len(uses) < 2 or all(len({repr(sig[f]) for _, sig in uses}) == 1 for f in fields):
            stale.append((name, field))
    assert not stale, stale


#: (old command line, new command line): the old spelling parses to what the new one does, with one note
DEPRECATED: List[Tuple[List[str], List[str]]] = [
    (["extract", "v.mp4", "--out", "o", "--backbone", "r3d_18", "--weights", "w.pth"],
     ["extract", "v.mp4", "--out", "o", "--backbone", "r3d_18", "--backbone-weights", "w.pth"]),
    (["convert", "o.pth", "out", "--weights", "model"], ["convert", "o.pth", "out", "--weight-set", "raw"]),
    (["convert", "o.pth", "out", "--set", "data.input_dim=8", "--set", "data.num_classes=3"],
     ["convert", "o.pth", "out", "data.input_dim=8", "data.num_classes=3"]),
    (["export", "r.json", "--format", "csv", "--out", "o.csv", "--video", "a", "b"],
     ["export", "r.json", "--format", "csv", "--out", "o.csv", "--video-ids", "a", "b"]),
    (["visualize", "--pred", "r.json", "--out", "f", "--videos", "a"],
     ["visualize", "--pred", "r.json", "--out", "f", "--video-ids", "a"]),
    (["visualize", "--pred", "r.json", "--out", "f", "--eval-tiou", "0.5:0.95:0.05"],
     ["visualize", "--pred", "r.json", "--out", "f", "--tiou", "0.5:0.95:0.05"]),
    (["synth", "s", "--videos", "3"], ["synth", "s", "--train-videos", "3"]),
]


def _parse(argv: List[str]) -> Dict[str, Any]:
    args = vars(build_parser().parse_args(argv))
    args.pop("func", None)
    if "set_overrides" in args:  # the deprecated --set lands beside the positional overrides
        args["overrides"] = [*args["overrides"], *args.pop("set_overrides")]
    return args


@pytest.mark.parametrize("old, new", DEPRECATED, ids=[" ".join(o[:1] + [a for a in o if a.startswith("--")][-1:])
                                                       for o, _ in DEPRECATED])
def test_old_spellings_still_work_with_one_deprecation_line(old, new, capsys):
    assert _parse(old) == _parse(new)
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "deprecated" in ln]
    assert notes and all(ln.startswith(f"rdfa-s6 {old[0]}: note: ") for ln in notes), notes
    assert not [ln for ln in capsys.readouterr().err.splitlines() if ln]  # nothing more
    _parse(new)
    assert "deprecated" not in capsys.readouterr().err


def test_old_spellings_are_hidden_from_help():
    for old, _new in DEPRECATED:
        spelled = next(a for a in old if a.startswith("--") and a not in ("--out", "--format", "--pred", "--backbone"))
        sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
        assert not re.search(re.escape(spelled) + r"(?![\w-])", sub.choices[old[0]].format_help()), (old[0], spelled)


def test_an_override_written_as_an_option_gets_a_hint(tmp_path):
    outcome = run_cli(["train", "demo", "--out", tmp_path / "r", "--train.epochs=1"])
    assert outcome.rc == 2
    assert "usage: rdfa-s6 train" in outcome.err
    assert "config overrides are written key=value without dashes: train.epochs=1" in outcome.err


def test_the_vocabulary_of_the_python_api_matches_the_command_line():
    """Detector.from_pretrained names the weight set as convert does (weight_set), and the old keyword still
    works with a DeprecationWarning."""
    import inspect

    from rdfa_s6 import Detector

    params = inspect.signature(Detector.from_pretrained).parameters
    assert "weight_set" in params and "device" in params and params["device"].default == "auto"


def test_the_old_weights_keyword_still_loads_with_a_deprecation_warning(tmp_path):
    from rdfa_s6 import Detector
    from rdfa_s6.checkpoint import save_checkpoint
    from rdfa_s6.config import load_config
    from rdfa_s6.models import build_detector

    cfg = load_config("demo", ["model.embed_dim=16", "model.stem.recurrences=1", "model.branch.levels=2",
                               "model.stem.chan_pool_len=16", "model.regression_ranges=[[0,4],[4,8],[8,10000]]",
                               "data.input_dim=6", "data.num_classes=2"])
    save_checkpoint(tmp_path / "ckpt", build_detector(cfg), cfg, meta={"label_names": {"0": "a", "1": "b"}})
    new = Detector.from_pretrained(tmp_path / "ckpt", device="cpu", weight_set="ema")
    with pytest.warns(DeprecationWarning, match="weight_set"):
        old = Detector.from_pretrained(tmp_path / "ckpt", device="cpu", weights="model")
    for a, b in zip(new.model.state_dict().values(), old.model.state_dict().values()):
        assert (a == b).all()
