"""``aether bench ... --devices 2``: Lightning Fabric launches two CPU processes (gloo) that split
the sequences; the gathered report equals the single-process one."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from aether.cli import main as cli
from aether.evaluation import build_dataset

SYN = [
    "--dataset",
    "synthetic",
    "--num-sequences",
    "3",
    "--num-frames",
    "9",
    "--height",
    "48",
    "--width",
    "64",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_processes_gather_the_single_process_result(tmp_path):
    preds = tmp_path / "preds"
    preds.mkdir()
    rng = np.random.default_rng(0)
    seqs = build_dataset("synthetic", num_sequences=3, num_frames=9, height=48, width=64).sequences(
        "video-depth"
    )
    for seq in seqs:
        depth = seq.depth() * rng.uniform(0.8, 1.2, seq.depth().shape)
        np.savez(preds / f"{seq.name}.npz", depth=depth, c2w=seq.c2w)
    args = ["bench", "video-depth", *SYN, "--predictions", str(preds), "--device", "cpu", "--no-plots"]
    assert cli([*args, "--out", str(tmp_path / "single")]) == 0

    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "aether.cli", *args, "--devices", "2", "--out", str(tmp_path / "dist")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log and "distributed_backend=gloo" in log
    assert proc.stdout.count("wrote ") == 1  # rank 0 alone writes the report

    single = json.loads((tmp_path / "single" / "video-depth_synthetic.json").read_text())
    dist = json.loads((tmp_path / "dist" / "video-depth_synthetic.json").read_text())
    assert sorted(dist["per_sequence"]) == sorted(s.name for s in seqs)
    assert dist["per_sequence"] == single["per_sequence"]
    assert dist["settings"] == single["settings"]
    assert dist["mean"].keys() == single["mean"].keys()
    for key, value in single["mean"].items():
        assert dist["mean"][key] == pytest.approx(value, rel=1e-12)
