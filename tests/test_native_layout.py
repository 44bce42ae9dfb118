"""The ctypes mirrors of ``ssm/native.py`` are checked against the C side's ``sizeof`` and field offsets when the
kernel library loads (``rdfa_struct_layout`` in ``csrc/selective_scan.cpp``)."""
from __future__ import annotations

import ctypes

import pytest

from rdfa_s6.ssm import native

pytestmark = pytest.mark.skipif(not native.is_available(), reason="the native kernel does not build here")


def test_the_mirrors_match_the_c_structs():
    lib = native.library()  # loading ran check_layouts already; check again, field by field
    for which, mirror in enumerate(native._MIRRORS):
        assert lib.rdfa_struct_layout(which).decode() == native.mirror_layout(mirror)
    native.check_layouts(lib)


def _drifted(drop: str) -> type:
    """ConvParams' mirror without field ``drop`` (forgetting a field on the Python side), or with a wider last
    field (``drop=""``: a field retyped)."""
    fields = [(n, t) for n, t in native._ConvParams._fields_ if n != drop]
    if not drop:
        fields[-1] = (fields[-1][0], ctypes.c_int64 * 3)
    return type("_ConvParams", (ctypes.Structure,), {"_fields_": fields})


@pytest.mark.parametrize("drop, says", [
    ("x_coff", "19 fields in C, 18 in the mirror"),
    ("nk", "field nk@24 in C, kmax@24 in the mirror"),
    ("", "sizeof is 152 bytes in C, 160 in the mirror"),
])
def test_a_drifted_mirror_is_refused_naming_the_field(monkeypatch, drop, says):
    monkeypatch.setattr(native, "_MIRRORS", (native._ScanParams, _drifted(drop)))
    with pytest.raises(native.LayoutMismatch, match="struct ConvParams of selective_scan.cpp does not match") as err:
        native.check_layouts(native.library())
    assert says in str(err.value)


def test_a_mismatch_found_at_load_is_raised_by_every_later_use(monkeypatch):
    monkeypatch.setattr(native, "_mismatch", native.LayoutMismatch("struct ScanParams ... does not match"))
    for _ in range(2):
        with pytest.raises(native.LayoutMismatch):
            native.is_available()
