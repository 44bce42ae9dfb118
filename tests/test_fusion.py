"""External score fusion (docs/model.md §5.3): hand-computed cases and error messages."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rdfa_s6.errors import DataError
from rdfa_s6.infer import fuse_scores, fuse_video, load_external_scores


def test_topk_duplication_and_scores():
    segs = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    scores = torch.tensor([0.25, 0.64, 0.01])
    out_segs, out_scores, labels = fuse_scores(segs, scores, [0.1, 0.81, 0.04, 0.36], num_pred=2, topk=2)
    # top-2 segments by score: 0.64 then 0.25; top-2 classes: 1 (0.81) then 3 (0.36)
    torch.testing.assert_close(out_segs, torch.tensor([[2.0, 3.0], [0.0, 1.0], [2.0, 3.0], [0.0, 1.0]]))
    assert labels.tolist() == [1, 1, 3, 3]
    expected = [math.sqrt(0.81 * 0.64), math.sqrt(0.81 * 0.25), math.sqrt(0.36 * 0.64), math.sqrt(0.36 * 0.25)]
    assert out_scores.tolist() == pytest.approx(expected, abs=1e-6)


def test_softmax_when_outside_unit_interval():
    ext = np.array([2.0, 0.0, -1.0])
    p = np.exp(ext) / np.exp(ext).sum()
    _, out_scores, labels = fuse_scores(torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]), ext, topk=2)
    assert labels.tolist() == [0, 1]
    assert out_scores.tolist() == pytest.approx([math.sqrt(p[0] * 0.5), math.sqrt(p[1] * 0.5)], abs=1e-6)
    # scores already in [0, 1] are used as they are
    _, out_scores, _ = fuse_scores(torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]), [0.0, 1.0], topk=1)
    assert out_scores.tolist() == pytest.approx([math.sqrt(0.5)])


def test_ties_and_fewer_classes_than_topk():
    _, _, labels = fuse_scores(torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]), [0.3, 0.3, 0.3], topk=2)
    assert labels.tolist() == [0, 1]
    out_segs, _, labels = fuse_scores(torch.tensor([[0.0, 1.0], [1.0, 2.0]]), torch.tensor([0.5, 0.4]), [0.7],
                                      topk=2)
    assert labels.tolist() == [0, 0] and out_segs.shape == (2, 2)


def test_empty_detections():
    out_segs, out_scores, labels = fuse_scores(torch.zeros(0, 2), torch.zeros(0), [0.2, 0.8])
    assert out_segs.shape == (0, 2) and out_scores.shape == (0,) and labels.shape == (0,)


@pytest.mark.parametrize("payload", [{"results": {"v1": [0.1, 0.9]}}, {"v1": [[0.1, 0.9]]}])
def test_both_file_formats(tmp_path, payload):
    path = tmp_path / "ext.json"
    path.write_text(json.dumps(payload))
    ext = load_external_scores(path)
    np.testing.assert_allclose(ext["v1"], [0.1, 0.9])
    _, _, labels = fuse_video("v1", torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]), ext, source=path, topk=1)
    assert labels.tolist() == [1]


def test_missing_video_names_file_and_video(tmp_path):
    path = tmp_path / "ext.json"
    path.write_text(json.dumps({"v1": [0.5]}))
    ext = load_external_scores(path)
    with pytest.raises(DataError, match=r"ext\.json.*'v2'"):
        fuse_video("v2", torch.zeros(0, 2), torch.zeros(0), ext, source=path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "non-empty object"),
    (json.dumps({"v1": []}), r"video 'v1'.*non-empty list"),
    (json.dumps({"results": {"v1": [0.1], "v2": ["a"]}}), r"video 'v2'.*numbers"),
    (json.dumps({"v1": [[0.1], [0.2]]}), r"video 'v1'.*numbers"),
])
def test_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        load_external_scores(path)
    assert "bad.json" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.json not found"):
        load_external_scores(tmp_path / "nope.json")
