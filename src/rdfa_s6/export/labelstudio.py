"""Label Studio tasks with pre-annotations (a JSON list to import), one task per video.

Two layouts (Label Studio's task import format): with ``Options.write_as == "predictions"`` (the default) the
detections are the task's ``predictions``: ``[{"model_version": NAME, "score": S, "result": [region, ...]}]``,
each region with its own ``score`` and the prediction's score the highest of them (Label Studio sorts and
filters tasks by it), shown as pre-annotations that an annotator corrects and submits; with ``"annotations"``
they are the task's ``annotations`` ``[{"result": [region, ...]}]``, finished labels (e.g. to review an
annotation file: ``rdfa-s6 import`` reads both back, docs/import.md).

Label Studio labels video segments with the ``TimelineLabels`` control on a ``Video`` object; its regions are
``{"type": "timelinelabels", "value": {"ranges": [{"start": F1, "end": F2}], "timelinelabels": [label]}}``
with frame numbers, so ``fps`` is required and must be the ``frameRate`` of the ``Video`` tag. The frame
convention is: frame k (1-based) shows the time [(k - 1) / fps, k / fps), hence start = round(start_s * fps)
+ 1 and end = max(start, round(end_s * fps)); back in seconds, (start - 1) / fps and end / fps are within
half a frame of the detection. Sub-frame times cannot be held by frames: each region's ``meta.text`` carries
the exact ``start_s``, ``end_s`` and ``score`` (shown in Label Studio's region details), and each region has
its ``score``. :func:`label_config` gives a matching labeling configuration, written next to the tasks as
``<out stem>.label_config.xml``. Labels go through :func:`.text.xml_text` in both files (the tasks' labels must
be the configuration's), and the JSON is written by :func:`.text.json_bytes` (finite numbers only).
"""
from __future__ import annotations

from typing import Iterable
from xml.sax.saxutils import quoteattr

from ..errors import UserError
from . import MAX_FPS, Options, Videos, json_bytes, register
from .text import video_url, xml_text

FROM_NAME, TO_NAME = "label", "video"


def frames(start_s: float, end_s: float, fps: float) -> tuple:
    """``(start_frame, end_frame)``, 1-based and inclusive, of a segment in seconds (see the module doc)."""
    a = max(1, int(round(start_s * fps)) + 1)
    return a, max(a, int(round(end_s * fps)))


def label_config(labels: Iterable[str], fps: float) -> str:
    """A Label Studio labeling configuration (XML) for the exported tasks."""
    items = "\n".join(f"    <Label value={quoteattr(lab)}/>" for lab in sorted({xml_text(lab) for lab in labels}))
    return (f'<View>\n  <Video name="{TO_NAME}" value="${TO_NAME}" frameRate="{fps:g}" timelineHeight="200"/>\n'
            f'  <TimelineLabels name="{FROM_NAME}" toName="{TO_NAME}">\n{items}\n  </TimelineLabels>\n</View>\n')


def _check_fps(options: Options) -> float:
    if not options.fps or options.fps <= 0:
        raise UserError("--format labelstudio needs --fps: Label Studio's timeline counts frames (use the frameRate "
                        "of the videos)")
    if options.fps > MAX_FPS:
        raise UserError(f"--fps {options.fps:g}: expected at most {MAX_FPS:g} frames per second")
    return options.fps


def write_label_config(videos: Videos, options: Options) -> bytes:
    """The labeling configuration of :func:`label_config` for the labels of ``videos``."""
    labels = [s.label for segs in videos.values() for s in segs]
    return label_config(labels, _check_fps(options)).encode("utf-8")


@register("labelstudio", ".json", per_video=False, integer_times=True,
          companion=(".label_config.xml", write_label_config),
          description="Label Studio import JSON: one task per video, detections as TimelineLabels predictions "
          "(or annotations with --as annotations; frame ranges: needs --fps)")
def write_labelstudio(videos: Videos, options: Options) -> bytes:
    fps = _check_fps(options)
    template = options.video_url or "{video_id}.mp4"
    tasks = []
    for vid, segs in videos.items():
        result = []
        for i, s in enumerate(segs):
            a, b = frames(s.start, s.end, fps)
            result.append({
                "id": f"d{i + 1}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "timelinelabels",
                "score": s.score,
                "value": {"ranges": [{"start": a, "end": b}], "timelinelabels": [xml_text(s.label)]},
                "meta": {"text": [f"start_s={s.start!r} end_s={s.end!r} score={s.score!r}"]},
            })
        data = {TO_NAME: video_url(template, vid), "video_id": vid}
        if options.write_as == "annotations":
            for region in result:
                del region["score"]
            tasks.append({"data": data, "annotations": [{"result": result}]})
        else:
            score = max((s.score for s in segs), default=0.0)
            tasks.append({"data": data, "predictions": [{"model_version": options.model_version, "score": score,
                                                         "result": result}]})
    return json_bytes(tasks)
