"""The viewer page: ``viewer.html`` with ``viewer.css``, ``viewer.js`` and the data inlined, one file that
opens offline in any browser (no network access, nothing fetched)."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Union

from ..atomic import atomic_write_bytes

#: where each part goes in viewer.html
TOKENS = ("/*@CSS@*/", "@DATA@", "/*@JS@*/")
#: the script's parts, inlined in this order in one function scope (they share its variables)
SCRIPTS = ("viewer-core.js", "viewer-timeline.js", "viewer.js")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def data_json(data: Mapping[str, Any]) -> str:
    """``data`` as compact JSON that is safe inside ``<script type="application/json">``: ``<``, ``>`` and
    ``&`` are written as ``\\u003c`` etc., so no video id or label can close the script element; U+2028 and
    U+2029 as escapes too. Numbers must be finite (ValueError otherwise). A lone surrogate (a string that is
    not valid Unicode) is written as its JSON escape, so the page's UTF-8 encodes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    # a surrogate only occurs inside a JSON string, where the escape \\udc80 reads back as that very character
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def render(data: Mapping[str, Any]) -> str:
    """The complete HTML page for ``data`` (see :func:`rdfa_s6.report.data.build_view_data`)."""
    page = _asset("viewer.html")
    css = _asset("viewer.css")
    js = '(function () {\n  "use strict";\n' + "".join(_asset(name) for name in SCRIPTS) + "})();\n"
    parts = []
    for token, text in zip(TOKENS, (css, data_json(data), js)):
        head, page = page.split(token, 1)  # split the template, never the inserted text
        parts += [head, text]
    return "".join(parts + [page])


def write_html(path: Union[str, Path], data: Mapping[str, Any]) -> int:
    """Write the page for ``data`` to ``path`` atomically; returns its size in bytes."""
    blob = render(data).encode("utf-8")
    atomic_write_bytes(path, blob)
    return len(blob)
