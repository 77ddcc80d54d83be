"""Shared test configuration: deterministic seeds, CPU threads limited for a 2-core machine."""

import os
import tempfile

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["AETHER_CACHE_DIR"] = tempfile.mkdtemp(prefix="aether-test-cache-")  # never the user's cache
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
