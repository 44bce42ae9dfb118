"""A run's ``metrics.jsonl`` (one JSON object per line: ``kind`` "train" per logged step, "epoch" per epoch),
read and checked once. The training loop writes it (:mod:`rdfa_s6.train.runlog`); plots and reports read it."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Union

from ..errors import DataError

log = logging.getLogger(__name__)


def read_metrics_jsonl(path: Union[str, Path]) -> List[Dict[str, Any]]:
    """The records of a run's ``metrics.jsonl``. Blank lines are skipped; a malformed last line (a run
    killed while writing) is skipped with a warning, a malformed line elsewhere is a :class:`DataError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"training metrics file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"training metrics file {p}: cannot read: {err}") from None
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    records: List[Dict[str, Any]] = []
    for k, (lineno, line) in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            if k == len(lines) - 1:
                log.warning("%s line %d: not valid JSON (a run stopped while writing?): skipped", p, lineno)
                continue
            raise DataError(f"training metrics file {p} line {lineno}: not valid JSON: {err.msg}") from None
        if not isinstance(rec, dict):
            raise DataError(f"training metrics file {p} line {lineno}: expected a JSON object")
        records.append(rec)
    return records
