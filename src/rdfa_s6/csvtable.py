"""The one CSV writer of detections: ``rdfa-s6 export --format csv`` and ``infer --csv``
(:func:`rdfa_s6.infer.results.write_results_csv`) both write through :func:`detections_csv`.

Columns ``video_id,start_s,end_s,label,score``, one row per detection, RFC 4180 (CRLF line ends, so that a
carriage return or newline inside a cell is quoted and reads back). The text cells (``video_id``,
``label``) come from the user and a spreadsheet would run a cell that starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return as a formula (CSV injection): by default such a cell is written with a single quote
``'`` in front (the OWASP rule), which spreadsheets show as text. The numeric cells are numbers we write
(``repr`` of the float: exact, read back by ``float``) and are never changed. ``raw=True`` writes the text
cells as they are, for programs that read the file (``export --raw-csv``). Either way a lone surrogate (a
string that is not valid Unicode, which UTF-8 cannot encode) becomes U+FFFD. Imports nothing heavy.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Iterable, Tuple

CSV_COLUMNS = ("video_id", "start_s", "end_s", "label", "score")
#: first characters that make a spreadsheet cell a formula (OWASP "CSV injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Row = Tuple[str, float, float, str, float]
_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_text(text: str) -> str:
    """``text`` with every lone surrogate (not encodable in UTF-8) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def neutral_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: ``'`` in front when it starts like a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def detections_csv(rows: Iterable[Row], raw: bool = False) -> bytes:
    """The CSV file (UTF-8, CRLF line ends, header first) of ``(video_id, start_s, end_s, label, score)``
    rows. Text cells are neutralised unless ``raw`` (see the module doc); numbers are written with ``repr``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # CR and LF both in it: cells holding either are quoted
    writer.writerow(CSV_COLUMNS)
    for vid, start, end, label, score in rows:
        vid, label = utf8_text(str(vid)), utf8_text(str(label))
        if not raw:
            vid, label = neutral_cell(vid), neutral_cell(label)
        writer.writerow([vid, repr(float(start)), repr(float(end)), label, repr(float(score))])
    return buf.getvalue().encode("utf-8")
