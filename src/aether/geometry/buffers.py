"""Output buffers for large CPU results (depth maps, point maps) that are cheap to write the first time.

Writing a fresh buffer costs mostly page faults: the kernel maps and zeroes each new page on its first
write. With 4 KiB pages that is several times the cost of the write itself (a fresh 170 MB point map:
~80 ms against ~14 ms with 2 MiB pages on a 2-core EPYC). numpy's allocator asks the kernel for
transparent huge pages (``madvise(MADV_HUGEPAGE)``) on arrays of 4 MiB and more; torch's CPU allocator
does so only when the process starts with ``THP_MEM_ALLOC_ENABLE=1``, which a library cannot set once
torch is imported. :func:`empty` therefore takes large CPU buffers from numpy (as ``torch.from_numpy``
tensors: ordinary CPU tensors sharing the array's memory) and everything else from ``torch.empty``.
Where the kernel's THP mode is ``never`` both allocators behave alike.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

HUGE_PAGE_MIN_BYTES = 1 << 22
"""Smallest buffer numpy backs with transparent huge pages (its own threshold, 4 MiB)."""

_NUMPY_DTYPES = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.bool: np.bool_,
    torch.uint8: np.uint8,
    torch.int32: np.int32,
    torch.int64: np.int64,
}


def empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
    """An uninitialised contiguous tensor like ``torch.empty(shape, dtype=dtype, device=device)``; on the
    CPU, of at least :data:`HUGE_PAGE_MIN_BYTES` and a dtype numpy has, backed by a numpy array (huge
    pages where the kernel allows them)."""
    device = torch.device(device)
    np_dtype = _NUMPY_DTYPES.get(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if device.type != "cpu" or np_dtype is None or nbytes < HUGE_PAGE_MIN_BYTES:
        return torch.empty(shape, dtype=dtype, device=device)
    return torch.from_numpy(np.empty(shape, dtype=np_dtype))
