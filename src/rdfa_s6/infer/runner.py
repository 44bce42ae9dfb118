"""Run a detector over a dataset split and evaluate it: shared by ``train`` (validation), ``test`` and ``demo``."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from ..config import Config
from ..data.dataset import Collate, TALDataset, load_batches, split_records
from ..data.paths import under_root
from ..data.prepare import PreparedData
from ..eval.report import evaluate
from ..formats.scores import load_external_scores
from ..progress import Progress, report
from .predictor import predict


def predict_split(model: nn.Module, cfg: Config, data: PreparedData, split: str,
                  progress: Optional[Progress] = None, precision: str = "fp32") -> Dict[str, Any]:
    """ActivityNet results dict for every video of ``split`` (batch size 1, as the official test loader);
    ``precision``: ``fp32 | bf16 | auto`` of the forward (:mod:`rdfa_s6.precision`); ``progress(done, total)``
    is called before the first video and after each."""
    records = split_records(data.annotations, split)
    dataset = TALDataset(records, data.reader, cfg.data, training=False)
    collate = Collate(cfg.data.max_seq_len, getattr(model, "max_div_factor", 1), training=False)
    loader = load_batches(dataset, collate, batch_size=1, shuffle=False, num_workers=0)
    device = next(model.parameters()).device

    def batches():
        report(progress, 0, len(dataset))
        for done, batch in enumerate(loader, 1):
            yield batch.to(device)
            report(progress, done, len(dataset))

    external = None
    if cfg.infer.ext_score_file:  # a data path like the others: relative to --data-root when one is given
        external = load_external_scores(under_root(cfg.infer.ext_score_file, data.data_root))
    # fused detections carry the external classifier's class ids, which are the annotation file's label ids
    names = data.class_names if external is not None else data.label_names
    return predict(model, batches(), cfg.infer, names, external, precision)


def evaluate_split(model: nn.Module, cfg: Config, data: PreparedData, split: str, progress: Optional[Progress] = None,
                   precision: str = "fp32") -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(results, metrics) of ``model`` on ``split`` at ``cfg.eval.tiou_thresholds``, forward in ``precision``
    (:mod:`rdfa_s6.precision`), the ground truth handled
    as ``cfg.eval.gt_policy`` says (default ``actionformer``, the official metric's: zero-length and same-label
    duplicate events dropped). ``train`` validation, ``test`` and ``demo`` all score through here."""
    from ..precision import resolve_precision

    with torch.no_grad():
        results = predict_split(model, cfg, data, split, progress, precision)
    params = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    if params is not None:  # every table of these numbers says how they were computed (evaluate reads it back)
        results["computed_with"] = {"precision": resolve_precision(precision, params.device),
                                    "device": str(params.device)}
    if cfg.data.class_agnostic and not cfg.infer.ext_score_file:
        # class-agnostic detections carry the label "action": evaluate as proposals of one class
        gt = _agnostic_gt(data)
    else:
        gt = data.annotations.path
    metrics = evaluate(results, gt, subset=split, tiou_thresholds=cfg.eval.tiou_thresholds,
                       gt_policy=cfg.eval.gt_policy)
    return results, metrics


def _agnostic_gt(data: PreparedData) -> Dict[str, Any]:
    """Every video of the annotation file (skipped ones too), every event relabelled ``action``."""
    database = {}
    for vid, rec in data.annotations.videos.items():
        database[vid] = {"subset": rec.subset, "duration": rec.duration, "annotations": [
            {"label": "action", "segment": [float(s), float(e)], "label_id": 0} for s, e in rec.segments]}
    return {"database": database}
