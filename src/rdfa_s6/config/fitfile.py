"""The preset file ``rdfa-s6 init`` writes: a :class:`~rdfa_s6.config.fit.Fit` as YAML (``base:``, then every
fitted key with the statistic it came from as a comment), and the check that it loads as ``train`` reads it."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Sequence

from ..messages import one_line
from .schema import Config

if TYPE_CHECKING:
    from .fit import Fit


def yaml_value(value: Any) -> str:
    """One value as flow-style YAML that reads back as ``value``."""
    import yaml

    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    text = yaml.safe_dump([value], default_flow_style=True, width=1 << 30, allow_unicode=False).strip()
    return text[1:-1]


def to_yaml(fit: Fit, header: Sequence[str] = ()) -> str:
    """The preset file: comments (``header``, the dataset, what could not be inferred), ``base:``, then every
    fitted key with the statistic it came from as a comment."""
    lines = [f"# {one_line(h)}" for h in header]
    lines += [f"# {one_line(s)}" for s in fit.summary]
    if fit.unknown:
        lines.append("# could not infer:")
        lines += [f"#   - {one_line(u)}" for u in fit.unknown]
    lines += ["", f"base: {yaml_value(fit.base)}"]
    order: Dict[str, int] = {}
    for key in fit.values:  # keys of one section together, sections in the order they first appear
        parts = key.split(".")
        for i in range(1, len(parts) + 1):
            order.setdefault(".".join(parts[:i]), len(order))
    keys = sorted(fit.values, key=lambda k: [order[".".join(k.split(".")[:i])] for i in range(1, k.count(".") + 2)])
    opened: List[str] = []
    for key in keys:
        value = fit.values[key]
        parts = key.split(".")
        common = 0
        while common < min(len(opened), len(parts) - 1) and opened[common] == parts[common]:
            common += 1
        opened = opened[:common]
        for depth in range(common, len(parts) - 1):
            if depth == 0:
                lines.append("")
            lines.append("  " * depth + f"{parts[depth]}:")
            opened.append(parts[depth])
        lines.append("  " * (len(parts) - 1) + f"{parts[-1]}: {yaml_value(value)}  # {one_line(fit.why[key])}")
    return "\n".join(lines) + "\n"


def preset_config(text: str) -> Config:
    """The config the preset ``text`` loads to, through :func:`rdfa_s6.config.load_config` as ``train`` reads it
    (a ConfigError names the key otherwise). The base must be a preset name or an absolute path."""
    import tempfile
    from pathlib import Path

    from .loader import load_config

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fitted.yaml"
        path.write_text(text, encoding="utf-8")
        return load_config(path)
