"""Code plug-in backbones: ``--backbone py:FILE.py:FACTORY`` or ``py:dotted.module:FACTORY``.

For networks that are not a transformers folder (the VideoMAE V2 repository's timm models, a lab's own model):
``FACTORY()`` (no arguments) returns a :class:`~rdfa_s6.video.backbones.Backbone`: the module and how its input
is made (``short_side``/``crop`` of the decoded frames, ``mean``/``std``, or its own ``transform``). Loading a
plug-in runs its code, so it needs ``trust_remote_code`` (``--trust-remote-code``), the same consent as a
transformers folder with custom code.

What the factory leaves empty is filled in: ``name`` is ``py:<source>:<factory>`` (a file as an absolute path),
``weights`` ``py:<file or module>:<factory>``, ``config_sha256`` the sha256 of the plug-in's source file.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Tuple

from ..errors import UserError
from .backbones import Backbone

PREFIX = "py:"
USAGE = "--backbone py:FILE.py:FACTORY or py:dotted.module:FACTORY"


def parse(spec: str) -> Tuple[str, str]:
    """(file or module, factory name) of ``FILE_OR_MODULE:FACTORY``."""
    target, _, factory = spec.rpartition(":")
    if not target or not factory.isidentifier():
        raise UserError(f"--backbone py:{spec}: expected {USAGE}")
    return target, factory


def _module(target: str) -> ModuleType:
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise UserError(f"--backbone py:{target}: file not found")
        name = "rdfa_s6_plugin_" + hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:16]
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"--backbone py:{target}: not importable as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look a module up by name
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[name]
            raise UserError(f"--backbone py:{target}: importing it failed ({type(err).__name__}: "
                            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})") from None
        return module
    try:
        return importlib.import_module(target)
    except ImportError as err:
        raise UserError(f"--backbone py:{target}: cannot import the module ({err})") from None


def load_plugin(spec: str, trust_remote_code: bool = False) -> Backbone:
    """The backbone ``FACTORY()`` of ``spec`` (``FILE_OR_MODULE:FACTORY``) returns, its identity filled in.
    Raises :class:`UserError` in one line without ``trust_remote_code``, for a missing file, module or factory,
    or a factory that fails or returns something else."""
    target, factory = parse(spec)
    if not trust_remote_code:
        raise UserError(f"--backbone py:{spec} runs the Python code of {target}; pass --trust-remote-code to allow "
                        f"it (only for code you trust)")
    module = _module(target)
    fn = getattr(module, factory, None)
    if not callable(fn):
        raise UserError(f"--backbone py:{spec}: {target} has no function {factory!r}")
    try:
        backbone = fn()
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - the plug-in's failure, in one line
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UserError(f"--backbone py:{spec}: {factory}() failed ({type(err).__name__}: {text})") from None
    if not isinstance(backbone, Backbone):
        raise UserError(f"--backbone py:{spec}: {factory}() returned {type(backbone).__name__}, expected a "
                        f"rdfa_s6.video.backbones.Backbone")
    source = getattr(module, "__file__", None)
    shown = str(Path(target).expanduser().resolve()) if target.endswith(".py") else target
    backbone.name = f"{PREFIX}{shown}:{factory}"
    if not backbone.weights:
        backbone.weights = f"{PREFIX}{Path(target).name if target.endswith('.py') else target}:{factory}"
    if backbone.config_sha256 is None and source and Path(source).is_file():
        backbone.config_sha256 = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    return backbone


__all__ = ["PREFIX", "USAGE", "load_plugin", "parse"]
