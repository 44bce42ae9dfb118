"""Candidate decoding (docs/model.md §5.1) on hand-computed cases, and the grid <-> seconds round trip
(docs/model.md §2.4)."""
from __future__ import annotations

import math

import pytest
import torch

from rdfa_s6.data.coords import seconds_to_steps
from rdfa_s6.infer import select_candidates, to_seconds


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def points(t_len: int, stride: int) -> torch.Tensor:
    t = torch.arange(t_len, dtype=torch.float32) * stride
    return torch.stack([t, torch.zeros(t_len), torch.full((t_len,), 1e4), torch.full((t_len,), float(stride))], 1)


def test_single_level_threshold_mask_and_class_split():
    # T=3 steps, C=2 classes; step 2 is padding
    probs = [[0.9, 0.0005], [0.3, 0.6], [0.99, 0.99]]
    logits = torch.tensor([[logit(p) for p in row] for row in probs])
    offsets = torch.tensor([[1.0, 2.0], [0.5, 0.5], [1.0, 1.0]])
    mask = torch.tensor([True, True, False])
    segs, scores, labels = select_candidates([logits], [offsets], [mask], [points(3, 1)])
    # kept (p > 0.001, valid step) by decreasing p: (t0,c0) .9, (t1,c1) .6, (t1,c0) .3
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.6, 0.3]))
    assert labels.tolist() == [0, 1, 0]
    torch.testing.assert_close(segs, torch.tensor([[-1.0, 2.0], [0.5, 1.5], [0.5, 1.5]]))


def test_topk_is_per_level_and_stride_scales_offsets():
    # level 0 (stride 1): four candidates, all better than level 1's; top-2 per level keeps two of each
    l0 = torch.tensor([[logit(0.9)], [logit(0.8)], [logit(0.7)], [logit(0.6)]])
    l1 = torch.tensor([[logit(0.2)], [logit(0.4)]])
    off0 = torch.ones(4, 2)
    off1 = torch.tensor([[1.0, 1.0], [1.5, 2.0]])
    segs, scores, labels = select_candidates(
        [l0, l1], [off0, off1], [torch.ones(4, dtype=torch.bool), torch.ones(2, dtype=torch.bool)],
        [points(4, 1), points(2, 2)], pre_nms_topk=2)
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.8, 0.4, 0.2]))
    # level 1, point t=2 (stride 2): [2 - 1.5*2, 2 + 2*2] = [-1, 6]; point t=0: [-2, 2]
    torch.testing.assert_close(segs, torch.tensor([[-1.0, 1.0], [0.0, 2.0], [-1.0, 6.0], [-2.0, 2.0]]))
    assert labels.tolist() == [0, 0, 0, 0]


def test_duration_filter_is_strict_and_in_grid_units():
    logits = torch.full((3, 1), logit(0.5))
    logits[0, 0], logits[1, 0] = logit(0.7), logit(0.6)
    # lengths: 0.25 (== threshold: dropped), 0.5 (kept), 0.0 (dropped)
    offsets = torch.tensor([[0.0, 0.25], [0.25, 0.25], [0.0, 0.0]])
    segs, scores, _ = select_candidates([logits], [offsets], [torch.ones(3, dtype=torch.bool)], [points(3, 1)],
                                        duration_thresh=0.25)
    torch.testing.assert_close(segs, torch.tensor([[0.75, 1.25]]))
    torch.testing.assert_close(scores, torch.tensor([0.6]))


def test_everything_below_threshold_gives_empty_output():
    logits = torch.full((5, 3), -20.0)
    segs, scores, labels = select_candidates([logits], [torch.ones(5, 2)], [torch.ones(5, dtype=torch.bool)],
                                             [points(5, 1)])
    assert segs.shape == (0, 2) and scores.shape == (0,) and labels.dtype == torch.long


def test_shape_errors():
    with pytest.raises(ValueError, match="level 0: offsets"):
        select_candidates([torch.zeros(3, 2)], [torch.zeros(3, 3)], [torch.ones(3, dtype=torch.bool)],
                          [points(3, 1)])
    with pytest.raises(ValueError, match="must be equal"):
        select_candidates([torch.zeros(3, 2)], [], [], [])


def test_seconds_grid_round_trip():
    fps, feat_stride, num_frames, duration = 30.0, 4, 16, 200.0
    seconds = torch.tensor([[10.0, 12.5], [0.2, 3.0], [150.0, 199.9]], dtype=torch.float64)
    grid = seconds_to_steps(seconds, fps, feat_stride, num_frames)
    assert grid[0, 0].item() == pytest.approx(73.0)  # docs/model.md §2.4 worked example
    torch.testing.assert_close(to_seconds(grid, fps, feat_stride, num_frames, duration), seconds)


def test_to_seconds_clamps_to_video():
    out = to_seconds(torch.tensor([[-5.0, 10.0], [1400.0, 1600.0]]), 30.0, 4, 16, 200.0)
    torch.testing.assert_close(out, torch.tensor([[0.0, 48.0 / 30.0], [(5600.0 + 8.0) / 30.0, 200.0]]))
