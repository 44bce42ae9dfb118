"""Selective state spaces: the scan (several backends) and the Bi-S6 / FA-Bi-S6 mixer."""
from .scan import BACKENDS, available_backends, resolve_backend, selective_scan
from .reference import selective_scan_reference

__all__ = ["BACKENDS", "available_backends", "resolve_backend", "selective_scan", "selective_scan_reference"]
