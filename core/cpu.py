"""What this CPU can do, read from ``/proc/cpuinfo`` (Linux; elsewhere the answers are "no")."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@lru_cache(maxsize=4)
def native_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX or AVX-512 BF16). Elsewhere bf16
    is emulated and slower than fp32, so no ``auto`` setting chooses it. Read once per process."""
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"\b(amx_bf16|avx512_bf16)\b", flags) is not None


MATMUL_PRECISIONS = ("auto", "float32", "bfloat16")
"""The values of a matrix-product precision setting (``generator.local.prefill`` and the like)."""


def uses_bf16(precision: str) -> bool:
    """Whether a precision setting (one of :data:`MATMUL_PRECISIONS`) means bf16 matrix products:
    ``auto`` chooses them only where the CPU has bf16 units (:func:`native_bf16`)."""
    return precision == "bfloat16" or (precision == "auto" and native_bf16())
