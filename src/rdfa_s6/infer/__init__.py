"""Inference post-processing: candidate decoding (docs/model.md §5.1), NMS (5.2), external score fusion (5.3)."""
from rdfa_s6.formats.scores import load_external_scores
from rdfa_s6.infer.decode import select_candidates, to_seconds
from rdfa_s6.infer.fusion import fuse_scores, fuse_video
from rdfa_s6.infer.nms import batched_nms, hard_nms, seg_voting, soft_nms

__all__ = [
    "batched_nms",
    "fuse_scores",
    "fuse_video",
    "hard_nms",
    "load_external_scores",
    "seg_voting",
    "select_candidates",
    "soft_nms",
    "to_seconds",
]
