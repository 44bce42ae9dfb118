"""Detections from live and endless streams (docs/streaming.md).

:class:`DetectionStream` (built by :meth:`rdfa_s6.Detector.stream`) takes feature rows as they arrive and gives
the detections that became final; :mod:`.sources` reads videos, live URLs, capture devices and feature chunks;
:mod:`.watch` ties a source, the backbone and a detection stream together for ``rdfa-s6 watch``.
"""
from __future__ import annotations

from .windows import DetectionStream, StreamDetection, Windowing

__all__ = ["DetectionStream", "StreamDetection", "Windowing"]
