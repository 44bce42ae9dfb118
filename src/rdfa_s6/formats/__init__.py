"""The files rdfa-s6 reads, each read and checked in one place, without torch.

==========================  ===================================  ==========================================
format                      reader                               used by
==========================  ===================================  ==========================================
annotation JSON             :func:`annotations.read_annotations`  ``data.annotations`` (training policy),
                                                                 ``eval.groundtruth`` (evaluation policy)
results JSON (detections)   :func:`results.read_results`          ``eval``, ``export``, ``visualize``, viewer
external class scores       :func:`scores.load_external_scores`   score fusion (``infer``)
checkpoint ``meta.json``    :func:`meta.read_meta_file`           ``checkpoint``, ``api``
run ``metrics.jsonl``       :func:`metrics.read_metrics_jsonl`    ``viz`` (training curve)
==========================  ===================================  ==========================================

Every reader takes a path (or, where it makes sense, the decoded JSON) and raises a one-line
:class:`~rdfa_s6.errors.DataError` in one style, ``<what> <file>: video '<id>', <item>, field '<name>': <problem>``
(:func:`jsonfile.where`). The readers check shape and types; what a consumer requires on top (``label_id`` for
training, ordered segments, ...) is that consumer's policy.
"""
