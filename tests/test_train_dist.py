"""Errors between processes travel as fields (``train.dist.error_fields``), never as message text to search."""
from __future__ import annotations

import pickle

from rdfa_s6.errors import DiskFullError, UserError
from rdfa_s6.train.dist import DistInfo, broadcast_error, error_fields, error_from_fields


def _travel(error):
    """What another process rebuilds from ``error``'s fields (pickled, as the collectives do)."""
    return error_from_fields(pickle.loads(pickle.dumps(error_fields(error))))


def test_a_disk_full_error_keeps_its_path_and_reason():
    got = _travel(DiskFullError("cannot save checkpoint c: the disk is full (ENOSPC) (c/x)", "c/x",
                                "the disk is full (ENOSPC)"))
    assert isinstance(got, DiskFullError)
    assert (str(got), got.path, got.reason) == ("cannot save checkpoint c: the disk is full (ENOSPC) (c/x)", "c/x",
                                                "the disk is full (ENOSPC)")


def test_the_text_of_a_message_does_not_choose_the_error_class():
    got = _travel(UserError("annotation file a.json: the disk is not the problem"))
    assert type(got) is UserError and str(got) == "annotation file a.json: the disk is not the problem"
    full = _travel(DiskFullError("a write failed", None, "read-only file system (EROFS)"))
    assert isinstance(full, DiskFullError) and full.reason == "read-only file system (EROFS)"


def test_one_process_passes_the_error_itself():
    err = DiskFullError("x", "p", "r")
    assert broadcast_error(err, DistInfo()) is err and broadcast_error(None, DistInfo()) is None
    assert error_fields(None) is None
