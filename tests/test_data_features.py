"""The feature reader (docs/model.md §2.2): formats, dtypes, errors, and fuzzing with broken files.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rdfa_s6.data.features import FeatureReader
from rdfa_s6.errors import DataError

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------------------------
# FeatureReader (docs/model.md §2.2)
# --------------------------------------------------------------------------------------------------------------
def _tc(t: int = 6, c: int = 3, dtype=np.float16) -> np.ndarray:
    return (np.arange(t * c).reshape(t, c) / 4).astype(dtype)


def test_reader_npy_float16_transposed_and_downsampled(tmp_path):
    arr = _tc()
    np.save(tmp_path / "pre_vid_suf.npy", arr)
    reader = FeatureReader(tmp_path, prefix="pre_", suffix="_suf", ext=".npy")
    feats = reader.load("vid")
    assert feats.dtype == torch.float32 and feats.shape == (3, 6) and feats.is_contiguous()
    torch.testing.assert_close(feats, torch.from_numpy(arr.astype(np.float32).T))
    feats2 = FeatureReader(tmp_path, prefix="pre_", suffix="_suf", ext=".npy", downsample_rate=2).load("vid")
    # steps 0, 2, 4 kept
    torch.testing.assert_close(feats2, torch.from_numpy(arr.astype(np.float32)[[0, 2, 4]].T))


def test_reader_npz(tmp_path):
    arr = _tc(dtype=np.float64)
    np.savez(tmp_path / "a.npz", other=np.zeros((2, 2), np.float32), feats=arr)
    np.savez(tmp_path / "b.npz", x=arr)
    for vid in ("a", "b"):
        feats = FeatureReader(tmp_path, ext=".npz").load(vid)
        assert feats.dtype == torch.float32
        torch.testing.assert_close(feats, torch.from_numpy(arr.astype(np.float32).T))


def test_reader_pt_float16_and_dict(tmp_path):
    arr = torch.from_numpy(_tc())
    torch.save(arr, tmp_path / "a.pt")
    torch.save({"feats": arr}, tmp_path / "b.pt")
    torch.save(arr.to(torch.bfloat16), tmp_path / "c.pt")
    for vid in ("a", "b", "c"):
        feats = FeatureReader(tmp_path, ext=".pt", downsample_rate=3, input_dim=3).load(vid)
        assert feats.dtype == torch.float32 and feats.shape == (3, 2)
        torch.testing.assert_close(feats, arr.float()[::3].t())  # values exact in float16 and bfloat16


def _data_error(reader: FeatureReader, vid: str, *needles: str) -> str:
    with pytest.raises(DataError) as info:
        reader.load(vid)
    msg = str(info.value)
    assert vid in msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def test_reader_errors(tmp_path):
    np.save(tmp_path / "rank3.npy", np.zeros((2, 3, 4), np.float32))
    np.save(tmp_path / "chan.npy", np.zeros((5, 4), np.float32))
    np.save(tmp_path / "int.npy", np.zeros((5, 3), np.int32))
    bad = np.zeros((5, 3), np.float32)
    bad[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    inf = np.zeros((5, 3), np.float32)
    inf[2, 0] = np.inf
    np.save(tmp_path / "inf.npy", inf)
    np.save(tmp_path / "empty.npy", np.zeros((0, 3), np.float32))
    reader = FeatureReader(tmp_path, ext=".npy", input_dim=3)
    _data_error(reader, "missing", "not found")
    _data_error(reader, "rank3", "[T, C]", "(2, 3, 4)")
    _data_error(reader, "chan", "4 channels", "expected 3")
    _data_error(reader, "int", "int32")
    _data_error(reader, "nan", "NaN", "step 3")
    _data_error(reader, "inf", "step 2")
    _data_error(reader, "empty", "zero time steps")
    torch.save(torch.zeros(5, 3, dtype=torch.int64), tmp_path / "int.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    torch.save({"a": torch.zeros(2, 3), "b": torch.zeros(2, 3)}, tmp_path / "two.pt")
    pt = FeatureReader(tmp_path, ext=".pt")
    _data_error(pt, "int", "int64")
    _data_error(pt, "list", "expected a tensor")
    _data_error(pt, "two", "one tensor")
    with pytest.raises(DataError):
        FeatureReader(tmp_path, ext=".h5")
    with pytest.raises(DataError):
        FeatureReader(tmp_path, downsample_rate=0)


class _Exploit:
    """Unpickling this object would create ``marker`` (i.e. run arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_reader_never_unpickles_arbitrary_objects(tmp_path):
    marker = tmp_path / "PWNED"
    torch.save(_Exploit(marker), tmp_path / "zip.pt")                 # torch's zip format
    with open(tmp_path / "legacy.pt", "wb") as fh:                    # a plain pickle
        pickle.dump(_Exploit(marker), fh)
    torch.save({"feats": torch.zeros(2, 3), "evil": _Exploit(marker)}, tmp_path / "mixed.pt")
    np.save(tmp_path / "obj.npy", np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    assert not marker.exists()
    for vid in ("zip", "legacy", "mixed"):
        _data_error(FeatureReader(tmp_path, ext=".pt"), vid)
        assert not marker.exists(), vid
    _data_error(FeatureReader(tmp_path, ext=".npy"), "obj")
    assert not marker.exists()
    # sanity: the payload does work when unpickled without protection
    pickle.loads(pickle.dumps(_Exploit(marker))).close()
    assert marker.exists()


def test_reader_big_endian_npy(tmp_path):
    arr = np.arange(6, dtype=">f4").reshape(3, 2)
    np.save(tmp_path / "be.npy", arr)
    feats = FeatureReader(tmp_path).load("be")
    torch.testing.assert_close(feats, torch.tensor(arr.astype(np.float32).T))


@pytest.mark.parametrize("ext", [".npy", ".npz"])
def test_reader_wrong_container_for_extension(tmp_path, ext):
    buf = io.BytesIO()
    if ext == ".npy":
        np.savez(buf, feats=np.zeros((3, 2), np.float32))
    else:
        np.save(buf, np.zeros((3, 2), np.float32))
    (tmp_path / f"v{ext}").write_bytes(buf.getvalue())
    try:
        FeatureReader(tmp_path, ext=ext).load("v")  # loading it is acceptable too
    except DataError:
        pass


@pytest.mark.parametrize("kind", ["sparse", "float8"])
def test_reader_exotic_pt_tensors(tmp_path, kind):
    t = torch.zeros(3, 2)
    t = t.to_sparse() if kind == "sparse" else t.to(torch.float8_e4m3fn)
    torch.save(t, tmp_path / "v.pt")
    try:
        feats = FeatureReader(tmp_path, ext=".pt").load("v")
        assert feats.dtype == torch.float32 and feats.shape == (2, 3)
    except DataError:
        pass


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _valid_bytes(kind):
    buf = io.BytesIO()
    if kind == "npy":
        np.save(buf, np.zeros((3, 2), np.float32))
    elif kind == "npz":
        np.savez(buf, feats=np.zeros((3, 2), np.float32))
    else:
        torch.save(torch.zeros(3, 2), buf)
    return buf.getvalue()


def _mutated(kind):
    base = _valid_bytes(kind)
    return st.one_of(
        st.binary(max_size=200),
        st.integers(0, len(base)).map(lambda n: base[:n]),
        st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)), min_size=1, max_size=6).map(
            lambda edits: bytes(_apply(base, edits))),
    )


def _apply(base, edits):
    out = bytearray(base)
    for pos, value in edits:
        out[pos] = value
    return out


def _load_only_data_errors(directory: Path, ext: str, data: bytes):
    (directory / f"fuzz{ext}").write_bytes(data)
    try:
        feats = FeatureReader(directory, ext=ext).load("fuzz")
    except DataError:
        return
    assert feats.dtype == torch.float32 and feats.dim() == 2 and torch.isfinite(feats).all()


@FUZZ
@given(data=_mutated("npz"))
def test_fuzz_reader_npz_raises_only_data_error(fuzz_dir, data):
    _load_only_data_errors(fuzz_dir, ".npz", data)


@FUZZ
@given(data=st.binary(max_size=200).filter(lambda b: not b.startswith(b"\x93NUMPY") and not b.startswith(b"PK")))
def test_fuzz_reader_npy_random_bytes_raises_only_data_error(fuzz_dir, data):
    """Random bytes that are neither an .npy header nor a zip: DataError (or, impossibly, success)."""
    _load_only_data_errors(fuzz_dir, ".npy", data)


@FUZZ
@given(data=_mutated("npy"))
@example(data=b"\x93NUMPY\x01\x00\x06\x00{'a':1")
def test_fuzz_reader_npy_header_raises_only_data_error(fuzz_dir, data):
    _load_only_data_errors(fuzz_dir, ".npy", data)


def test_reader_npz_member_with_garbled_header(tmp_path):
    with zipfile.ZipFile(tmp_path / "v.npz", "w") as zf:
        zf.writestr("feats.npy", b"\x93NUMPY\x01\x00\x06\x00{'a':1")
    with pytest.raises(DataError, match="'v'"):
        FeatureReader(tmp_path, ext=".npz").load("v")


@FUZZ
@given(data=_mutated("pt"))
@example(data=b"h\x93")
@example(data=b".")
@example(data=b"J\x00")
def test_fuzz_reader_pt_raises_only_data_error(fuzz_dir, data):
    _load_only_data_errors(fuzz_dir, ".pt", data)


@pytest.mark.parametrize("ext, data", [(".pt", b"\x80\xf0garbage"),
                                       (".npy", b"\x93NUMPY\x01\x00\x10\x00{'a':'\\H'}    \n"),
                                       (".npz", b"PK\x03\x04 not really a zip")])
def test_a_malformed_file_is_one_data_error_and_no_parser_warning(tmp_path, ext, data):
    """torch warns "Detected pickle protocol ..." and numpy's header parser about escapes on garbage, and numpy
    left the file open on a bad zip: the reader names the file once, as a DataError, and closes it."""
    import gc
    import warnings

    (tmp_path / f"v{ext}").write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match="'v'"):
            FeatureReader(tmp_path, ext=ext).load("v")
        gc.collect()  # an unclosed file warns when it is collected
    assert not [str(w.message) for w in caught]
