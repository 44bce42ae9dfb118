"""Label assignment (docs/model.md §4.1), losses (docs/model.md §4.2), parameter groups (4.3), LR schedule (4.4)
and EMA (4.5).

Every expected value is written literally and derived by hand in a comment next to it.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rdfa_s6.train.assign import assign_video
from rdfa_s6.train.losses import LossNormaliser, detection_losses, diou_loss_1d, sigmoid_focal_loss
from rdfa_s6.train.optim import ModelEMA, WarmupCosine, parameter_groups

# --------------------------------------------------------------------------------------------------------------
# Label assignment
# --------------------------------------------------------------------------------------------------------------
# Two pyramid levels, rows (t, range_lo, range_hi, stride):
#   level 0: stride 1, range [0, 4], points t = 0..9      -> row index = t
#   level 1: stride 2, range [4, 8], points t = 0,2,4,6,8 -> row index = 10 + t / 2
# Center sampling radius 1.5: level 0 window = centre +- 1.5, level 1 window = centre +- 3 (clipped to the GT).
POINTS = torch.tensor(
    [[float(t), 0.0, 4.0, 1.0] for t in range(10)] + [[float(t), 4.0, 8.0, 2.0] for t in range(0, 10, 2)]
)
M = POINTS.shape[0]  # 15
K = 3


def _assign(segments, labels):
    return assign_video(POINTS, torch.tensor(segments, dtype=torch.float32).reshape(-1, 2),
                        torch.tensor(labels, dtype=torch.int64), num_classes=K)


def _rows(pairs, width):
    """Dense [M, width] tensor from {row: values}."""
    out = torch.zeros(M, width)
    for row, values in pairs.items():
        out[row] = torch.tensor(values, dtype=torch.float32)
    return out


def test_assign_single_gt_level0_only():
    # GT [2, 5], class 1, length 3, centre 3.5.
    # level 0: window [max(3.5-1.5, 2), min(3.5+1.5, 5)] = [2, 5]; strictly inside: t = 3, 4.
    #   t=3: left 1, right 2, max 2 in [0, 4] -> positive, reg (1, 2) / 1
    #   t=4: left 2, right 1, max 2 in [0, 4] -> positive, reg (2, 1) / 1
    # level 1: window [max(0.5, 2), min(6.5, 5)] = [2, 5]; only t=4 inside, max(2, 1) = 2 < 4 -> negative.
    cls, reg = _assign([[2.0, 5.0]], [1])
    torch.testing.assert_close(cls, _rows({3: [0, 1, 0], 4: [0, 1, 0]}, K))
    torch.testing.assert_close(reg, _rows({3: [1, 2], 4: [2, 1]}, 2))


def test_assign_boundary_points_are_negative_and_reg_divided_by_stride():
    # GT [1, 9], class 2, length 8, centre 5.
    # level 0: window [3.5, 6.5] -> t = 4, 5, 6 inside.
    #   t=4: max(3, 5) = 5 > 4 no;  t=5: max(4, 4) = 4 <= 4 yes, reg (4, 4);  t=6: max(5, 3) = 5 no.
    # level 1: window [max(5-3, 1), min(5+3, 9)] = [2, 8].
    #   t=2 and t=8 lie exactly on the window boundary (margin 0, not > 0) -> negative, although
    #   their regression reach (max(1, 7) = 7, max(7, 1) = 7) is inside [4, 8]: strict inequality.
    #   t=4 (row 12): max(3, 5) = 5 in [4, 8] -> reg (3, 5) / 2 = (1.5, 2.5)
    #   t=6 (row 13): max(5, 3) = 5 in [4, 8] -> reg (5, 3) / 2 = (2.5, 1.5)
    cls, reg = _assign([[1.0, 9.0]], [2])
    torch.testing.assert_close(cls, _rows({5: [0, 0, 1], 12: [0, 0, 1], 13: [0, 0, 1]}, K))
    torch.testing.assert_close(reg, _rows({5: [4, 4], 12: [1.5, 2.5], 13: [2.5, 1.5]}, 2))
    assert cls[11].sum() == 0 and cls[14].sum() == 0  # t=2 and t=8 of level 1


def test_assign_overlapping_equal_length_gts_are_multi_hot():
    # GT a = [2, 5] class 1 (positives t=3, 4 at level 0, see above)
    # GT b = [3, 6] class 2, length 3 as well, centre 4.5: level 0 window [3, 6] -> t = 4, 5;
    #   t=4: max(1, 2) = 2 ok, t=5: max(2, 1) = 2 ok. level 1: window [3, 6] -> t=4, max 2 < 4: no.
    # t=3: only a -> [0,1,0], reg (1, 2)
    # t=4: a and b, equal lengths (3 == 3) -> multi-hot [0,1,1]; regression from the first argmin, a: (2, 1)
    # t=5: only b -> [0,0,1], reg (5-3, 6-5) = (2, 1)
    # GT c = [0, 9] class 0, length 9, centre 4.5:
    #   level 0 window [3, 6] -> t=4: max(4, 5) = 5 > 4, t=5: max(5, 4) = 5 > 4: none.
    #   level 1 window [1.5, 7.5] -> t=2: max(2, 7) = 7, t=4: max(4, 5) = 5, t=6: max(6, 3) = 6, all in [4, 8]
    #   rows 11, 12, 13: reg (2, 7)/2 = (1, 3.5), (4, 5)/2 = (2, 2.5), (6, 3)/2 = (3, 1.5)
    cls, reg = _assign([[2.0, 5.0], [3.0, 6.0], [0.0, 9.0]], [1, 2, 0])
    expected_cls = _rows({3: [0, 1, 0], 4: [0, 1, 1], 5: [0, 0, 1], 11: [1, 0, 0], 12: [1, 0, 0], 13: [1, 0, 0]}, K)
    expected_reg = _rows({3: [1, 2], 4: [2, 1], 5: [2, 1], 11: [1, 3.5], 12: [2, 2.5], 13: [3, 1.5]}, 2)
    torch.testing.assert_close(cls, expected_cls)
    torch.testing.assert_close(reg, expected_reg)


def test_assign_shortest_gt_wins_and_same_class_is_not_double_counted():
    # GT a = [0, 9] class 0 (length 9) and GT b = [1, 9] class 2 (length 8), both derived above.
    # level 0: only b at t=5 -> class 2, reg (4, 4).
    # level 1: t=2: only a (b's boundary) -> class 0, reg (1, 3.5)
    #          t=4: a and b qualify; 8 < 9 - 1e-3 -> only b, reg (3, 5)/2 = (1.5, 2.5)
    #          t=6: a and b qualify -> only b, reg (2.5, 1.5)
    cls, reg = _assign([[0.0, 9.0], [1.0, 9.0]], [0, 2])
    torch.testing.assert_close(cls, _rows({5: [0, 0, 1], 11: [1, 0, 0], 12: [0, 0, 1], 13: [0, 0, 1]}, K))
    torch.testing.assert_close(reg, _rows({5: [4, 4], 11: [1, 3.5], 12: [1.5, 2.5], 13: [2.5, 1.5]}, 2))
    # Two identical GTs of the same class: the multi-hot target is clamped to 1, not 2.
    cls, _ = _assign([[2.0, 5.0], [2.0, 5.0]], [1, 1])
    torch.testing.assert_close(cls, _rows({3: [0, 1, 0], 4: [0, 1, 0]}, K))


def test_assign_length_tolerance_is_1e3():
    # GT a = [2, 5] (length 3), class 1; GT b = [2, 5.0005] (length 3.0005 <= 3 + 1e-3), class 2.
    # Both are positive at t=3, 4 -> multi-hot [0, 1, 1], regression from a (the strict minimum).
    # b's level-0 window is [2, 5.0005], so t=5 is strictly inside b too (margin 0.0005 > 0), reach
    # max(3, 0.0005) = 3 <= 4: positive for b alone, reg (3, 0.0005).
    cls, reg = _assign([[2.0, 5.0], [2.0, 5.0005]], [1, 2])
    torch.testing.assert_close(cls, _rows({3: [0, 1, 1], 4: [0, 1, 1], 5: [0, 0, 1]}, K))
    torch.testing.assert_close(reg, _rows({3: [1, 2], 4: [2, 1], 5: [3, 0.0005]}, 2))
    # With b = [2, 5.01] (length 3.01 > 3 + 1e-3) only a's class remains.
    # (t=5 is again b's alone, margin 0.01 > 0.)
    cls, _ = _assign([[2.0, 5.0], [2.0, 5.01]], [1, 2])
    torch.testing.assert_close(cls, _rows({3: [0, 1, 0], 4: [0, 1, 0], 5: [0, 0, 1]}, K))


def test_assign_gt_outside_every_regression_range_has_no_positive():
    # GT [0, 20], centre 10. level 0 window [8.5, 11.5] -> t = 9 inside, reach max(9, 11) = 11 > 4.
    # level 1 window [7, 13] -> t = 8 inside, reach max(8, 12) = 12 > 8. Center sampling passes but the
    # regression range does not: no positive anywhere.
    cls, reg = _assign([[0.0, 20.0]], [1])
    assert cls.shape == (M, K) and reg.shape == (M, 2)
    assert cls.sum() == 0 and reg.abs().sum() == 0


def test_assign_video_without_gt_gives_zeros():
    cls, reg = assign_video(POINTS, torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64), num_classes=K)
    torch.testing.assert_close(cls, torch.zeros(M, K))
    torch.testing.assert_close(reg, torch.zeros(M, 2))


# --------------------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------------------
def test_focal_loss_hand_computed_1x2():
    # logits [[0, 2]], targets [[1, 0]], alpha 0.25, gamma 2.
    # element (0): p = sigmoid(0) = 0.5, y = 1: ce = -ln 0.5 = ln 2, p_t = 0.5, (1 - p_t)^2 = 0.25,
    #              alpha_t = 0.25 -> 0.25 * 0.25 * ln 2 = 0.0625 * 0.693147 = 0.0433217
    # element (1): p = sigmoid(2) = 0.880797, y = 0: ce = -ln(1 - p) = ln(1 + e^2) = 2.126928,
    #              p_t = 1 - p = 0.119203, (1 - p_t)^2 = p^2 = 0.775803, alpha_t = 0.75
    #              -> 0.75 * 0.775803 * 2.126928 = 1.237559
    # sum = 1.280881
    p1 = 1.0 / (1.0 + math.exp(-2.0))
    expected = 0.25 * 0.25 * math.log(2.0) + 0.75 * p1 ** 2 * math.log(1.0 + math.exp(2.0))
    assert expected == pytest.approx(1.280881, abs=1e-6)
    got = sigmoid_focal_loss(torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_diou_identical_boxes_is_zero():
    boxes = torch.tensor([[1.0, 2.0], [0.5, 7.0], [3.0, 0.0]])
    assert diou_loss_1d(boxes, boxes.clone()).item() == pytest.approx(0.0, abs=1e-7)


def test_diou_disjoint_boxes():
    # pred (2, 0) = [t-2, t], target (0, 3) = [t, t+3]: inter = min(2,0) + min(0,3) = 0 -> IoU 0.
    # rho = 0.5 * (0 - 2 - 3 + 0) = -2.5 (centres t-1 and t+1.5), len_c = max(2,0) + max(0,3) = 5.
    # loss = 1 - 0 + (2.5 / 5)^2 = 1.25
    got = diou_loss_1d(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 3.0]]))
    assert got.item() == pytest.approx(1.25, rel=1e-6)


def test_diou_partial_overlap_and_sum():
    # pred (1, 3) = [t-1, t+3], target (2, 2) = [t-2, t+2]:
    # inter = min(1,2) + min(3,2) = 3, union = 4 + 4 - 3 = 5, IoU = 0.6,
    # rho = 0.5 * (3 - 1 - 2 + 2) = 1 (centres t+1 and t), len_c = max(1,2) + max(3,2) = 5,
    # loss = 1 - 0.6 + (1/5)^2 = 0.44
    pred = torch.tensor([[1.0, 3.0]])
    target = torch.tensor([[2.0, 2.0]])
    assert diou_loss_1d(pred, target).item() == pytest.approx(0.44, rel=1e-6)
    # summed over rows: 0.44 + 1.25 + 0
    pred2 = torch.tensor([[1.0, 3.0], [2.0, 0.0], [1.0, 1.0]])
    target2 = torch.tensor([[2.0, 2.0], [0.0, 3.0], [1.0, 1.0]])
    assert diou_loss_1d(pred2, target2).item() == pytest.approx(1.69, rel=1e-6)


def test_loss_normaliser_official_is_stateless():
    norm = LossNormaliser("official", init=100.0)
    # 0.9 * 100 + 0.1 * max(n, 1)
    assert norm(0) == pytest.approx(90.1)   # max(0, 1) = 1
    assert norm(10) == pytest.approx(91.0)
    assert norm(10) == pytest.approx(91.0)  # no memory of the previous step
    assert norm(0) == pytest.approx(90.1)
    assert norm(250) == pytest.approx(115.0)


def test_loss_normaliser_running_ema_is_stateful():
    norm = LossNormaliser("running_ema", init=100.0)
    assert norm(10) == pytest.approx(91.0)    # 0.9 * 100  + 0.1 * 10
    assert norm(10) == pytest.approx(82.9)    # 0.9 * 91   + 0.1 * 10
    assert norm(0) == pytest.approx(74.71)    # 0.9 * 82.9 + 0.1 * 1
    state = norm.state_dict()
    fresh = LossNormaliser("running_ema", init=100.0)
    fresh.load_state_dict(state)
    assert fresh(20) == pytest.approx(0.9 * 74.71 + 2.0)  # 69.239, resumes from the saved value
    with pytest.raises(ValueError):
        LossNormaliser("bogus")


def _two_level_inputs(num_classes=2):
    torch.manual_seed(0)
    logits = [torch.randn(1, 4, num_classes, requires_grad=True), torch.randn(1, 2, num_classes, requires_grad=True)]
    offsets = [torch.rand(1, 4, 2, requires_grad=True), torch.rand(1, 2, 2, requires_grad=True)]
    masks = [torch.tensor([[True, True, True, False]]), torch.tensor([[True, False]])]
    return logits, offsets, masks


def test_detection_losses_without_positives():
    logits, offsets, masks = _two_level_inputs()
    out = detection_losses(logits, offsets, masks, torch.zeros(1, 6, 2), torch.zeros(1, 6, 2),
                           LossNormaliser("official"))
    assert out["reg_loss"].item() == 0.0
    assert torch.isfinite(out["cls_loss"]) and out["cls_loss"].item() > 0
    assert int(out["num_pos"]) == 0
    # cls loss = focal loss over the 4 valid points / (0.9 * 100 + 0.1 * 1)
    valid_logits = torch.cat([logits[0][0, :3], logits[1][0, :1]])
    expected = sigmoid_focal_loss(valid_logits, torch.zeros(4, 2)) / 90.1
    torch.testing.assert_close(out["cls_loss"], expected)
    out["loss"].backward()  # the zero reg loss keeps a graph: backward works
    assert torch.isfinite(offsets[0].grad).all()


def test_detection_losses_with_positives_and_padding():
    logits, offsets, masks = _two_level_inputs()
    cls_t = torch.zeros(1, 6, 2)
    reg_t = torch.zeros(1, 6, 2)
    cls_t[0, 1, 0] = 1.0
    reg_t[0, 1] = torch.tensor([1.0, 2.0])
    cls_t[0, 3, 1] = 1.0   # level-0 point 3 is padding: not a positive
    reg_t[0, 3] = torch.tensor([5.0, 5.0])
    out = detection_losses(logits, offsets, masks, cls_t, reg_t, LossNormaliser("official"))
    assert int(out["num_pos"]) == 1
    z = 0.9 * 100 + 0.1 * 1
    valid_logits = torch.cat([logits[0][0, :3], logits[1][0, :1]])
    valid_targets = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(out["cls_loss"], sigmoid_focal_loss(valid_logits, valid_targets) / z)
    torch.testing.assert_close(out["reg_loss"], diou_loss_1d(offsets[0][0, 1:2], reg_t[0, 1:2]) / z)
    torch.testing.assert_close(out["loss"], out["cls_loss"] + out["reg_loss"])
    # an explicit (global) num_pos drives the normaliser
    out = detection_losses(logits, offsets, masks, cls_t, reg_t, LossNormaliser("official"), num_pos=30)
    torch.testing.assert_close(out["reg_loss"], diou_loss_1d(offsets[0][0, 1:2], reg_t[0, 1:2]) / 93.0)


# --------------------------------------------------------------------------------------------------------------
# LR schedule, parameter groups, EMA
# --------------------------------------------------------------------------------------------------------------
def test_warmup_cosine_thumos_numbers():
    # THUMOS: 100 iterations per epoch, warm-up 5 epochs = 500, T_max = 50 epochs = 5000, base 1e-4.
    sched = WarmupCosine(1e-4, warmup=500, total=5000, eta_min=1e-8)
    assert sched(0) == 0.0                                           # lr(0) = 0
    assert sched(1) == pytest.approx(1e-4 / 499, rel=1e-12)           # 1 * 1e-4 / (500 - 1) = 2.004e-7
    assert sched(1) == pytest.approx(2.004008e-7, rel=1e-6)
    assert sched(250) == pytest.approx(250e-4 / 499, rel=1e-12)
    assert sched(499) == pytest.approx(1e-4, rel=1e-12)               # warmup - 1: 499 / 499 * base
    assert sched(500) == pytest.approx(1e-4, rel=1e-12)               # cos(0) = 1 -> base
    # middle of the cosine: eta_min + (base - eta_min) / 2 = 1e-8 + 0.5 * 0.9999e-4 = 5.0005e-5
    assert sched(2750) == pytest.approx(5.0005e-5, rel=1e-9)
    # last iteration of the official 49 epochs: progress 4400/4500, ~1.3e-7 (docs/model.md §4.5)
    expected_4900 = 1e-8 + 0.5 * (1e-4 - 1e-8) * (1 + math.cos(math.pi * 4400 / 4500))
    assert sched(4900) == pytest.approx(expected_4900, rel=1e-9)
    assert sched(4900) == pytest.approx(1.318e-7, rel=1e-3)
    assert sched(5000) == pytest.approx(1e-8, rel=1e-9)               # total: eta_min
    # apply() writes the value into every group
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    assert sched.apply(opt, 1) == pytest.approx(1e-4 / 499)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 / 499)


class _Mixer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.A_log = nn.Parameter(torch.zeros(2, 3))
        self.D = nn.Parameter(torch.ones(2))
        self.x_proj = nn.Linear(3, 3, bias=False)
        self.dt_proj = nn.Linear(3, 2)


class _Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.conv = nn.Conv1d(4, 4, 3)
        self.norm = nn.LayerNorm(4)
        self.mixer = _Mixer()
        self.head_scale = _Scale()
        self.frozen_conv = nn.Conv1d(4, 4, 3)
        self.frozen_conv.weight.requires_grad_(False)  # e.g. freeze_dwconv; its bias stays trainable
        self.frozen_norm = nn.LayerNorm(4)
        self.frozen_norm.requires_grad_(False)


def test_parameter_groups_membership():
    model = _Model()
    decay_group, no_decay_group = parameter_groups(model, weight_decay=0.05)
    assert decay_group["weight_decay"] == 0.05 and no_decay_group["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)] for p in decay_group["params"]}
    no_decay = {names[id(p)] for p in no_decay_group["params"]}
    assert decay == {"lin.weight", "conv.weight", "mixer.A_log", "mixer.D", "mixer.x_proj.weight",
                     "mixer.dt_proj.weight"}
    assert no_decay == {"lin.bias", "conv.bias", "norm.weight", "norm.bias", "mixer.dt_proj.bias",
                        "head_scale.scale", "frozen_conv.bias"}
    # frozen parameters are in neither group
    for frozen in ("frozen_conv.weight", "frozen_norm.weight", "frozen_norm.bias"):
        assert frozen not in decay | no_decay
    # the groups are usable by AdamW
    torch.optim.AdamW([decay_group, no_decay_group], lr=1e-4)


def test_model_ema_update_arithmetic():
    class One(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.tensor([1.0]))
            self.register_buffer("count", torch.tensor([0.0]))

    model = One()
    ema = ModelEMA(model, decay=0.9)
    assert not ema.module.w.requires_grad
    assert ema.module.w is not model.w
    with torch.no_grad():
        model.w.fill_(2.0)
        model.count.fill_(5.0)
    ema.update(model)
    # 0.9 * 1 + 0.1 * 2 = 1.1; buffers are copied
    assert ema.module.w.item() == pytest.approx(1.1)
    assert ema.module.count.item() == 5.0
    with torch.no_grad():
        model.w.fill_(3.0)
    ema.update(model)
    # 0.9 * 1.1 + 0.1 * 3 = 1.29
    assert ema.module.w.item() == pytest.approx(1.29)
    assert model.w.item() == 3.0  # the live model is untouched
    # default decay 0.999: 0.999 * 3 + 0.001 * 4 = 3.001
    ema2 = ModelEMA(model)
    with torch.no_grad():
        model.w.fill_(4.0)
    ema2.update(model)
    assert ema2.module.w.item() == pytest.approx(3.001)
