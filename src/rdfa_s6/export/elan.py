"""ELAN annotation document (.eaf, EAF 3.0) of one video: one tier per class, one annotation per detection
whose value is the class name. Times are integer milliseconds (ELAN's unit).

An ELAN tier cannot hold overlapping annotations, and detections of one class often overlap: a class whose
detections overlap gets further tiers ``<class> 2``, ``<class> 3``, ... (each detection goes to the first
tier of its class where it fits, in order of start time), so every tier opens and edits cleanly in ELAN. Tier
ids are unique whatever the class names (:func:`tier_ids`: a class named ``A 2`` keeps its name, class ``A``'s
second tier becomes ``A 3``). Every text (class names, the media URL) goes through :func:`.text.xml_text`.
"""
from __future__ import annotations

import datetime
import mimetypes
import xml.etree.ElementTree as ET
from typing import Dict, List, Sequence, Tuple

from . import Options, Videos, register
from .text import video_url, xml_text

EAF_SCHEMA = "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
LINGUISTIC_TYPE = "detection"


def pack_tiers(segments: List[Tuple[int, int]]) -> List[int]:
    """Tier number (0, 1, ...) of each ``(start_ms, end_ms)`` so that no two on a tier overlap (touching is
    allowed): each goes to the first tier whose last end is <= its start, in order of start time."""
    order = sorted(range(len(segments)), key=lambda i: segments[i])
    ends: List[int] = []
    tier = [0] * len(segments)
    for i in order:
        s, e = segments[i]
        for t, last in enumerate(ends):
            if last <= s:
                ends[t] = e
                tier[i] = t
                break
        else:
            ends.append(e)
            tier[i] = len(ends) - 1
    return tier


def tier_ids(classes: Sequence[str], counts: Sequence[int]) -> List[List[str]]:
    """Unique tier ids: ``counts[k]`` ids for class ``classes[k]``, the first its name, the others ``<name> 2``,
    ``<name> 3``, ...; a generated name that is a class name or an id already given is skipped (the next
    number is tried), and a class name already taken as a tier id gets a number too."""
    reserved = set(classes)
    used: set = set()
    out: List[List[str]] = []
    for name, count in zip(classes, counts):
        ids: List[str] = []
        number = 1
        while len(ids) < count:
            candidate = name if number == 1 else f"{name} {number}"
            number += 1
            if candidate in used or (number > 2 and candidate in reserved):
                continue
            ids.append(candidate)
            used.add(candidate)
        out.append(ids)
    return out


@register("eaf", ".eaf", per_video=True, integer_times=True,
          description="ELAN .eaf, one tier per class (extra tiers where detections of a class overlap)")
def write_eaf(videos: Videos, options: Options) -> bytes:
    ((vid, segs),) = videos.items()
    root = ET.Element("ANNOTATION_DOCUMENT", {
        "AUTHOR": "rdfa-s6", "DATE": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "FORMAT": "3.0", "VERSION": "3.0", "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:noNamespaceSchemaLocation": EAF_SCHEMA})
    header = ET.SubElement(root, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    if options.video_url:
        url = xml_text(video_url(options.video_url, vid))
        mime = mimetypes.guess_type(url)[0] or "video/mp4"
        ET.SubElement(header, "MEDIA_DESCRIPTOR", {"MEDIA_URL": url, "MIME_TYPE": mime, "RELATIVE_MEDIA_URL": url})
    ET.SubElement(header, "PROPERTY", {"NAME": "lastUsedAnnotationId"}).text = str(len(segs))
    times = ET.SubElement(root, "TIME_ORDER")
    spans = []
    for s in segs:
        a = max(0, int(round(s.start * 1000.0)))
        spans.append((a, max(a + 1, int(round(s.end * 1000.0)))))  # ELAN needs end > start
    by_class: Dict[str, List[int]] = {}
    for i, s in enumerate(segs):  # classes whose names differ only by characters XML cannot hold become one
        by_class.setdefault(xml_text(s.label), []).append(i)
    slot = 0
    classes = sorted(by_class)
    packed = [pack_tiers([spans[i] for i in by_class[label]]) for label in classes]
    names = tier_ids(classes, [max(tiers) + 1 for tiers in packed])
    for label, tiers, tier_names in zip(classes, packed, names):
        idx = by_class[label]
        elements: Dict[int, ET.Element] = {}
        for t, name in enumerate(tier_names):
            elements[t] = ET.SubElement(root, "TIER", {"LINGUISTIC_TYPE_REF": LINGUISTIC_TYPE, "TIER_ID": name})
        for i, t in sorted(zip(idx, tiers), key=lambda p: spans[p[0]]):
            ids = []
            for value in spans[i]:
                slot += 1
                ids.append(f"ts{slot}")
                ET.SubElement(times, "TIME_SLOT", {"TIME_SLOT_ID": ids[-1], "TIME_VALUE": str(value)})
            ann = ET.SubElement(ET.SubElement(elements[t], "ANNOTATION"), "ALIGNABLE_ANNOTATION", {
                "ANNOTATION_ID": f"a{i + 1}", "TIME_SLOT_REF1": ids[0], "TIME_SLOT_REF2": ids[1]})
            ET.SubElement(ann, "ANNOTATION_VALUE").text = label
    if not by_class:  # ELAN wants at least one tier
        ET.SubElement(root, "TIER", {"LINGUISTIC_TYPE_REF": LINGUISTIC_TYPE, "TIER_ID": "detections"})
    ET.SubElement(root, "LINGUISTIC_TYPE", {"GRAPHIC_REFERENCES": "false", "LINGUISTIC_TYPE_ID": LINGUISTIC_TYPE,
                                            "TIME_ALIGNABLE": "true"})
    ET.indent(root)
    blob = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    # ElementTree escapes a carriage return in attributes but not in text, where a parser would read it as a
    # newline: written as a character reference, a label keeps it (the indentation holds none)
    return blob.replace(b"\r", b"&#13;")
