"""The hostile-input harness (issue 21): run a command in process on inputs a user (or an attacker) chose, and
check what the security review checks.

``outcome = run_cli(argv)`` runs ``rdfa_s6.cli.main`` with stdout and stderr captured; an exception escaping it
(a traceback for the user) fails the test. :func:`assert_refused` checks exit status 2 with exactly one line on
stderr, of the form ``rdfa-s6 CMD: error: ...``. :func:`snapshot` and :func:`assert_unchanged` check that every
file that existed before the command is byte-identical after it (and no symlink target was written).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

from rdfa_s6.cli import main


@dataclass
class Outcome:
    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> List[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


def run_cli(argv: Sequence[Union[str, os.PathLike]]) -> Outcome:
    """``rdfa-s6 *argv`` in process; captured output. A traceback (an exception out of ``main``) fails."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([os.fspath(a) for a in argv])
        except SystemExit as exit_:  # argparse's own errors (usage + one error line), exit status 2
            rc = int(exit_.code or 0)
    return Outcome(rc, out.getvalue(), err.getvalue())


def assert_refused(outcome: Outcome, *needles: str, command: Optional[str] = None) -> str:
    """Exit status 2, one stderr line ``rdfa-s6 CMD: error: ...`` holding every needle; returns the line."""
    lines = outcome.err_lines
    assert outcome.rc == 2, (outcome.rc, outcome.err[-2000:])
    errors = [ln for ln in lines if ": error: " in ln]
    assert len(errors) == 1, lines
    line = errors[0]
    assert line.startswith("rdfa-s6 " + (command or "")), line
    assert "Traceback" not in outcome.err, outcome.err
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def snapshot(*roots: Union[str, Path]) -> Dict[str, bytes]:
    """Path -> sha256 of every regular file under ``roots`` (symlinks recorded by their target's text)."""
    state: Dict[str, bytes] = {}
    for root in roots:
        root = Path(root)
        paths: Iterable[Path] = [root] if not root.is_dir() or root.is_symlink() else root.rglob("*")
        for p in paths:
            if p.is_symlink():
                state[str(p)] = b"link:" + os.fsencode(os.readlink(p))
            elif p.is_file():
                state[str(p)] = hashlib.sha256(p.read_bytes()).digest()
    return state


def assert_unchanged(before: Dict[str, bytes], *roots: Union[str, Path]) -> None:
    """Every file of ``before`` still exists with the same bytes (new files are allowed)."""
    after = snapshot(*roots)
    changed = [p for p, h in before.items() if after.get(p) != h]
    assert not changed, f"changed or removed: {changed}"
