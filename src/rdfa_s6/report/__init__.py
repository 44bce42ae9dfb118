"""The interactive HTML viewer of detections: ``write_report(results, out, gt=..., videos_dir=...)``.

The page is a template with inlined CSS and JavaScript shipped as package data (``viewer.html``,
``viewer.css``, ``viewer-core.js``, ``viewer-timeline.js``, ``viewer.js``); Python only serialises the data
(:mod:`.data`) and fills the template (:mod:`.html`). Vanilla JavaScript and SVG, nothing fetched from a network.
"""
from __future__ import annotations

from .build import ReportInfo, write_report
from .data import build_view_data, per_video_ap
from .html import render, write_html

__all__ = ["ReportInfo", "build_view_data", "per_video_ap", "render", "write_html", "write_report"]
