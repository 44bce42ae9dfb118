"""Exclusive output folders: one process at a time writes a run folder.

A process that writes a folder (``train`` and ``train --resume`` their ``--out``, ``demo`` its ``--out``,
``convert`` its output folder) holds ``fcntl.flock`` on ``<folder>/.rdfa-s6.lock`` while it works::

    with hold_folder(out, "rdfa-s6 train demo --out run"):
        ...  # write into out

A second process that asks for the same folder gets :class:`FolderBusy` at once (a ``UserError``: one line,
exit status 2) naming the folder and the holder's PID and command, which the holder wrote into the lock file;
it writes nothing. The kernel drops the lock when the holder ends, however it ends (SIGKILL included), so there
is no stale PID to guess about. Child processes forked by the holder (DataLoader workers) close their copy
of the lock file at once, so the lock goes with the holder, not with its last child.

The holder deletes the lock file when it is done. That is safe because a process that gets the lock checks
that the file it locked is still the one at ``<folder>/.rdfa-s6.lock`` (same inode) and tries again if not.
A folder that the holder created and left empty is removed again. Holding a folder is re-entrant within one
process (the ``train`` command and its ``Trainer`` both hold the run folder). A disk error escaping the
``with`` block (ENOSPC, EDQUOT, EROFS) becomes a :class:`~rdfa_s6.errors.DiskFullError` naming the file or,
when the error does not name one, the folder.
Needs ``fcntl`` (Linux, macOS); elsewhere folders are not locked. Imports nothing heavy.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

from .atomic import open_regular
from .errors import UserError, disk_full

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_FILE = ".rdfa-s6.lock"
#: folders held by this process: real path -> [file descriptor of the lock file, depth, created by it (0/1)]
_HELD: Dict[str, List[int]] = {}
_FORK_HOOK: List[bool] = []


def _forget_in_child() -> None:
    """In a forked child: close the inherited lock files (closing, unlike LOCK_UN, leaves the parent's lock)."""
    for fd, *_ in _HELD.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


class FolderBusy(UserError):
    """Another process holds the folder. ``pid`` (None if unknown), ``command`` and ``host`` of the holder."""

    def __init__(self, folder: Path, pid: Optional[int], command: str, host: str) -> None:
        self.folder, self.pid, self.command, self.host = folder, pid, command, host
        who = f"PID {pid}" if pid is not None else "a process whose PID is not known yet"
        if host and host != socket.gethostname():
            who += f" on {host}"
        if command:
            who += f": {command[:300]}"
        super().__init__(f"{folder} is in use by another process ({who}); wait for it to finish or stop it, or "
                         f"choose another folder")


def default_command() -> str:
    """This process's command line, with ``python -m rdfa_s6`` shown as ``rdfa-s6``."""
    argv = list(sys.argv) or ["?"]
    head = os.path.basename(argv[0])
    if argv[0].endswith(os.path.join("rdfa_s6", "__main__.py")) or head == "rdfa-s6":
        head = "rdfa-s6"
    return " ".join([head, *argv[1:]])


def _read_holder(path: Path) -> List[str]:
    """[pid, host, command] from a lock file; the holder may not have written them yet: wait up to ~1 s."""
    lines: List[str] = []
    for _ in range(50):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        if len(lines) >= 3 and lines[0].strip().isdigit():
            return lines[:3]
        time.sleep(0.02)
    return (lines + ["", "", ""])[:3]


def _busy(folder: Path, path: Path) -> FolderBusy:
    pid, host, command = _read_holder(path)
    return FolderBusy(folder, int(pid) if pid.strip().isdigit() else None, command.strip(), host.strip())


def _acquire(folder: Path, command: str) -> int:
    """Lock ``folder/LOCK_FILE``; the file descriptor that holds the lock."""
    path = folder / LOCK_FILE
    for _ in range(100):
        try:
            fd = open_regular(path, os.O_RDWR | os.O_CREAT)  # a planted symlink is refused, never followed
        except FileNotFoundError:  # the previous holder removed the folder it had created: make it again
            folder.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(folder, path) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the previous holder may have deleted the file between our open and our lock: lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n{socket.gethostname()}\n{command}\n".encode("utf-8", "replace"))
            except BaseException:
                _release(fd, path)
                raise
            return fd
        os.close(fd)
    raise RuntimeError(f"could not lock {path}: it was replaced 100 times in a row")


def _release(fd: int, path: Path) -> None:
    try:
        os.unlink(path)  # while still locked: see the module docstring
    except OSError:
        pass
    os.close(fd)  # drops the lock


@contextmanager
def hold_folder(folder: Union[str, Path], command: Optional[str] = None) -> Iterator[Path]:
    """Hold ``folder`` (created if needed) for this process; yields it. See the module docstring.

    Raises :class:`FolderBusy` when another process holds it, :class:`~rdfa_s6.errors.DiskFullError` when it
    cannot be created or locked because the disk is full or read-only, and ``UserError`` for other OS errors.
    """
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{folder}: exists and is not a folder") from None
    except OSError as err:
        raise (disk_full(err, folder) or UserError(f"cannot create folder {folder}: {err.strerror or err}")) from None
    key = os.path.realpath(folder)
    if key in _HELD:
        _HELD[key][1] += 1
    elif fcntl is not None:
        try:
            fd = _acquire(folder, command if command is not None else default_command())
        except OSError as err:
            raise (disk_full(err, folder / LOCK_FILE)
                   or UserError(f"cannot lock {folder / LOCK_FILE}: {err.strerror or err}")) from None
        _HELD[key] = [fd, 1, created]
        if not _FORK_HOOK and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_forget_in_child)
            _FORK_HOOK.append(True)
        log.debug("holding %s", folder)
    try:
        yield folder
    except OSError as err:
        full = disk_full(err, err.filename or folder)
        if full is None:
            raise
        raise full from None
    finally:
        held = _HELD.get(key)
        if held is not None:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[key]
                _release(held[0], folder / LOCK_FILE)
                if held[2]:  # a refused or failed command leaves no empty folder behind
                    try:
                        os.rmdir(folder)
                    except OSError:
                        pass


def is_held(folder: Union[str, Path]) -> bool:
    """Whether this process holds ``folder``."""
    return os.path.realpath(folder) in _HELD
