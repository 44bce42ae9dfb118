"""Text made safe for each export format, one helper per rule (every writer of :mod:`rdfa_s6.export` uses these).

Labels and video ids come from the user's results file and may hold anything: newlines, the subtitle timing
arrow ``-->``, control characters, NUL, lone surrogates (not valid Unicode, not encodable in UTF-8),
non-characters (U+FFFE, U+FFFF), or a ``--video-url`` template that is not one. Imports nothing heavy.
"""
from __future__ import annotations

import json
import re
import string
from typing import Any

from ..errors import UserError
from ..messages import shown

#: characters XML 1.0 does not allow (its ``Char`` production), lone surrogates included
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: characters allowed in XML but that would stop a subtitle cue from being one printable line
_CUE_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")
REPLACEMENT = "\ufffd"


def xml_text(text: str) -> str:
    """``text`` with every character that XML 1.0 cannot hold (control characters other than tab, newline and
    carriage return; NUL; lone surrogates; U+FFFE, U+FFFF) replaced by U+FFFD: the one rule of the XML writers
    (ELAN, the Label Studio configuration and the labels of its tasks, which must match the configuration)."""
    return _NOT_XML.sub(REPLACEMENT, text)


def cue_text(text: str) -> str:
    """A subtitle cue line (SRT, WebVTT): one line (runs of whitespace, newlines included, become one space),
    no control character, lone surrogate or non-character (U+FFFD instead), and no timing arrow ``-->``
    anywhere (``-->`` becomes ``->`` until none is left: ``--->`` would otherwise become ``-->``); ``?`` if
    nothing is left."""
    text = _CUE_CONTROL.sub(REPLACEMENT, xml_text(" ".join(text.split())))
    while "-->" in text:
        text = text.replace("-->", "->")
    return text or "?"


def json_bytes(doc: Any) -> bytes:
    """``doc`` as UTF-8 JSON (indented, non-ASCII kept, finite numbers only: ValueError on NaN or infinity).
    A lone surrogate, which UTF-8 cannot encode, is written as its JSON escape ``\\udc80`` (read back as the
    same string)."""
    text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    # only string contents can hold surrogates, and there "\\udc80" is the JSON escape of that very character
    return text.encode("utf-8", "backslashreplace")


def check_video_url(template: str, option: str = "--video-url") -> str:
    """``template`` if it is a ``--video-url`` template: text with ``{video_id}`` at least once, ``{{`` and ``}}``
    for literal braces, and no other field, index, attribute, conversion or format spec; else a one-line
    UserError."""
    fields = []
    try:
        for _literal, name, spec, conversion in string.Formatter().parse(template):
            if name is not None:
                fields.append((name, spec, conversion))
    except ValueError as err:
        raise UserError(f"{option} '{shown(template)}': not a template ({err}); expected text with {{video_id}} "
                        f"(write {{{{ and }}}} for literal braces)") from None
    bad = [f for f in fields if f != ("video_id", "", None)]
    if bad or not fields:
        if bad:
            name, spec, conversion = bad[0]
            field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            what = f"the field {shown(field)} is not allowed"
        else:
            what = "no {video_id}"
        raise UserError(f"{option} '{shown(template)}': {what}; expected a template whose only field is "
                        f"{{video_id}} (no index, conversion or format; {{{{ and }}}} for literal braces)")
    return template


def video_url(template: str, video_id: str) -> str:
    """The template (checked by :func:`check_video_url`) with the video id put in."""
    return check_video_url(template).format(video_id=video_id)
