"""Errors a user can fix: the command line prints them as one line and exits with status 2."""
from __future__ import annotations

import errno
import os
from typing import Optional, Union


class UserError(Exception):
    """Bad input from the user (a file, a field, an option). The message names what is wrong and what was expected."""


class DataError(UserError):
    """A data file (annotations, features, predictions, checkpoint) is missing or malformed."""


class MetricsError(DataError):
    """A metrics dict (``rdfa-s6 evaluate --json``) lacks or mangles a field a plot needs. ``detail`` says which
    and what was expected; the message is ``metrics: <detail>``, and a caller that knows the file says it
    again with the file's name (``--metrics FILE: <detail>``) from the field, not from the message text."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"metrics: {detail}")
        self.detail = detail


class ConfigError(UserError):
    """A configuration key is unknown or has the wrong type or value."""


#: errno values that mean "this disk cannot take the write", with what the user is told
DISK_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the disk is read-only"}


class DiskFullError(UserError):
    """A write failed because the disk is full, over its quota or read-only (ENOSPC, EDQUOT, EROFS).

    ``path`` is where the write failed (a file or a folder), ``reason`` the part of the message that says why
    (``"the disk is full (ENOSPC)"``), so that callers can say it again with more context.
    """

    def __init__(self, message: str, path: Optional[str] = None, reason: str = "") -> None:
        super().__init__(message)
        self.path, self.reason = path, reason


def disk_full(err: BaseException, path: Union[str, "os.PathLike[str]", None] = None) -> Optional[DiskFullError]:
    """The :class:`DiskFullError` for an ``OSError`` that means "no space" (ENOSPC, EDQUOT, EROFS), else None.

    ``path`` names where the write failed; without it the error's own file name is used. A DiskFullError is
    returned as it is. A short write that reports no errno (numpy's ``tofile``) counts when the disk of
    ``path`` is read-only or has less than 1 MiB free.
    """
    if isinstance(err, DiskFullError):
        return err
    if not isinstance(err, OSError):
        return None
    where = os.fspath(path) if path is not None else err.filename
    code = err.errno
    if code is None and where is not None:  # numpy's tofile: "6784 requested and 992 written", no errno
        code = _disk_state(where)
    if code not in DISK_ERRNOS:
        return None
    reason = f"{DISK_ERRNOS[code]} ({errno.errorcode[code]})"
    message = f"cannot write {where}: {reason}" if where is not None else f"a write failed: {reason}"
    return DiskFullError(message, None if where is None else str(where), reason)


def _disk_state(path: Union[str, "os.PathLike[str]"]) -> Optional[int]:
    """EROFS if the file system holding ``path`` is read-only, ENOSPC if less than 1 MiB is free, else None
    (for short writes that report no errno)."""
    folder = os.path.abspath(os.fspath(path))
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    if st.f_flag & getattr(os, "ST_RDONLY", 1):
        return errno.EROFS
    return errno.ENOSPC if st.f_bavail * st.f_frsize < 2**20 else None
