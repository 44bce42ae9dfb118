"""Load, validate, override and serialise configurations (YAML presets + dataclasses, no framework).

``load_config("thumos14", ["model.stem.recurrences=2"])`` reads the packaged preset
``rdfa_s6/configs/thumos14.yaml`` (or any ``.yaml`` path), applies dotted overrides and returns a validated
:class:`~rdfa_s6.config.schema.Config`. A preset may start from another one with a top-level ``base: NAME``.
Every problem raises :class:`rdfa_s6.errors.ConfigError` naming the dotted key (and the file).
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import yaml

from ..errors import ConfigError
from .schema import Config

_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.IGNORECASE)
_INT_RE = re.compile(r"^[+-]?\d+$")
_MAX_BASE_DEPTH = 8


# ----------------------------------------------------------------------------------------------- presets
def list_presets() -> List[str]:
    """Names of the presets shipped in ``rdfa_s6/configs``."""
    folder = resources.files("rdfa_s6") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(name_or_path: Union[str, Path]) -> Tuple[Dict[str, Any], str]:
    """The raw mapping of a preset name or a YAML path, and a label for messages."""
    text_path = str(name_or_path)
    path = Path(text_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        label, text = str(path), path.read_text(encoding="utf-8")
    else:
        resource = resources.files("rdfa_s6") / "configs" / f"{text_path}.yaml"
        if not resource.is_file():
            raise ConfigError(
                f"unknown preset {text_path!r}; available: {', '.join(list_presets())} (or give a .yaml path)"
            )
        label, text = f"preset {text_path}", resource.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:  # PyYAML's message spans lines (with a source excerpt): keep one line
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{label}: invalid YAML{where}: {what}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw, label


def _resolve_bases(name_or_path: Union[str, Path], depth: int = 0) -> Tuple[Dict[str, Any], str]:
    raw, label = _read_yaml(name_or_path)
    base = raw.pop("base", None)
    if base is None:
        return raw, label
    if depth >= _MAX_BASE_DEPTH:
        raise ConfigError(f"{label}: 'base' chain deeper than {_MAX_BASE_DEPTH} (a cycle?)")
    if not isinstance(base, str):
        raise ConfigError(f"{label}: 'base' must be a preset name or a path, got {type(base).__name__}")
    parent = Path(str(name_or_path)).parent / base if base.endswith((".yaml", ".yml")) else base
    merged, _ = _resolve_bases(parent, depth + 1)
    _deep_merge(merged, raw)
    return merged, label


def _deep_merge(into: Dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


# ------------------------------------------------------------------------------------------------ public
def load_config(name_or_path: Union[str, Path] = "thumos14", overrides: Sequence[str] = ()) -> Config:
    """A validated config from a preset name or YAML path, with ``key.sub=value`` overrides applied.

    Override values are parsed as YAML scalars/lists (``2``, ``1e-4``, ``true``, ``null``, ``[2, 3]``);
    for string fields the text is taken verbatim.
    """
    raw, label = _resolve_bases(name_or_path)
    raw.setdefault("name", Path(str(name_or_path)).stem if str(name_or_path).endswith((".yaml", ".yml"))
                   else str(name_or_path))
    for item in overrides:
        apply_override(raw, item)
    return config_from_dict(raw, source=label)


def apply_override(raw: Dict[str, Any], item: str) -> None:
    """Set one ``dotted.key=value`` in a raw (not yet validated) config mapping, in place."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, text = item.split("=", 1)
    key = key.strip()
    hint = _field_type(key)  # raises for unknown keys
    value = parse_value(text.strip())
    if hint is str and not isinstance(value, str):
        value = text.strip()  # e.g. stem.kind=none is the string "none", not null
    elif _is_str_type(hint) and value is not None and not isinstance(value, str):
        value = text.strip()
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def parse_value(text: str) -> Any:
    """A command-line value: int, float (``1e-4`` too), bool, null (``null``/``none``), list, or string."""
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    if text.lower() in ("none", "null", "~"):
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return _floatify(value)


def _floatify(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` as a string; turn such strings inside lists into numbers."""
    if isinstance(value, list):
        return [_floatify(v) for v in value]
    if isinstance(value, str) and _FLOAT_RE.match(value):
        return float(value)
    return value


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    """A plain JSON-serialisable mapping of ``cfg`` (inverse of :func:`config_from_dict`)."""
    return dataclasses.asdict(cfg)


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
            raise ConfigError(f"{source}: unknown config key {_dotted(prefix, str(key))!r}{_suggest(prefix, str(key), fields)}")
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
            choices = fields[name].metadata.get("choices")
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
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
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


def _field_type(dotted: str) -> Any:
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


def _is_str_type(hint: Any) -> bool:
    if hint is str:
        return True
    return typing.get_origin(hint) is Union and str in typing.get_args(hint)


# ------------------------------------------------------------------------------------- cross-field rules
def validate(cfg: Config, source: str = "config") -> None:
    """Rules that involve more than one field or a value range; raises ConfigError naming the key."""
    m, d = cfg.model, cfg.data

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: config key {key!r}: {msg}")

    need(d.max_seq_len > 0, "data.max_seq_len", f"must be positive, got {d.max_seq_len}")
    need(d.downsample_rate >= 1, "data.downsample_rate", f"must be >= 1, got {d.downsample_rate}")
    need(d.feat_stride > 0, "data.feat_stride", f"must be positive, got {d.feat_stride}")
    need(d.input_dim is None or d.input_dim > 0, "data.input_dim", f"must be positive or null, got {d.input_dim}")
    need(d.num_classes is None or d.num_classes > 0, "data.num_classes",
         f"must be positive or null, got {d.num_classes}")
    need(d.crop_ratio is None or (len(d.crop_ratio) == 2 and 0 < d.crop_ratio[0] <= d.crop_ratio[1] <= 1),
         "data.crop_ratio", f"must be null or [lo, hi] with 0 < lo <= hi <= 1, got {d.crop_ratio}")
    need(0 <= d.trunc_thresh <= 1, "data.trunc_thresh", f"must be in [0, 1], got {d.trunc_thresh}")
    need(m.embed_dim > 0, "model.embed_dim", f"must be positive, got {m.embed_dim}")
    need(m.embed_layers >= 1, "model.embed_layers", f"must be >= 1, got {m.embed_layers}")
    need(m.embed_kernel_size % 2 == 1, "model.embed_kernel_size", f"must be odd, got {m.embed_kernel_size}")
    need(m.stem.recurrences >= 0, "model.stem.recurrences", f"must be >= 0, got {m.stem.recurrences}")
    need(len(m.stem.kernel_sizes) > 0 and all(k >= 1 for k in m.stem.kernel_sizes), "model.stem.kernel_sizes",
         f"must be a non-empty list of positive ints, got {m.stem.kernel_sizes}")
    need(m.stem.chan_pool_len is None or m.stem.chan_pool_len > 0, "model.stem.chan_pool_len",
         f"must be positive or null, got {m.stem.chan_pool_len}")
    for key, p in (("model.stem.drop_path", m.stem.drop_path), ("model.branch.drop_path", m.branch.drop_path),
                   ("model.baseline.attn_drop_path", m.baseline.attn_drop_path)):
        need(0 <= p < 1, key, f"must be in [0, 1), got {p}")
    need(m.branch.levels >= 0, "model.branch.levels", f"must be >= 0, got {m.branch.levels}")
    need(m.branch.kernel_size >= 1, "model.branch.kernel_size", f"must be >= 1, got {m.branch.kernel_size}")
    need(m.mixer.d_state >= 1 and m.mixer.expand >= 1, "model.mixer", "d_state and expand must be >= 1")
    need(len(m.regression_ranges) == m.branch.levels + 1, "model.regression_ranges",
         f"needs one [lo, hi] per pyramid level = branch.levels + 1 = {m.branch.levels + 1}, "
         f"got {len(m.regression_ranges)}")
    for i, rr in enumerate(m.regression_ranges):
        need(len(rr) == 2 and rr[0] <= rr[1], f"model.regression_ranges[{i}]", f"must be [lo, hi], got {rr}")
    need(m.max_buffer_len_factor > 0, "model.max_buffer_len_factor", "must be positive")
    need(m.head.num_layers >= 1, "model.head.num_layers", f"must be >= 1, got {m.head.num_layers}")
    need(m.head.kernel_size % 2 == 1, "model.head.kernel_size", f"must be odd, got {m.head.kernel_size}")
    need(0 < m.head.prior_prob < 1, "model.head.prior_prob", f"must be in (0, 1), got {m.head.prior_prob}")
    need(m.baseline.window_size > 1 and m.baseline.window_size % 2 == 1, "model.baseline.window_size",
         f"must be odd and > 1, got {m.baseline.window_size}")
    need(m.embed_dim % m.baseline.num_heads == 0, "model.baseline.num_heads",
         f"must divide model.embed_dim={m.embed_dim}, got {m.baseline.num_heads}")
    need(cfg.train.epochs >= 0 and cfg.train.batch_size >= 1, "train", "epochs >= 0 and batch_size >= 1")
    need(0 <= cfg.train.ema_decay < 1, "train.ema_decay", f"must be in [0, 1), got {cfg.train.ema_decay}")
    need(len(cfg.eval.tiou_thresholds) > 0, "eval.tiou_thresholds", "must not be empty")
