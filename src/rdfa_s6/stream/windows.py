"""Detections from a stream of feature rows: windows, finality, the merge across windows (docs/streaming.md).

Units: the model's time bookkeeping is in **model steps** (rows after ``data.downsample_rate``; step ``j`` is raw
row ``j * rate``), converted to seconds only through :mod:`rdfa_s6.data.coords` (``feat_stride = stride * rate``,
``num_frames = window`` frames). ``L`` = window (model steps), ``H`` = hop.

The rule, which depends on stream positions only (never on how the rows were chunked):

- window ``k`` covers steps ``[k*H, k*H + L)``; it runs once step ``k*H + L`` has arrived (one step beyond it,
  so that a stream of at most ``L`` steps is never cut: at its end it runs whole, exactly as
  :meth:`rdfa_s6.Detector.predict` on it);
- window ``k`` *owns* the detections whose end lies in its zone ``[k*H + (L-H)/2, k*H + (L+H)/2)`` (window 0's
  zone has no lower bound): the middle of the window, where the bidirectional model has context on both sides;
  the zones tile the stream, so every place is owned by one window;
- after window ``k`` runs, its owned candidates (decoded, before NMS) go through the model's NMS together with the
  detections already emitted near them (which are fixed: they suppress or decay new ones and are never
  re-emitted); what survives is emitted, final;
- :meth:`DetectionStream.close` runs a last window on the final ``L`` steps owning everything after the last
  zone (or, for a stream of at most ``L`` steps, one window owning everything).

Hence a detection ending at ``e`` seconds is emitted by stream time ``max(e + D, T0)`` with
``D = ((L + H) / 2 * stride * rate + window / 2) / fps`` and ``T0`` the end of the first window
(:attr:`Windowing.delay_bound`, :attr:`Windowing.first_report`).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..api import Detection
from ..data.batch import Batch, VideoMeta
from ..data.coords import covered_seconds
from ..errors import UserError
from ..infer.decode import to_seconds
from ..infer.inputs import as_features
from ..infer.nms import seg_voting
from ..infer.predictor import network_outputs, suppress, video_candidates

if TYPE_CHECKING:
    from ..api import Detector

#: the largest window a stream takes (model steps): a window is one forward pass held in memory
MAX_WINDOW_STEPS = 1_000_000


@dataclass(frozen=True)
class StreamDetection(Detection):
    """A :class:`~rdfa_s6.api.Detection` of a stream, with ``emitted``: the stream time (seconds covered by the rows
    received) at which it became final."""

    emitted: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        """The results entry plus ``"emitted"`` (seconds of stream time)."""
        return {**super().to_dict(), "emitted": self.emitted}


@dataclass(frozen=True)
class Windowing:
    """Where the windows of a stream are and what they imply in seconds.

    ``window``/``hop``: model steps; ``fps``: frames per second; ``stride``: frames between two rows pushed;
    ``clip``: frames per clip (the rows' ``window``); ``rate``: ``data.downsample_rate`` (a model step every
    ``rate`` rows).
    """

    window: int
    hop: int
    fps: float
    stride: float
    clip: float
    rate: int = 1

    @property
    def step_stride(self) -> float:
        """Frames between two model steps: ``stride * rate``."""
        return self.stride * self.rate

    def start(self, k: int) -> int:
        """First step of window ``k``: ``k * hop``."""
        return k * self.hop

    def zone(self, k: int) -> Tuple[float, float]:
        """``[lo, hi)`` in model steps: the detection ends window ``k`` owns (window 0 from minus infinity)."""
        lo = -math.inf if k == 0 else k * self.hop + (self.window - self.hop) / 2
        return lo, k * self.hop + (self.window + self.hop) / 2

    def raw_rows_at(self, steps: int) -> int:
        """Rows pushed when model step ``steps - 1`` has just arrived: ``(steps - 1) * rate + 1``."""
        return (steps - 1) * self.rate + 1 if steps > 0 else 0

    def seconds(self, raw_rows: int) -> float:
        """Stream time when ``raw_rows`` rows have arrived: the seconds they cover."""
        return covered_seconds(raw_rows, self.fps, self.stride, self.clip)

    @property
    def delay_bound(self) -> float:
        """``D`` seconds: a detection ending at ``e`` s is emitted by stream time ``max(e + D, first_report)``."""
        return ((self.window + self.hop) / 2 * self.step_stride + self.clip / 2) / self.fps

    @property
    def first_report(self) -> float:
        """Stream time of the first window's report (seconds): when step ``window`` (one past it) arrives."""
        return self.seconds(self.raw_rows_at(self.window + 1))


class DetectionStream:
    """Feed feature rows as they arrive; get the detections that became final (see the module doc for the rule).

        >>> s = det.stream(fps=30.0)            # or DetectionStream(det, fps=30.0)
        >>> for chunk in chunks:                # [n, C] arrays, any n (0 too)
        ...     for d in s.push(chunk): print(d.start, d.end, d.label, d.score, d.emitted)
        >>> rest = s.close()                    # the end of the stream: everything still pending

    ``fps``, ``stride``, ``window`` as in :meth:`rdfa_s6.Detector.predict` (frames per second, frames between rows,
    frames per clip). ``window_steps`` (default ``data.max_seq_len``) and ``hop_steps`` (default half of it) are
    the model's windows in model steps. ``min_score``: detections scored below it are not returned (they still
    take part in the merge, so the returned set does not depend on it otherwise). ``push`` and ``close`` return
    the detections of the windows they ran, in the order the windows ran, each window's best first; no detection
    is returned twice or taken back. Memory is bounded: the rows of about ``window_steps + hop_steps`` steps and
    the detections of the last windows.
    """

    def __init__(self, detector: "Detector", fps: Optional[float] = None, *, stride: Optional[float] = None,
                 window: Optional[float] = None, window_steps: Optional[int] = None,
                 hop_steps: Optional[int] = None, min_score: float = 0.0) -> None:
        data = detector.config.data
        if data.force_upsampling:
            raise UserError("this model resizes every video to data.max_seq_len steps (data.force_upsampling): it "
                            "needs the whole video and cannot watch a stream")
        fps = fps if fps is not None else detector.default_fps
        if fps is None:
            raise UserError("fps is required: the model's config has no data.default_fps and its training videos "
                            "had no common frame rate")
        for name, value, allow_zero in (("fps", fps, False), ("stride", stride, False), ("window", window, True)):
            if value is not None and not (math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
                raise UserError(f"{name} must be a positive number, got {value}")
        steps = int(window_steps) if window_steps is not None else int(data.max_seq_len)
        if not 1 <= steps <= MAX_WINDOW_STEPS or (window_steps is not None and steps != window_steps):
            raise UserError(f"window_steps must be a whole number of steps in [1, {MAX_WINDOW_STEPS}], got "
                            f"{window_steps}")
        hop = int(hop_steps) if hop_steps is not None else max(1, steps // 2)
        if not 1 <= hop <= steps or (hop_steps is not None and hop != hop_steps):
            raise UserError(f"hop_steps must be a whole number of steps in [1, window_steps = {steps}], got "
                            f"{hop_steps}")
        if not (math.isfinite(min_score) and 0.0 <= min_score <= 1.0):
            raise UserError(f"min_score must be in [0, 1], got {min_score}")
        self.detector = detector
        self.windowing = Windowing(steps, hop, float(fps),
                                   float(stride if stride is not None else data.feat_stride),
                                   float(window if window is not None else data.num_frames), int(data.downsample_rate))
        self.min_score = float(min_score)
        self._buf: Optional[np.ndarray] = None  # [L + H, C] rows of model steps _first .. _first + _held - 1
        self._first = 0
        self._held = 0
        self._steps = 0  # model steps received
        self._raw = 0  # rows pushed
        self._next = 0  # the next window to run
        #: emitted detections that may still overlap new ones: (start, end) steps float64, label, score
        self._recent: List[Tuple[float, float, int, float]] = []
        self._closed = False
        #: detections emitted so far (every score, ``min_score`` or not)
        self.emitted = 0
        #: windows run so far
        self.windows_run = 0

    # ---- state ---------------------------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        """Rows pushed so far."""
        return self._raw

    @property
    def stream_time(self) -> float:
        """Seconds covered by the rows pushed so far."""
        return self.windowing.seconds(self._raw)

    @property
    def closed(self) -> bool:
        return self._closed

    # ---- feeding -------------------------------------------------------------------------------------------
    def push(self, rows: Any) -> List[StreamDetection]:
        """Add ``rows`` (``[n, C]`` array or tensor, n >= 0, any float dtype); the detections that became final."""
        if self._closed:
            raise UserError("the stream is closed: push after close()")
        array = self._rows_of(rows)
        rate = self.windowing.rate
        kept = array[(-self._raw) % rate :: rate] if rate > 1 else array
        self._raw += array.shape[0]
        out: List[StreamDetection] = []
        w = self.windowing
        pos = 0
        while pos < kept.shape[0]:
            due = w.start(self._next) + w.window + 1  # steps after which window _next runs
            take = min(due - self._steps, kept.shape[0] - pos)
            self._append(kept[pos : pos + take])
            pos += take
            if self._steps == due:
                start = w.start(self._next)
                out += self._run(start, start + w.window, w.zone(self._next), w.raw_rows_at(due))
                self._next += 1
        return [d for d in out if d.score >= self.min_score]

    def close(self) -> List[StreamDetection]:
        """The end of the stream: the detections still pending (none after the first call)."""
        if self._closed:
            return []
        self._closed = True
        w = self.windowing
        total = self._steps
        if total == 0:
            return []
        if self._next == 0:  # at most one window: it runs whole, as predict on the same rows
            out = self._run(0, total, (-math.inf, math.inf), self._raw)
        else:
            out = self._run(max(0, total - w.window), total, (w.zone(self._next - 1)[1], math.inf), self._raw)
        self._buf = None
        return [d for d in out if d.score >= self.min_score]

    # ---- internals -----------------------------------------------------------------------------------------
    def _rows_of(self, rows: Any) -> np.ndarray:
        dim = self.detector.input_dim
        if isinstance(rows, torch.Tensor):
            rows = rows.detach().cpu().numpy()
        array = np.asarray(rows)
        if array.ndim == 2 and array.shape[0] == 0 and array.shape[1] == dim:
            return np.zeros((0, dim), np.float32)
        return as_features("stream", array, dim).t().numpy()  # checked: [n, C], floating, finite

    def _append(self, rows: np.ndarray) -> None:
        """Append model steps, dropping those no window will read again (before the last window run)."""
        w = self.windowing
        if self._buf is None:
            self._buf = np.zeros((w.window + w.hop + 1, rows.shape[1]), np.float32)
        keep_from = w.start(self._next - 1) if self._next > 0 else 0
        if self._held + rows.shape[0] > self._buf.shape[0]:
            drop = keep_from - self._first
            self._buf[: self._held - drop] = self._buf[drop : self._held]
            self._first, self._held = keep_from, self._held - drop
        self._buf[self._held : self._held + rows.shape[0]] = rows
        self._held += rows.shape[0]
        self._steps += rows.shape[0]

    def _run(self, start: int, end: int, zone: Tuple[float, float], raw_rows: int) -> List[StreamDetection]:
        """Run the window of steps ``[start, end)``; merge and emit the detections ending in ``zone``."""
        assert self._buf is not None and self._first <= start and end <= self._first + self._held
        det, w, cfg = self.detector, self.windowing, self.detector.config
        rows = self._buf[start - self._first : end - self._first]
        feats = torch.from_numpy(np.ascontiguousarray(rows.T))  # [C, n]
        duration = w.seconds(raw_rows)
        meta = VideoMeta("stream", w.fps, duration, w.step_stride, w.clip)
        batch = Batch.pad([feats], [meta], cfg.data.max_seq_len, det.model.max_div_factor, training=False)
        with torch.no_grad():
            ((cls_logits, offsets, masks, points),) = network_outputs(det.model, batch.to(det.device), det.precision)
            segs, scores, labels = video_candidates(cls_logits, offsets, masks, points, cfg.infer)
        self.windows_run += 1
        ends = segs[:, 1].double().numpy() + start
        own = torch.from_numpy((ends >= zone[0]) & (ends < zone[1]))
        # emitted detections that may overlap, in this window's coordinates (float32 NMS keeps its precision)
        near = [r for r in self._recent if r[1] > start - w.window]
        fixed = torch.tensor([[r[0] - start, r[1] - start] for r in near], dtype=torch.float64).float().reshape(-1, 2)
        all_segs = torch.cat([fixed, segs[own]])
        all_scores = torch.cat([torch.tensor([r[3] for r in near], dtype=torch.float32), scores[own]])
        all_labels = torch.cat([torch.tensor([r[2] for r in near], dtype=torch.long), labels[own]])
        out_segs, out_scores, out_labels = suppress(all_segs, all_scores, all_labels, cfg.infer,
                                                    max_seg_num=cfg.infer.max_seg_num + len(near), voting=False)
        fixed_keys = Counter(_key(s, lab) for s, lab in zip(fixed.tolist(), [r[2] for r in near]))
        new = []
        for i, (seg, lab) in enumerate(zip(out_segs.tolist(), out_labels.tolist())):
            key = _key(seg, lab)
            if fixed_keys[key] > 0:  # an emitted detection (or its exact twin): never again
                fixed_keys[key] -= 1
                continue
            new.append(i)
        pick = torch.tensor(new, dtype=torch.long)
        new_segs, new_scores, new_labels = out_segs[pick], out_scores[pick], out_labels[pick]
        if (cfg.infer.nms_method != "none" and not cfg.infer.multiclass_nms and cfg.infer.voting_thresh > 0
                and new_segs.shape[0] > 0):  # segment voting, as batched_nms does it: against every candidate
            new_segs = seg_voting(new_segs, all_segs, all_scores, cfg.infer.voting_thresh)
        steps = new_segs.double().numpy() + start  # [M, 2] model steps of the stream
        seconds = to_seconds(steps, w.fps, w.step_stride, w.clip, duration)
        emitted_at = w.seconds(raw_rows)
        out = []
        for (s, e), (s_sec, e_sec), score, lab in zip(steps.tolist(), seconds.tolist(), new_scores.tolist(),
                                                      new_labels.tolist()):
            self._recent.append((s, e, int(lab), float(score)))
            out.append(StreamDetection(round(s_sec, 4), round(e_sec, 4), det.label_names.get(int(lab), f"class_{lab}"),
                                       float(score), int(lab), emitted=round(emitted_at, 4)))
        self.emitted += len(out)
        following = w.start(self._next + 1)  # the next window's start: older detections cannot overlap it
        self._recent = [r for r in self._recent if r[1] > following - w.window]
        return out


def _key(seg: List[float], label: int) -> Tuple[float, float, int]:
    return float(seg[0]), float(seg[1]), int(label)


__all__ = ["DetectionStream", "StreamDetection", "Windowing"]
