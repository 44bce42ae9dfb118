"""Load, override and serialise configurations (YAML presets + dataclasses, no framework).

``load_config("thumos14", ["model.stem.recurrences=2"])`` reads the packaged preset
``rdfa_s6/configs/thumos14.yaml`` (or any ``.yaml`` path), applies dotted overrides and returns a validated
:class:`~rdfa_s6.config.schema.Config`. A preset may start from another one with a top-level ``base: NAME``.
Every problem raises :class:`rdfa_s6.errors.ConfigError` naming the dotted key (and the file); the key and
type checks live in :mod:`.checks`.
"""
from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import yaml

from ..errors import ConfigError
from .checks import FLOAT_RE, config_from_dict, field_type, is_str_type
from .schema import Config

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
    hint = field_type(key)  # raises for unknown keys
    value = parse_value(text.strip())
    if hint is str and not isinstance(value, str):
        value = text.strip()  # e.g. stem.kind=none is the string "none", not null
    elif is_str_type(hint) and value is not None and not isinstance(value, str):
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
    if FLOAT_RE.match(text):
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
    if isinstance(value, str) and FLOAT_RE.match(value):
        return float(value)
    return value


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    """A plain JSON-serialisable mapping of ``cfg`` (inverse of :func:`config_from_dict`)."""
    return dataclasses.asdict(cfg)
