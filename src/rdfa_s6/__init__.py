"""rdfa-s6: temporal action localization with RDFA-S6 (selective state spaces), CPU first."""

__version__ = "0.1.0"
