"""All videos in one file: CSV (one row per detection) and the ActivityNet results JSON."""
from __future__ import annotations

from ..csvtable import detections_csv
from . import Options, Videos, json_bytes, register


@register("csv", ".csv", per_video=False,
          description="one row per detection: video_id,start_s,end_s,label,score (as `infer --csv`; text cells "
          "that a spreadsheet would run as a formula get a leading ', unless --raw-csv)")
def write_csv(videos: Videos, options: Options) -> bytes:
    return detections_csv(((vid, s.start, s.end, s.label, s.score) for vid, segs in videos.items() for s in segs),
                          raw=options.raw_csv)


@register("activitynet", ".json", per_video=False,
          description='ActivityNet results JSON {"results": {video: [{"segment", "label", "score"}]}} of the '
          "accepted detections (--min-score); readable by `evaluate`, `view` and this command")
def write_activitynet(videos: Videos, options: Options) -> bytes:
    results = {vid: [{"segment": [s.start, s.end], "label": s.label, "score": s.score} for s in segs]
               for vid, segs in videos.items()}
    doc = {"version": "rdfa-s6", "external_data": {}, "results": results}
    return json_bytes(doc)
