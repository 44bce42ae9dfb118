"""Subtitles of one video, one cue per detection (sorted by start): SubRip (.srt) and WebVTT (.vtt).

A cue's first line is the class name, its second ``score 0.8765``. Times are rounded to the millisecond (the
formats' resolution); negative times become 0 and an end before its start is moved to the start. The class
name is made one cue line by :func:`.text.cue_text`: no newline (a blank line would end the cue), no control
character and no timing arrow ``-->`` (which would make the line a cue's timing); WebVTT also escapes ``&``,
``<`` and ``>``.
"""
from __future__ import annotations

from typing import List, Tuple

from . import Options, Segment, Videos, register
from .text import cue_text


def _ms(t: float) -> int:
    return max(0, int(round(t * 1000.0)))


def _clock(ms: int, sep: str) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(videos: Videos) -> List[Tuple[int, int, Segment]]:
    (segs,) = videos.values()
    cues = [(_ms(s.start), max(_ms(s.start), _ms(s.end)), s) for s in segs]
    return sorted(cues, key=lambda c: (c[0], c[1], -c[2].score))


@register("srt", ".srt", per_video=True, integer_times=True,
          description="SubRip subtitles, one cue per detection: label, score")
def write_srt(videos: Videos, options: Options) -> bytes:
    blocks = [f"{i}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{cue_text(s.label)}\nscore {s.score:.4f}\n"
              for i, (a, b, s) in enumerate(_cues(videos), start=1)]
    return "\n".join(blocks).encode("utf-8")


def _vtt_escape(text: str) -> str:
    return cue_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@register("vtt", ".vtt", per_video=True, integer_times=True,
          description="WebVTT subtitles (HTML5 <track>), one cue per detection")
def write_vtt(videos: Videos, options: Options) -> bytes:
    lines = ["WEBVTT", ""]
    for i, (a, b, s) in enumerate(_cues(videos), start=1):
        lines += [str(i), f"{_clock(a, '.')} --> {_clock(b, '.')}", _vtt_escape(s.label), f"score {s.score:.4f}", ""]
    return "\n".join(lines).encode("utf-8")
