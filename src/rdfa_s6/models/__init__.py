"""Models: building blocks, the RDFA-S6 encoder and its baselines, neck, points, heads, the detector."""
from .detector import Detector, DetectorOutput, build_detector
from .encoders import ENCODERS, Encoder, build_encoder, register_encoder

__all__ = ["Detector", "DetectorOutput", "ENCODERS", "Encoder", "build_detector", "build_encoder", "register_encoder"]
