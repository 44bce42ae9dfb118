"""The evaluator against numbers computed by ActivityNet's official Evaluation/eval_detection.py.

Each folder of ``<shared>/evalcases/`` holds ``predictions.json`` for the Test subset of
``<shared>/thumos14.json`` and ``expected.json`` with the official mAP (and per-class AP) at the THUMOS
thresholds (``thumos_tious``) and the ActivityNet thresholds (``anet_tious``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

import numpy as np
import pytest

from rdfa_s6 import cli
from rdfa_s6.eval import evaluate

TOL = 1e-6
THRESHOLDS = {
    "thumos_tious": np.linspace(0.3, 0.7, 5).tolist(),
    "anet_tious": np.linspace(0.5, 0.95, 10).tolist(),
}


def _case_names(shared_data: Path) -> List[str]:
    """Folders of ``<shared>/evalcases`` with an ``expected.json`` (a placeholder that skips if none)."""
    folder = shared_data / "evalcases"
    names = sorted(p.name for p in folder.iterdir() if (p / "expected.json").is_file()) if folder.is_dir() else []
    return names or ["<no evalcases>"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", _case_names(Path(metafunc.config.getoption("--shared-data"))))


def _case_dir(shared_data: Path, case: str) -> Path:
    folder = shared_data / "evalcases" / case
    if not (folder / "expected.json").is_file():
        pytest.skip(f"no evaluation cases in {shared_data / 'evalcases'}")
    return folder


def _assert_matches(metrics: dict, expected: dict, where: str) -> None:
    assert np.allclose(metrics["tiou_thresholds"], expected["tiou_thresholds"], rtol=0, atol=1e-9), where
    np.testing.assert_allclose(metrics["mAP"], expected["mAP"], rtol=0, atol=TOL, err_msg=f"{where}: mAP")
    assert abs(metrics["average_mAP"] - expected["average_mAP"]) <= TOL, f"{where}: average_mAP"
    if "per_class_AP" in expected:
        assert set(metrics["per_class_AP"]) == set(expected["per_class_AP"]), f"{where}: classes"
        for label, aps in expected["per_class_AP"].items():
            np.testing.assert_allclose(metrics["per_class_AP"][label], aps, rtol=0, atol=TOL,
                                       err_msg=f"{where}: AP of {label}")


@pytest.mark.parametrize("key", sorted(THRESHOLDS))
@pytest.mark.parametrize("gt_policy", ["official", "actionformer"])
def test_matches_official(shared_data: Path, case: str, key: str, gt_policy: str) -> None:
    """THUMOS-14 Test has no zero-length or duplicated events, so both policies give the official numbers."""
    folder = _case_dir(shared_data, case)
    expected = json.loads((folder / "expected.json").read_text())
    metrics = evaluate(folder / "predictions.json", shared_data / "thumos14.json", subset="Test",
                       tiou_thresholds=THRESHOLDS[key], gt_policy=gt_policy)
    _assert_matches(metrics, expected[key], f"{case} {key} {gt_policy}")
    json.dumps(metrics)  # JSON-able
    assert metrics["num_videos"] == 212
    assert all(0.0 <= v <= 1.0 for v in metrics["mAP"] + metrics["recall"]["AR@AN"])


def test_cli_writes_json(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _case_dir(shared_data, _case_names(shared_data)[-1])
    expected = json.loads((folder / "expected.json").read_text())
    out = tmp_path / "metrics.json"
    status = cli.main(["evaluate", "--pred", str(folder / "predictions.json"), "--gt",
                       str(shared_data / "thumos14.json"), "--subset", "Test", "--tiou", "0.5:0.95:0.05",
                       "--json", str(out)])
    assert status == 0
    assert "Avg" in capsys.readouterr().out
    metrics = json.loads(out.read_text())
    _assert_matches(metrics, expected["anet_tious"], f"cli {folder.name}")
    assert set(metrics) >= {"tiou_thresholds", "mAP", "average_mAP", "per_class_AP", "recall", "errors",
                            "num_videos", "num_predictions", "warnings"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind

