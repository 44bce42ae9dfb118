"""From model outputs to detections in seconds: decode -> NMS -> optional score fusion -> seconds (docs/model.md §5).

A detection is ``{"segment": [start_s, end_s], "label": name, "label_id": int, "score": float}``; a results
file is ActivityNet's ``{"results": {video_id: [detection, ...]}}``.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..config.schema import InferConfig
from ..data.batch import Batch, VideoMeta
from ..precision import autocast
from .decode import select_candidates, to_seconds
from .fusion import fuse_video
from .nms import batched_nms

Detection = Dict[str, Any]


def postprocess_video(cls_logits: List[Tensor], offsets: List[Tensor], masks: List[Tensor], points: List[Tensor],
                      meta: VideoMeta, cfg: InferConfig, label_names: Mapping[int, str],
                      external: Optional[Mapping[str, np.ndarray]] = None) -> List[Detection]:
    """One video's detections. Per level: cls_logits [T_l, K], offsets [T_l, 2], masks [T_l], points [T_l, 4].

    ``meta``: where the video's feature steps sit in time (seconds, frames).
    """
    segs, scores, labels = suppress(*video_candidates(cls_logits, offsets, masks, points, cfg), cfg)
    if external is not None:
        segs, scores, labels = fuse_video(meta.video_id, segs, scores, external, num_pred=cfg.max_seg_num,
                                          topk=cfg.ext_topk)
    seconds = to_seconds(segs.double().cpu().numpy(), meta.fps, meta.feat_stride, meta.num_frames, meta.duration)
    out = []
    for (start, end), score, label in zip(seconds.tolist(), scores.tolist(), labels.tolist()):
        name = label_names.get(int(label), f"class_{int(label)}")
        out.append({"segment": [round(start, 4), round(end, 4)], "label": name,
                    "label_id": int(label), "score": float(score)})
    return out


def video_candidates(cls_logits: List[Tensor], offsets: List[Tensor], masks: List[Tensor], points: List[Tensor],
                     cfg: InferConfig) -> Tuple[Tensor, Tensor, Tensor]:
    """One video's scored candidates before NMS: ``segments [N, 2]`` in grid units (level-0 feature steps of the
    model input), ``scores [N]``, ``labels [N]`` (:func:`~.decode.select_candidates` with the config's settings)."""
    return select_candidates(cls_logits, offsets, masks, points, cfg.pre_nms_thresh, cfg.pre_nms_topk,
                             cfg.duration_thresh)


def suppress(segs: Tensor, scores: Tensor, labels: Tensor, cfg: InferConfig, max_seg_num: Optional[int] = None,
             voting: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """The config's NMS (``infer.nms_method``) of candidates ``[N, 2]``, ``[N]``, ``[N]``, best first, at most
    ``max_seg_num`` (default ``infer.max_seg_num``); ``voting=False`` leaves segment voting out (the stream's merge
    across windows, whose candidates were voted on in their own window). Segments keep their unit."""
    cap = cfg.max_seg_num if max_seg_num is None else max_seg_num
    if cfg.nms_method != "none":
        return batched_nms(
            segs, scores, labels, iou_threshold=cfg.iou_threshold, min_score=cfg.min_score,
            max_seg_num=cap, use_soft_nms=cfg.nms_method in ("gaussian", "linear"),
            multiclass=cfg.multiclass_nms, sigma=cfg.nms_sigma, voting_thresh=cfg.voting_thresh if voting else 0.0,
            method=cfg.nms_method if cfg.nms_method in ("gaussian", "linear") else "gaussian")
    order = torch.argsort(scores, descending=True, stable=True)[:cap]
    return segs[order], scores[order], labels[order]


def network_outputs(model: nn.Module, batch: Batch, precision: str = "fp32") -> List[Tuple[List[Tensor], ...]]:
    """The network on a padded batch, per video: ``(cls_logits, offsets, masks, points)``, one entry per pyramid
    level (float32 logits and offsets ``[T_l, K]``, ``[T_l, 2]``; masks ``[T_l]``; points ``[T_l, 4]``)."""
    with autocast(batch.feats.device, precision):
        out = model(batch.feats, batch.mask)  # the module: hooks, compile and wrappers apply
    return [([x[i].float() for x in out.cls_logits], [x[i].float() for x in out.offsets], [x[i] for x in out.masks],
             list(out.points)) for i in range(len(batch.meta))]


@torch.no_grad()
def predict_batch(model: nn.Module, batch: Batch, cfg: InferConfig, label_names: Mapping[int, str],
                  external: Optional[Mapping[str, np.ndarray]] = None,
                  precision: str = "fp32") -> Dict[str, List[Detection]]:
    """Detections for every video of a padded :class:`~rdfa_s6.data.batch.Batch`.

    ``precision``: ``fp32 | bf16 | auto`` of the forward (:mod:`rdfa_s6.precision`); decoding runs in float32.
    """
    results = {}
    for meta, (cls_logits, offsets, masks, points) in zip(batch.meta, network_outputs(model, batch, precision)):
        results[meta.video_id] = postprocess_video(cls_logits, offsets, masks, points, meta, cfg, label_names,
                                                   external)
    return results


def predict(model: nn.Module, batches: Iterable[Batch], cfg: InferConfig, label_names: Mapping[int, str],
            external: Optional[Mapping[str, np.ndarray]] = None, precision: str = "fp32") -> Dict[str, Any]:
    """Run ``model`` (put in eval mode) over ``batches`` in ``precision``; returns an ActivityNet results dict."""
    was_training = model.training
    model.eval()
    results: Dict[str, List[Detection]] = {}
    try:
        for batch in batches:
            results.update(predict_batch(model, batch, cfg, label_names, external, precision))
    finally:
        model.train(was_training)
    return {"version": "rdfa-s6", "external_data": {}, "results": results}
