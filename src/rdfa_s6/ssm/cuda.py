"""Optional CUDA backend: ``mamba_ssm``'s fused selective-scan kernel (``pip install rdfa-s6[cuda]``).

Kept thin on purpose: it cannot be tested on machines without a GPU. Same signature as the other backends.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor


def is_available() -> bool:
    """True when ``mamba_ssm``'s selective-scan op imports and a CUDA device is present."""
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # noqa: F401  (only whether it imports)
    except Exception:  # ImportError, or a broken CUDA extension build
        return False
    return True


def selective_scan_cuda(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                        z: Optional[Tensor] = None, delta_bias: Optional[Tensor] = None,
                        delta_softplus: bool = False) -> Tensor:
    """:class:`~rdfa_s6.ssm.scan.ScanBackend` by ``mamba_ssm``'s CUDA kernel."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError as err:  # pragma: no cover - needs a GPU build
        raise RuntimeError("the 'cuda' scan needs mamba_ssm: pip install 'rdfa-s6[cuda]'") from err
    out: Tensor = selective_scan_fn(
        u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(),
        D, None if z is None else z.contiguous(), delta_bias, delta_softplus,
    )
    return out
