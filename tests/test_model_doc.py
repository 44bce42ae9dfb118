"""docs/model.md is the reference the code cites: every ``docs/model.md §X.Y`` in the sources and docs names a
section (and, for ``#N`` / ``decision N``, an item) that exists, and no reference to the old, unpublished
design document is left."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
MODEL_MD = ROOT / "docs" / "model.md"
SCANNED = ["src", "tests", "docs", "README.md"]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".txt", ".toml", ".cfg", ".ini", ".json", ".cpp", ".c", ".h"}

#: ``## 3. Model`` / ``### 3.3 The FA-Bi-S6 mixer``
HEADING = re.compile(r"^(?P<hashes>#{2,3}) (?P<num>\d+(?:\.\d+)?)\.? +(?P<title>\S.*)$")
_NUM = r"\d+(?:\.\d+)*"
#: ``docs/model.md §4.7, 8.2 #1``, ``[model.md](model.md) §3.4-3.5``, ``docs/model.md §0.2 decision 6``
REFERENCE = re.compile(
    r"model\.md(?:\]\([^)\s]*\))?\s+§(?P<list>" + _NUM + r"(?:(?:\s*[,\-–]\s*|\s+and\s+)" + _NUM + r")*)"
    r"(?P<item>\s+#\d+|,?\s+decision\s+\d+)?"
)
#: a reference inside docs/model.md itself: ``§3.3``, ``§8.2 #4``
INTERNAL = re.compile(r"§(?P<num>" + _NUM + r")(?P<item>\s+#\d+)?")
#: the name of the design document the comments used to cite (spelt so that this file does not match itself)
OLD_NAME = re.compile(r"\b" + "SP" + r"EC\b")


def _sections() -> Dict[str, Tuple[str, str]]:
    """``{number: (title, body)}`` of every numbered ``##``/``###`` heading of docs/model.md."""
    lines = MODEL_MD.read_text(encoding="utf-8").splitlines()
    found: List[Tuple[str, str, int]] = []
    in_code = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else HEADING.match(line)
        if m:
            found.append((m["num"], m["title"], i))
    out: Dict[str, Tuple[str, str]] = {}
    for k, (num, title, start) in enumerate(found):
        end = found[k + 1][2] if k + 1 < len(found) else len(lines)
        assert num not in out, f"docs/model.md: section {num} appears twice"
        out[num] = (title, "\n".join(lines[start + 1 : end]))
    return out


def _has_item(body: str, item: int) -> bool:
    """A numbered list entry ``N. ...`` or a table row ``| N | ...`` in a section's body."""
    return re.search(rf"^(?:{item}\. |\| {item} \|)", body, flags=re.MULTILINE) is not None


def _text_files() -> Iterator[Path]:
    for entry in SCANNED:
        path = ROOT / entry
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        for p in candidates:
            if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts:
                yield p


def _references() -> List[Tuple[str, int, str, List[str], str]]:
    """Every reference ``(file, line, text, section numbers, item)`` in the scanned files."""
    refs = []
    for path in _text_files():
        text = path.read_text(encoding="utf-8")
        for m in REFERENCE.finditer(text):
            nums = [n for n in re.split(r"\s*[,\-–]\s*|\s+and\s+", m["list"]) if n]
            line = text.count("\n", 0, m.start()) + 1
            refs.append((str(path.relative_to(ROOT)), line, m.group(0), nums, (m["item"] or "").strip()))
    return refs


def test_headings_are_numbered_and_nested():
    sections = _sections()
    tops = [n for n in sections if "." not in n]
    assert tops == [str(i) for i in range(len(tops))], f"top-level sections are not 0, 1, 2, ...: {tops}"
    for num in sections:
        if "." in num:
            assert num.split(".")[0] in sections, f"section {num} has no parent section"
    for needed in ("2.4", "3.3", "4.7", "8.1", "8.2", "8.3"):  # the units, the mixer, the official defects
        assert needed in sections, f"docs/model.md has no section {needed}"


def test_every_reference_names_an_existing_section():
    sections = _sections()
    refs = _references()
    # the code cites the document about 200 times; far fewer means the pattern no longer finds them
    assert len(refs) >= 150, f"only {len(refs)} references to docs/model.md found: did their form change?"
    bad = []
    for where, line, text, nums, item in refs:
        for num in nums:
            if num not in sections:
                bad.append(f"{where}:{line}: {text!r}: no section {num}")
        if item:
            n = int(re.search(r"\d+", item).group(0))
            target = "0.2" if "decision" in item else nums[-1]
            if target not in sections or not _has_item(sections[target][1], n):
                bad.append(f"{where}:{line}: {text!r}: section {target} has no item {n}")
    assert not bad, "references to missing parts of docs/model.md:\n" + "\n".join(bad)


def test_references_inside_model_md_exist():
    sections = _sections()
    text = MODEL_MD.read_text(encoding="utf-8")
    bad = []
    for m in INTERNAL.finditer(text):
        if m["num"] not in sections:
            bad.append(f"§{m['num']}")
        elif m["item"] and not _has_item(sections[m["num"]][1], int(m["item"].strip()[1:])):
            bad.append(m.group(0))
    assert not bad, f"docs/model.md refers to parts of itself that do not exist: {bad}"


def test_markdown_links_to_model_md_resolve():
    for path in _text_files():
        if path.suffix != ".md":
            continue
        for target in re.findall(r"\]\(([^)\s#]*model\.md)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            assert (path.parent / target).resolve() == MODEL_MD, f"{path.relative_to(ROOT)}: link {target!r}"


def test_no_reference_to_the_unpublished_design_document_remains():
    stale = []
    for path in _text_files():
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OLD_NAME.search(line):
                stale.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not stale, ("references to a document that is not in the repository; cite docs/model.md §X.Y "
                       "instead:\n" + "\n".join(stale))


def test_readme_lists_model_md():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/model.md)" in readme, "README.md does not link docs/model.md"
