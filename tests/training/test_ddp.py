"""DDP on 2 CPU processes: a few steps, then every rank holds the same weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training.conftest import subprocess_environ

pytestmark = pytest.mark.slow


def test_ddp_two_cpu_processes_keep_identical_weights(tmp_path, shards, module_factory) -> None:
    script = Path(__file__).with_name("ddp_script.py")
    env = subprocess_environ(MASTER_PORT=str(29500 + os.getpid() % 1000))
    proc = subprocess.run(
        [sys.executable, str(script), shards["train"], shards["val"], str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert all(r["world"] == 2 and r["step"] == 3 for r in ranks)
    torch.manual_seed(0)  # the script's initial weights
    initial = module_factory().transformer.state_dict()
    moved = False
    for name, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][name], value, rtol=0, atol=0)
        moved |= initial[name].shape == value.shape and not torch.equal(initial[name], value)
    assert moved
