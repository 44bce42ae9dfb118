"""Which torch device a command or the API runs on: one rule for ``train``, ``test``, ``infer``, ``extract`` and
:class:`rdfa_s6.Detector`. Imports torch lazily (the light commands never need it)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Union

from .errors import UserError
from .messages import shown

if TYPE_CHECKING:
    import torch


def resolve_device(device: Union[str, "torch.device"], local_rank: int = 0) -> "torch.device":
    """The ``torch.device`` for ``device``: ``auto`` is ``cuda:<local_rank>`` when CUDA is available, else ``cpu``;
    ``cuda`` is ``cuda:<local_rank>`` (one GPU per process under torchrun); anything else as torch spells it
    (``cpu``, ``cuda:1``, ``mps``). UserError (one line) for a name torch does not know and for a device this
    torch build or machine does not have (CUDA on a CPU-only build, MPS off Apple silicon)."""
    import torch

    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = str(device).strip()
    given = name
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif name == "cuda":
        name = f"cuda:{local_rank}"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"--device {shown(given)}: not a device name; expected auto, cpu, cuda, cuda:N or mps"
                        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {shown(given)}: CUDA is not available here (this torch build or machine has no "
                            f"CUDA GPU); use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {shown(given)}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UserError(f"--device {shown(given)}: MPS is not available here; use --device cpu or auto")
    elif dev.type not in ("cpu", "meta"):  # meta: shapes without data (tests of device placement)
        raise UserError(f"--device {shown(given)}: {dev.type} devices are not supported; expected auto, cpu, cuda, "
                        f"cuda:N or mps")
    return dev
