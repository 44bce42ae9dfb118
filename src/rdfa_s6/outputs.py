"""Output paths a command may write, checked before any work: one guard for every command.

A command names its inputs (the files it reads) and its outputs (files or folders it writes) and calls
:func:`check_outputs` before it starts working. An output is refused, with one line naming both options, when
it *is* one of the inputs: the same path, a path that resolves to it through symlinks or ``..``, or a hard link
to it (same device and inode). An output folder is refused when it is an input file, and a file the command
will write into an output folder is checked the same way with :meth:`OutputGuard.check` when its name is known.
The guard also refuses outputs whose folder cannot be created or written (a one-line error now, not a
traceback after minutes of work). Imports nothing heavy.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

from .errors import UserError
from .messages import shown

PathLike = Union[str, "os.PathLike[str]"]


def _identity(path: Path) -> Tuple[str, Optional[Tuple[int, int]]]:
    """(real path, (device, inode) of the file if it exists)."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        return real, (st.st_dev, st.st_ino)
    except OSError:
        return real, None


@dataclass
class OutputGuard:
    """The inputs of one command run; :meth:`check` refuses an output that is one of them."""

    inputs: Dict[str, str] = field(default_factory=dict)  #: real path -> option that named it
    inodes: Dict[Tuple[int, int], str] = field(default_factory=dict)  #: (device, inode) -> option

    def add_input(self, path: Optional[PathLike], option: str) -> None:
        """Record ``path`` as read through ``option``: an output that is this very file (or folder) is refused.
        A command that reads the files of a folder adds each file it will read."""
        if path is None:
            return
        real, ino = _identity(Path(path))
        self.inputs.setdefault(real, option)
        if ino is not None:
            self.inodes.setdefault(ino, option)

    def _clash(self, path: Path) -> Optional[str]:
        real, ino = _identity(path)
        if real in self.inputs:
            return self.inputs[real]
        if ino is not None and ino in self.inodes:
            return self.inodes[ino]
        return None

    def check(self, path: PathLike, option: str) -> None:
        """UserError if writing the file ``path`` (named by ``option``) would overwrite an input."""
        clash = self._clash(Path(path))
        if clash is not None:
            what = "it" if clash == option else clash
            raise UserError(f"{option} {shown(path)}: is the input {what}; writing it would destroy the input "
                            f"(choose another output path)")


def _nearest_existing(path: Path) -> Path:
    folder = Path(os.path.abspath(path))
    while not os.path.lexists(folder) and folder.parent != folder:
        folder = folder.parent
    return folder


def writable_folder(folder: Path, option: str, path: PathLike) -> None:
    """UserError unless ``folder`` exists as a writable folder, or can be created (its nearest existing parent
    is a writable folder)."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise UserError(f"{option} {shown(path)}: {shown(existing)} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "write into" if existing == Path(os.path.abspath(folder)) else "create folders in"
        raise UserError(f"{option} {shown(path)}: permission denied: cannot {verb} {shown(existing)}")


def check_outputs(outputs: Sequence[Tuple[Optional[PathLike], str, str]],
                  inputs: Iterable[Tuple[Optional[PathLike], str]] = ()) -> OutputGuard:
    """Check a command's outputs before it works; returns the guard for outputs named later.

    ``outputs``: ``(path, option, kind)`` with kind ``"file"`` (a file to write; must not be a folder) or
    ``"folder"`` (a folder to write into; must not be a file); ``None`` paths are skipped. ``inputs``:
    ``(path, option)`` of the files (or folders) the command reads. UserError (one line) if an output is an
    input, is of the wrong kind, or its folder cannot be created or written.
    """
    guard = OutputGuard()
    for path, option in inputs:
        guard.add_input(path, option)
    for path, option, kind in outputs:
        if path is None:
            continue
        p = Path(path)
        if kind == "file":
            if p.is_dir():
                raise UserError(f"{option} {shown(p)}: is a folder; expected a file name")
            guard.check(p, option)
            writable_folder(p.parent if str(p.parent) else Path("."), option, p)
        elif kind == "folder":
            if p.exists() and not p.is_dir():
                raise UserError(f"{option} {shown(p)}: exists and is not a folder")
            guard.check(p, option)
            writable_folder(p, option, p)
        else:  # pragma: no cover  (a programming error)
            raise ValueError(f"kind must be 'file' or 'folder', got {kind!r}")
    return guard


#: errno values of an OSError that the user can fix, with what to tell them (the command line prints one line)
USER_ERRNOS: Dict[int, str] = {
    errno.EACCES: "permission denied", errno.EPERM: "operation not permitted", errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is not a folder", errno.EISDIR: "is a folder",
    errno.ELOOP: "is a symbolic link (refused) or has too many levels of links",
    errno.ENAMETOOLONG: "the name is too long", errno.EEXIST: "exists already",
}


def os_error_message(err: OSError) -> Optional[str]:
    """One line for an OSError the user can fix (permissions, missing folders, symlinks, long names), else None."""
    if err.errno not in USER_ERRNOS:
        return None
    where = err.filename if err.filename is not None else ""
    return f"{shown(where)}: {USER_ERRNOS[err.errno]}" if where != "" else USER_ERRNOS[err.errno]

