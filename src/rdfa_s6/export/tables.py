"""All videos in one file: CSV (one row per detection) and the ActivityNet results JSON."""
from __future__ import annotations

import csv
import io
import json

from . import Options, Videos, register

CSV_COLUMNS = ["video_id", "start_s", "end_s", "label", "score"]


@register("csv", ".csv", per_video=False,
          description="one row per detection: video_id,start_s,end_s,label,score (as `infer --csv`)")
def write_csv(videos: Videos, options: Options) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for vid, segs in videos.items():
        for s in segs:
            writer.writerow([vid, repr(s.start), repr(s.end), s.label, repr(s.score)])
    return buf.getvalue().encode("utf-8")


@register("activitynet", ".json", per_video=False,
          description='ActivityNet results JSON {"results": {video: [{"segment", "label", "score"}]}} of the '
          "accepted detections (--min-score); readable by `evaluate`, `view` and this command")
def write_activitynet(videos: Videos, options: Options) -> bytes:
    results = {vid: [{"segment": [s.start, s.end], "label": s.label, "score": s.score} for s in segs]
               for vid, segs in videos.items()}
    doc = {"version": "rdfa-s6", "external_data": {}, "results": results}
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
