"""Selective state spaces: the scan (several backends) and the Bi-S6 / FA-Bi-S6 mixer."""
from .bis6 import BiS6, MixerFactory, make_bis6
from .reference import selective_scan_reference
from .scan import BACKENDS, ScanBackend, available_backends, register_scan_backend, resolve_backend, selective_scan

__all__ = [
    "BACKENDS",
    "BiS6",
    "MixerFactory",
    "ScanBackend",
    "available_backends",
    "make_bis6",
    "register_scan_backend",
    "resolve_backend",
    "selective_scan",
    "selective_scan_reference",
]
