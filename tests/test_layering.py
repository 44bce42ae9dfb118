"""Layering rules that keep the command line thin: ``rdfa_s6/commands/`` parses arguments, calls one library
function, prints and writes files; models, tensors, padding and post-processing live in the library."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMMANDS = Path(__file__).resolve().parents[1] / "src" / "rdfa_s6" / "commands"
#: modules a command may not import: tensor code and the pieces of the inference pipeline
FORBIDDEN = ("torch", "numpy", "rdfa_s6.models", "rdfa_s6.ssm.scan", "rdfa_s6.data.transforms",
             "rdfa_s6.data.dataset", "rdfa_s6.infer.predictor", "rdfa_s6.infer.decode", "rdfa_s6.infer.nms")
#: library entry points a command calls (reading an official checkpoint is model code, kept next to the model)
ALLOWED = ("rdfa_s6.models.official",)


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from ..models.x import y  (commands is rdfa_s6.commands)
                base = ["rdfa_s6", "commands"][: max(0, 2 - node.level + 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # from .. import models
                yield node.lineno, f"{module}.{alias.name}"


@pytest.mark.parametrize("path", sorted(COMMANDS.glob("*.py")), ids=lambda p: p.name)
def test_commands_hold_no_model_or_tensor_code(path):
    bad = [f"{path.name}:{line}: {module}" for line, module in _imports(path)
           if any(module == f or module.startswith(f + ".") for f in FORBIDDEN)
           and not any(module == a or module.startswith(a + ".") for a in ALLOWED)]
    assert not bad, "commands/ must call library functions instead of importing " + "; ".join(bad)


def test_the_rule_sees_relative_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from ..models import build_detector\nfrom ..data.dataset import x\nimport torch\n")
    assert [m for _, m in _imports(probe)][:1] == ["rdfa_s6.models"]
    assert any(m == "rdfa_s6.data.dataset" for _, m in _imports(probe))
