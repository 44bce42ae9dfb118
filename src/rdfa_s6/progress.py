"""How long-running library calls report progress: callbacks that the caller renders (the CLI with tqdm).

Library code does not print and does not own progress bars; it calls what it is given, if anything.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Protocol, TextIO

#: ``progress(done, total)``: called after each item (a video) with how many are done out of ``total``
Progress = Callable[[int, int], None]


class TrainProgress(Protocol):
    """What :meth:`rdfa_s6.train.loop.Trainer.run` reports, on the main process only."""

    def epoch_start(self, epoch: int, done: int, total: int) -> None:
        """Before the first iteration of ``epoch`` that this run does (``done`` > 0 after resumption)."""

    def iteration(self, epoch: int, done: int, total: int, stats: Dict[str, Any]) -> None:
        """After each iteration: ``done`` of the ``total`` iterations of ``epoch`` (1-based) are done;
        ``stats`` as the ``train`` records of metrics.jsonl (``loss``, ``lr``, ...)."""

    def epoch(self, record: Dict[str, Any]) -> None:
        """After each epoch (and its validation): the ``epoch`` record of metrics.jsonl."""


def report(progress: Optional[Progress], done: int, total: int) -> None:
    """Call ``progress(done, total)`` if there is a callback."""
    if progress is not None:
        progress(done, total)


class Bar:
    """A :data:`Progress` callback drawn as a bar by ``bar_class`` (``tqdm.tqdm`` for a terminal, ``tqdm.auto.tqdm``
    in a notebook), which the caller imports: the bar opens at the first call and closes at ``total``."""

    def __init__(self, bar_class: Callable[..., Any], desc: str, unit: str = "video", disable: Optional[bool] = None,
                 file: Optional[TextIO] = None) -> None:
        """``disable``: as tqdm's (None: no bar when the output is not a terminal)."""
        self.bar_class, self.desc, self.unit, self.disable, self.file = bar_class, desc, unit, disable, file
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = self.bar_class(total=total, desc=self.desc, unit=self.unit, leave=False, file=self.file,
                                      disable=self.disable)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def notebook_bar(desc: str) -> Bar:
    """A ``tqdm.auto`` bar (a widget in a notebook, text in a terminal) for the library's ``progress=True``."""
    from tqdm.auto import tqdm

    return Bar(tqdm, desc, disable=False)
