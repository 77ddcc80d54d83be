"""argparse types for the ``aether`` command: a bad value is a one-line usage error naming the
option's expectation and the value given."""

from __future__ import annotations

import argparse
import math


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def torch_device(text: str) -> str:
    """A torch device that exists on this machine (``cpu``, ``cuda``, ``cuda:N`` with N below the
    GPU count, ``mps`` where available)."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError as err:
        raise argparse.ArgumentTypeError(f"expected a torch device (cpu, cuda:0, ...), got {text!r}") from err
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0 or (device.index or 0) >= count:
            have = "no CUDA GPU" if count == 0 else f"{count} CUDA GPU(s): cuda:0..cuda:{count - 1}"
            raise argparse.ArgumentTypeError(f"{text!r} does not exist: this machine has {have}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} does not exist: MPS is not available on this machine")
    return text
