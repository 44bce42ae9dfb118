"""SIGINT/SIGTERM during a training run, for the command line: the process (its main thread) is the CLI's, so
the CLI installs the handlers, around :meth:`rdfa_s6.train.loop.Trainer.run` only; the library installs none."""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Sequence

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(request_stop: Callable[[int], None], signals: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """While the block runs, the first of ``signals`` calls ``request_stop(signum)`` (the trainer finishes its
    iteration, saves a resume point and raises TrainingInterrupted); a second one acts at once (the previous
    handler is back). The previous handlers are restored on the way out. Main thread only (``signal.signal``)."""
    previous: Dict[int, Any] = {}

    def handle(signum: int, _frame: Any) -> None:
        signal.signal(signum, previous.get(signum, signal.SIG_DFL))
        request_stop(signum)

    try:
        for s in signals:
            previous[s] = signal.signal(s, handle)
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
