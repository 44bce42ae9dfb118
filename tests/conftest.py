"""Shared pytest options: where the read-only public data of ``../shared/data`` lives."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

_DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shared-data",
        default=os.environ.get("RDFA_S6_SHARED_DATA", str(_DEFAULT_SHARED)),
        help="folder with thumos14.json and evalcases/ (default: ../shared/data beside the checkout, "
        "or $RDFA_S6_SHARED_DATA)",
    )


@pytest.fixture(scope="session")
def shared_data(request: pytest.FixtureRequest) -> Path:
    """Path of the shared public data; tests that need it skip with a reason when it is absent."""
    path = Path(request.config.getoption("--shared-data"))
    if not (path / "thumos14.json").is_file():
        pytest.skip(f"shared data not found at {path} (set --shared-data or RDFA_S6_SHARED_DATA)")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a test module, restored after: tiny models run fastest on one thread, and far
    faster than on two when the machine's two cores are busy (OpenMP threads then wait for each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
