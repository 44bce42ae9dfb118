"""Models: building blocks, the RDFA-S6 encoder and its baselines, neck, points, heads, the detector network
(:class:`DetectorNet`; ``Detector`` is its deprecated old name)."""
from typing import Any

from .detector import DetectorNet, DetectorOutput, build_detector, deprecated_name
from .encoders import ENCODERS, Encoder, build_encoder, register_encoder

__all__ = ["DetectorNet", "DetectorOutput", "ENCODERS", "Encoder", "build_detector", "build_encoder",
           "register_encoder"]


def __getattr__(name: str) -> Any:
    return deprecated_name(__name__, name)
