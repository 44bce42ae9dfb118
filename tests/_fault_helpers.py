"""Helpers of the fault tests, for any command that writes a folder: a small tmpfs to fill, another process
holding a folder, the one-line error check and a snapshot that shows a folder was not touched.

A command ``X`` that writes a folder ``OUT`` is checked like this (see ``test_faults.py`` for demo and convert)::

    assert_refuses_a_held_folder(["X", ..., "--out", str(tmp_path / "out")], tmp_path / "out", capsys)
    assert_stops_on_a_full_disk(lambda out: ["X", ..., "--out", str(out)], tmp_path / "disk", capsys)

The first runs X while another process holds OUT (exit status 2, one line with the holder's PID, OUT unchanged
byte for byte); the second runs X with OUT on a 96 KiB tmpfs (exit status 2, one line "cannot write
OUT...: the disk is full (ENOSPC)", no temporary file left). Both run the command in-process (``run_cli``).
"""
from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import pytest

PY = sys.executable
_HOLDER = """
import sys, time
from rdfa_s6.runlock import hold_folder
with hold_folder(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextmanager
def small_tmpfs(path: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` KiB mounted at ``path`` (created) for the block; the test is skipped, with the
    reason, where mounting is not allowed (the tests need root or CAP_SYS_ADMIN for this)."""
    path.mkdir(parents=True, exist_ok=True)
    proc = _mount("-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(path))
    if proc.returncode:
        pytest.skip(f"cannot mount a {size_kb} KiB tmpfs at {path} ({proc.stderr.strip() or proc.returncode}): "
                    f"the disk-full tests need root or CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, options: str) -> None:
    """``mount -o remount,OPTIONS`` (e.g. ``size=8192k`` to free space, ``ro`` for a read-only disk)."""
    proc = _mount("-o", f"remount,{options}", str(path))
    assert proc.returncode == 0, f"remount {options} of {path} failed: {proc.stderr}"


def fill(folder: Path, chunk: int = 4096) -> Path:
    """Write a filler file into ``folder`` until the disk is full; returns it (delete it to free the space)."""
    filler = folder / f"filler-{uuid.uuid4().hex[:8]}"
    data = b"\0" * chunk
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(data)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
    return filler


@contextmanager
def holding(folder: Path, command: str = "rdfa-s6 fake-holder") -> Iterator[subprocess.Popen]:
    """Another process holding ``folder`` (``rdfa_s6.runlock.hold_folder``) for the block; it is SIGKILLed
    after. The holder writes ``command`` as its command line."""
    proc = subprocess.Popen([PY, "-c", _HOLDER, str(folder), command], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        line = proc.stdout.readline()
        assert line.strip() == "held", f"the holder process did not get {folder}: {line!r}"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()


def run_cli(argv: Sequence[str], capsys) -> Tuple[int, str]:
    """``rdfa-s6 ARGV`` in this process: (exit status, stderr)."""
    from rdfa_s6.cli import main

    capsys.readouterr()
    status = main(list(argv))
    return status, capsys.readouterr().err


def assert_one_line_error(stderr: str, command: str, *needles: str) -> str:
    """``stderr`` is exactly one line, ``rdfa-s6 COMMAND: error: ...``, holding every needle; returns it."""
    lines: List[str] = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith(f"rdfa-s6 {command}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def snapshot(folder: Path) -> Dict[str, Tuple[int, int, str]]:
    """Every file and folder under ``folder``: relative path -> (size, mtime in ns, sha256 of a file)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(folder))] = (st.st_size if path.is_file() else 0, st.st_mtime_ns, digest)
    return out


def assert_refuses_a_held_folder(argv: Sequence[str], out: Path, capsys) -> str:
    """``rdfa-s6 ARGV`` (which writes ``out``) run while another process holds ``out``: exit status 2, one line
    naming ``out`` and the holder's PID and command, and every file in ``out`` unchanged. Returns the line."""
    out.mkdir(parents=True, exist_ok=True)
    with holding(out, "rdfa-s6 first") as holder:
        before = snapshot(out)
        status, err = run_cli(argv, capsys)
        assert status == 2, err
        line = assert_one_line_error(err, argv[0], f"{out} is in use by another process",
                                     f"PID {holder.pid}: rdfa-s6 first")
        assert snapshot(out) == before, f"rdfa-s6 {argv[0]} changed {out} while another process held it"
    return line


def assert_stops_on_a_full_disk(make_argv: Callable[[Path], Sequence[str]], disk: Path, capsys,
                                size_kb: int = 96) -> str:
    """``rdfa-s6 make_argv(OUT)`` with OUT on a ``size_kb`` tmpfs mounted at ``disk`` (skipped where mounting
    is not allowed): exit status 2, one line saying the disk is full and naming a path under OUT; nothing
    temporary (``.*.tmp``, ``.partial-*``, the lock file) left. Returns the line."""
    with small_tmpfs(disk, size_kb):
        out = disk / "out"
        argv = list(make_argv(out))
        status, err = run_cli(argv, capsys)
        assert status == 2, err
        line = assert_one_line_error(err, argv[0], "the disk is full (ENOSPC)", f"cannot write {out}")
        left = [p for p in disk.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".partial-")
                or p.name == ".rdfa-s6.lock"]
        assert not left, f"left on the full disk: {left}"
    return line
