"""Atomic, durable file writes: a crash or a power cut never leaves a half-written file under the final name.

Each file is written to a temporary name in the same folder, flushed and fsynced, moved into place with
``os.replace``, and then the folder itself is fsynced, so that the new entry survives a power cut too. Used for
checkpoints, results, metrics, figures, synthetic videos and the compiled scan. A write that fails because the
disk is full, over quota or read-only raises :class:`~rdfa_s6.errors.DiskFullError` naming the file (and leaves
no temporary file). Imports nothing heavy (no torch), so the light commands (``evaluate``, ``visualize``) can
use it.

No write follows a symlink that we did not create: ``os.replace`` replaces a link at the final name (never its
target), temporary names are created with ``O_EXCL``, and the few files written in place (the run-folder lock,
the metrics log that is appended to) are opened by :func:`open_regular`, which refuses links and anything that is
not a regular file.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Union

from .errors import UserError, disk_full
from .messages import shown

#: fsync errors that only mean "folders cannot be fsynced here" (some network and FUSE file systems)
_NO_DIR_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EISDIR}


def open_regular(path: Union[str, Path], flags: int, mode: int = 0o644) -> int:
    """``os.open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode)`` for a file written in place: a symlink at
    ``path`` (planted to make us overwrite its target) and anything but a regular file (a FIFO, a device) are
    refused with a UserError naming the path. Returns the file descriptor."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | nofollow | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0), mode)
    except OSError as err:
        if err.errno == errno.ELOOP or (nofollow and os.path.islink(path)):
            raise UserError(f"{shown(path)}: is a symbolic link; refusing to write through it (remove it)") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{shown(path)}: is not a regular file; refusing to write it (remove it)")
        if getattr(os, "O_NONBLOCK", 0):  # only there so that opening a planted FIFO cannot block
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def fsync_dir(path: Union[str, Path]) -> None:
    """Make a folder's entries (new files, renames, deletions) durable. A no-op where folders cannot be opened
    or fsynced; a full disk raises DiskFullError."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:
        full = disk_full(err, path)
        if full is not None:
            raise full from None
        if err.errno not in _NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: Union[str, Path], suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path in ``path``'s folder (created if needed) for a writer that wants a file name (an encoder,
    a compiler); when the block ends without error the file is fsynced, moved to ``path`` and the folder fsynced.
    On an error the temporary file is removed. ``suffix`` ends the temporary name (``.mp4`` where the writer picks
    the format from it). DiskFullError naming ``path`` when the disk is full or read-only."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as err:
        full = disk_full(err, path)
        if full is not None:
            raise full from None
        raise
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary readable files
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        full = disk_full(err, path)
        if full is not None:
            raise full from None
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to ``path`` (its folder is created if needed): temporary file, fsync, ``os.replace``,
    fsync of the folder. DiskFullError naming ``path`` when the disk is full or read-only."""
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: Union[str, Path], obj: Any, indent: int = 2) -> None:
    """``json.dumps(obj, indent=indent)`` plus a newline, written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=indent) + "\n").encode("utf-8"))
