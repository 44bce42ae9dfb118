"""The documentation stays true: docs/cli.md is the CLI's current --help, every preset is documented (and only
presets that exist), the worked numbers of docs/custom-data.md are what rdfa_s6 computes, and every command
shown in the docs exists with the options shown."""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import pytest

from rdfa_s6.cli import build_parser
from rdfa_s6.config import list_presets
from rdfa_s6.data.coords import covered_seconds, expected_steps, seconds_to_steps, steps_to_seconds
from rdfa_s6.data.transforms import resized_stride

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def _gen_cli_docs():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------- cli.md
def test_cli_md_is_the_current_help_output():
    diff = _gen_cli_docs().check()
    if diff is not None:
        pytest.fail("docs/cli.md is out of date; regenerate it with `.venv/bin/python scripts/gen_cli_docs.py`:\n"
                    + diff[:3000], pytrace=False)


def test_cli_md_generation_does_not_depend_on_the_terminal_width(monkeypatch):
    gen = _gen_cli_docs()
    monkeypatch.setenv("COLUMNS", "40")
    narrow = gen.render()
    monkeypatch.setenv("COLUMNS", "250")
    assert gen.render() == narrow
    assert os.environ["COLUMNS"] == "250"  # the generator restores the environment


# ----------------------------------------------------------------------------------------------- presets.md
def _documented_presets() -> Tuple[List[str], List[str]]:
    """(names in the overview table, names with their own ``## `name` `` section) of docs/presets.md."""
    text = _read("docs/presets.md")
    overview = text.split("\n## ", 1)[0]
    table = re.findall(r"^\| `([A-Za-z0-9_]+)` \|", overview, flags=re.MULTILINE)
    sections = re.findall(r"^## `([A-Za-z0-9_]+)`\s*$", text, flags=re.MULTILINE)
    return table, sections


def test_every_preset_is_documented_and_every_documented_preset_exists():
    presets = set(list_presets())
    table, sections = _documented_presets()
    assert len(sections) == len(set(sections)), f"a preset has two sections in docs/presets.md: {sections}"
    assert set(sections) - presets == set(), "docs/presets.md has a section for a preset that does not exist"
    assert presets - set(sections) == set(), "a preset in src/rdfa_s6/configs/ has no section in docs/presets.md"
    assert set(table) == presets, "the overview table of docs/presets.md does not list exactly the presets"


# -------------------------------------------------------------------------------------------- custom-data.md
def _resized() -> Tuple[float, float]:
    return resized_stride(1000, 8, 16, 192)


#: the ``>>>`` lines of docs/custom-data.md, each with the library call that must print the line after it
DOCTEST_LINES: List[Tuple[str, Callable[[], object]]] = [
    ("seconds_to_steps(10.0, fps=30, feat_stride=4, num_frames=16)",
     lambda: seconds_to_steps(10.0, fps=30, feat_stride=4, num_frames=16)),
    ("steps_to_seconds(73.0, fps=30, feat_stride=4, num_frames=16)",
     lambda: steps_to_seconds(73.0, fps=30, feat_stride=4, num_frames=16)),
    ("seconds_to_steps(12.5, fps=30, feat_stride=4, num_frames=16)",
     lambda: seconds_to_steps(12.5, fps=30, feat_stride=4, num_frames=16)),
    ("seconds_to_steps(10.0, fps=30, feat_stride=8, num_frames=16)",
     lambda: seconds_to_steps(10.0, fps=30, feat_stride=8, num_frames=16)),
    ("steps_to_seconds(-3.0, fps=30, feat_stride=4, num_frames=16, duration=33.83)",
     lambda: steps_to_seconds(-3.0, fps=30, feat_stride=4, num_frames=16, duration=33.83)),
    ("steps_to_seconds(300.0, fps=30, feat_stride=4, num_frames=16, duration=33.83)",
     lambda: steps_to_seconds(300.0, fps=30, feat_stride=4, num_frames=16, duration=33.83)),
    ("expected_steps(20.0, fps=30, feat_stride=4, num_frames=16)",
     lambda: expected_steps(20.0, fps=30, feat_stride=4, num_frames=16)),
    ("covered_seconds(147, fps=30, feat_stride=4, num_frames=16)",
     lambda: covered_seconds(147, fps=30, feat_stride=4, num_frames=16)),
    ("round(stride, 4), round(window, 4)",
     lambda: (round(_resized()[0], 4), round(_resized()[1], 4))),
    ("round(seconds_to_steps(10.0, fps=30, feat_stride=stride, num_frames=window), 4)",
     lambda: round(seconds_to_steps(10.0, fps=30, feat_stride=_resized()[0], num_frames=_resized()[1]), 4)),
]

#: numbers in the prose of docs/custom-data.md (whitespace collapsed): (pattern with one group, library value)
PROSE_NUMBERS: List[Tuple[str, Callable[[], float]]] = [
    (r"starts at step g = \(10 × 30 − 8\) / 4 = \(300 − 8\) / 4 = \*\*([-\d.]+)\*\*",
     lambda: seconds_to_steps(10.0, 30, 4, 16)),
    (r"step g = 73 is t = \(73 × 4 \+ 8\) / 30 = 300 / 30 = \*\*([-\d.]+)\*\* s",
     lambda: steps_to_seconds(73.0, 30, 4, 16)),
    (r"t = 12\.5 s ends at step \(12\.5 × 30 − 8\) / 4 = 367 / 4 = \*\*([-\d.]+)\*\*",
     lambda: seconds_to_steps(12.5, 30, 4, 16)),
    (r"t = 10 s is step \(300 − 8\) / 8 = \*\*([-\d.]+)\*\*",
     lambda: seconds_to_steps(10.0, 30, 4 * 2, 16)),
    (r"\(20 × 30 − 16\) / 4 \+ 1 = \*\*([-\d.]+)\*\* steps",
     lambda: expected_steps(20.0, 30, 4, 16)),
    (r"\(999 × 8 \+ 16\) / 192 = 8008 / 192 ≈ \*\*([-\d.]+)\*\* frames",
     lambda: _resized()[0]),
    (r"\(300 − 41\.7083 / 2\) / 41\.7083 ≈ \*\*([-\d.]+)\*\*",
     lambda: seconds_to_steps(10.0, 30, *_resized())),
]


@pytest.mark.parametrize("call, compute", DOCTEST_LINES, ids=[c for c, _ in DOCTEST_LINES])
def test_custom_data_library_examples_print_what_the_doc_says(call, compute):
    text = _read("docs/custom-data.md")
    found = re.search(r"^>>> " + re.escape(call) + r"[^\n]*\n([^\n]*)$", text, flags=re.MULTILINE)
    assert found, f"docs/custom-data.md has no example `>>> {call}`"
    assert found.group(1) == repr(compute()), f">>> {call}: the doc says {found.group(1)}, the library {compute()!r}"


@pytest.mark.parametrize("pattern, compute", PROSE_NUMBERS, ids=[p[:40] for p, _ in PROSE_NUMBERS])
def test_custom_data_worked_numbers_match_the_library(pattern, compute):
    text = re.sub(r"\s+", " ", _read("docs/custom-data.md"))
    found = re.search(pattern, text)
    assert found, f"docs/custom-data.md no longer has the worked example matching {pattern!r}"
    assert float(found.group(1)) == pytest.approx(compute(), abs=5e-5), (
        f"docs/custom-data.md says {found.group(1)}, rdfa_s6 computes {compute()}")


# ------------------------------------------------------------------------------------- commands in the docs
#: every document with shell examples (docs/cli.md is --help itself, compared in test_cli_md_is_the_current_help_output)
DOCS_WITH_COMMANDS = ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")
                                             if p.name != "cli.md")


def _shell_commands(text: str) -> Iterator[List[str]]:
    """Tokens of every shell line in the fenced ``bash`` blocks of a Markdown text (continuations joined,
    comments dropped)."""
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                yield tokens


def _rdfa_invocations(tokens: List[str]) -> Iterator[List[str]]:
    """The arguments after ``rdfa-s6`` / ``-m rdfa_s6`` on one command line."""
    for i, tok in enumerate(tokens):
        if tok == "rdfa-s6" or (tok == "rdfa_s6" and i > 0 and tokens[i - 1] == "-m"):
            yield tokens[i + 1:]


def _subparsers() -> Dict[str, object]:
    import argparse

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("rdfa-s6 has no sub-commands")


def test_every_command_in_the_docs_exists_with_the_options_shown():
    import argparse

    subs = _subparsers()
    presets = set(list_presets())
    checked = 0
    for doc in DOCS_WITH_COMMANDS:
        for tokens in _shell_commands(_read(doc)):
            for args in _rdfa_invocations(tokens):
                assert args, f"{doc}: `rdfa-s6` without a command in: {' '.join(tokens)}"
                command = args[0]
                assert command in subs, f"{doc}: unknown command `rdfa-s6 {command}`"
                options = subs[command]._option_string_actions
                for arg in args[1:]:
                    if arg.startswith("--"):
                        name = arg.split("=", 1)[0]
                        assert name in options, f"{doc}: `rdfa-s6 {command}` has no option {arg}"
                        assert options[name].help != argparse.SUPPRESS, (
                            f"{doc}: `rdfa-s6 {command} {name}` is a deprecated spelling (tests/test_vocabulary.py)")
                if command in ("train", "check-data") and len(args) > 1:
                    preset = args[1]
                    if re.fullmatch(r"[a-z0-9_]+", preset):
                        assert preset in presets, f"{doc}: `rdfa-s6 {command} {preset}`: no such preset"
                checked += 1
    assert checked >= 20, f"only {checked} commands found in {DOCS_WITH_COMMANDS}: did the code blocks change?"


def test_readme_links_the_docs():
    readme = _read("README.md")
    for name in ("cli.md", "custom-data.md", "presets.md", "robustness.md", "benchmarks.md", "results.md"):
        assert f"(docs/{name})" in readme, f"README.md does not link docs/{name}"
    for name in ("cli.md", "custom-data.md", "presets.md", "robustness.md"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
