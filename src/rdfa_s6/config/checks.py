"""A raw mapping into a validated :class:`~rdfa_s6.config.schema.Config`: every key and type checked against
the dataclass schema (unknown keys get a "did you mean" hint naming the dotted key), then every number against
its range (the one table of ranges, in :mod:`.ranges`) and the rules that involve more than one field. Every
problem is one :class:`rdfa_s6.errors.ConfigError` line.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from typing import Any, List, Mapping, Union

from ..errors import ConfigError
from .ranges import check_ranges
from .schema import Config, choices_of

#: a float as text, ``1e-4`` included (YAML 1.1 reads that as a string)
FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.IGNORECASE)


def config_from_dict(raw: Mapping[str, Any], source: str = "config") -> Config:
    """A validated :class:`Config` from a nested mapping; unknown keys and wrong types raise ConfigError."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping, got {type(raw).__name__}")
    cfg = _build(Config, raw, "", source)
    validate(cfg, source)
    return cfg


# ---------------------------------------------------------------------------------------- type checking
def _build(cls: type, raw: Mapping[str, Any], prefix: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            suggestion = _suggest(prefix, str(key), fields)
            raise ConfigError(f"{source}: unknown config key {_dotted(prefix, str(key))!r}{suggestion}")
    values = {}
    for name, value in raw.items():
        dotted = _dotted(prefix, name)
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: config key {dotted!r}: expected a mapping (section), "
                                  f"got {type(value).__name__} {value!r}")
            values[name] = _build(hint, value, dotted, source)
        else:
            values[name] = _check(hint, value, dotted, source)
            choices = choices_of(fields[name])
            if choices and values[name] is not None and values[name] not in choices:
                raise ConfigError(f"{source}: config key {dotted!r}: expected one of {', '.join(choices)}, "
                                  f"got {values[name]!r}")
    return cls(**values)


def _check(hint: Any, value: Any, dotted: str, source: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        inner = [a for a in args if a is not type(None)]
        if value is None and len(inner) < len(args):
            return None
        return _check(inner[0], value, dotted, source)
    if origin in (list, List):
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise _type_error(dotted, _type_name(hint), value, source)
        return [_check(args[0], v, f"{dotted}[{i}]", source) for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(dotted, "bool", value, source)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _type_error(dotted, "int", value, source)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and FLOAT_RE.match(value.strip()):
            return float(value)
        raise _type_error(dotted, "float", value, source)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _type_error(dotted, "str", value, source)
    raise ConfigError(f"{source}: config key {dotted!r} has an unsupported schema type {hint!r}")  # pragma: no cover


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        inner = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(inner) + (" or null" if len(inner) < len(args) else "")
    if origin in (list, List):
        return f"list of {_type_name(args[0])}"
    return getattr(hint, "__name__", str(hint))


def _type_error(dotted: str, expected: str, value: Any, source: str) -> ConfigError:
    return ConfigError(f"{source}: config key {dotted!r}: expected {expected}, got {type(value).__name__} {value!r}")


def _dotted(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _suggest(prefix: str, name: str, fields: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(fields), n=3, cutoff=0.6)
    if not close:
        # maybe the key exists in another section
        close = [k for k in _all_keys() if k.rsplit(".", 1)[-1] == name]
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f" (did you mean {' or '.join(repr(_dotted(prefix, c)) for c in close)}?)"


def _all_keys(cls: type = Config, prefix: str = "") -> List[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        dotted = _dotted(prefix, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.extend(_all_keys(hints[f.name], dotted))
        else:
            keys.append(dotted)
    return keys


def field_type(dotted: str) -> Any:
    """The schema type of a dotted key; unknown keys raise ConfigError with suggestions."""
    cls: Any = Config
    prefix = ""
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(cls):
            raise ConfigError(f"unknown config key {dotted!r}: {prefix!r} is not a section")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            raise ConfigError(f"unknown config key {_dotted(prefix, part)!r}{_suggest(prefix, part, fields)}")
        cls = typing.get_type_hints(cls)[part]
        prefix = _dotted(prefix, part)
    return cls


def is_str_type(hint: Any) -> bool:
    if hint is str:
        return True
    return typing.get_origin(hint) is Union and str in typing.get_args(hint)


# ------------------------------------------------------------------------------------- cross-field rules
def validate(cfg: Config, source: str = "config") -> None:
    """Every number within its range (:func:`.ranges.check_ranges`, the one table of ranges), then the rules that
    involve more than one field or the shape of a value; raises ConfigError naming the key."""
    check_ranges(cfg, source)
    m, d = cfg.model, cfg.data

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: config key {key!r}: {msg}")

    need(d.crop_ratio is None or (len(d.crop_ratio) == 2 and d.crop_ratio[0] <= d.crop_ratio[1]),
         "data.crop_ratio", f"must be null or [lo, hi] with 0 < lo <= hi <= 1, got {d.crop_ratio}")
    need(m.embed_kernel_size % 2 == 1, "model.embed_kernel_size", f"must be odd, got {m.embed_kernel_size}")
    need(len(m.stem.kernel_sizes) > 0, "model.stem.kernel_sizes",
         f"must be a non-empty list of positive ints, got {m.stem.kernel_sizes}")
    need(len(m.regression_ranges) == m.branch.levels + 1, "model.regression_ranges",
         f"needs one [lo, hi] per pyramid level = branch.levels + 1 = {m.branch.levels + 1}, "
         f"got {len(m.regression_ranges)}")
    for i, rr in enumerate(m.regression_ranges):
        need(len(rr) == 2 and rr[0] <= rr[1], f"model.regression_ranges[{i}]", f"must be [lo, hi], got {rr}")
    need(m.head.kernel_size % 2 == 1, "model.head.kernel_size", f"must be odd, got {m.head.kernel_size}")
    need(m.baseline.window_size % 2 == 1, "model.baseline.window_size",
         f"must be odd and > 1, got {m.baseline.window_size}")
    need(m.embed_dim % m.baseline.num_heads == 0, "model.baseline.num_heads",
         f"must divide model.embed_dim={m.embed_dim}, got {m.baseline.num_heads}")
    need(len(cfg.eval.tiou_thresholds) > 0, "eval.tiou_thresholds", "must not be empty")
