"""Resuming: the skipped-sample count of a resumed stream, and stray shards in a resumed output."""

import shutil

import numpy as np
import pytest

from aether.cli import main as cli
from aether.data import AetherDataModule
from aether.data.shards import write_shards
from aether.data.verify import verify_output

from ._build import clip_sample, within

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_resumed_pass_counts_each_skipped_sample_once(tmp_path, num_workers):
    zero = np.zeros((17, 8, 12), np.float32)  # no valid depth pixel: skipped
    samples = [clip_sample(f"k{i}", seed=i, **({"depth": zero} if i % 3 == 0 else {})) for i in range(12)]
    urls = write_shards(samples, str(tmp_path / "s-%06d.tar"), rgb_codec="npy", validate=False, maxcount=4)

    def datamodule():
        return AetherDataModule(train_urls=urls, frames=[17], fps=[12], batch_size=2, height=8, width=12,
                                num_workers=num_workers, shuffle_buffer=1, resampled=False)  # fmt: skip

    with within(120):
        whole = datamodule()
        assert len(list(whole.train_dataloader())) == 4 and whole.skipped_samples == 4  # k0, k3, k6, k9
        first = datamodule()
        batches = iter(first.train_dataloader())
        next(batches), next(batches)
        state = first.state_dict()
        resumed = datamodule()
        resumed.load_state_dict(state)
        assert len(list(resumed.train_dataloader())) == 2
    assert resumed.skipped_samples == 4
    assert resumed.state_dict()["skipped_samples"] == 4
    second = list(resumed.train_dataloader())  # the next epoch adds its own skips to the count
    assert len(second) == 4 and resumed.skipped_samples == 8


SYNTH = ["--clips", "3", "--maxcount", "1", "--frames", "5", "--height", "16", "--width", "24", "--quiet"]


@pytest.fixture
def synth_out(tmp_path):
    out = tmp_path / "o"
    assert cli(["synth", "--out", str(out), *SYNTH]) == 0
    return out


@pytest.mark.parametrize("stray", ["copy.tar", "synth-000001-old.tar"])
def test_a_stray_shard_is_reported_by_resume_and_verify_with_a_hint_that_works(synth_out, capsys, stray):
    shutil.copy(synth_out / "synth-000001.tar", synth_out / stray)
    data = (synth_out / "synth-000000.tar").read_bytes()
    (synth_out / "synth-000000.tar").write_bytes(data[: len(data) // 2])  # damaged: its unit is done again
    (synth_out / "synth-000002.tar").unlink()  # missing: its unit is done again
    problems = verify_output(synth_out)["problems"]
    assert any(
        "synth-000000.tar is damaged" in p and "--resume renders its unit again" in p for p in problems
    )
    assert any(
        f"{stray} was written by no unit of the plan (a copy or a leftover: move it out" in p
        for p in problems
    )
    capsys.readouterr()
    assert cli(["synth", "--out", str(synth_out), *SYNTH, "--resume"]) == 1  # not "all done"
    err = capsys.readouterr().err
    assert f"{synth_out / stray} was written by no unit of the plan (a copy or a leftover: move it out" in err
    result = verify_output(synth_out)
    assert result["done"] == 3 and not result["ok"]
    assert result["problems"] == [
        f"{stray} was written by no unit of the plan (a copy or a leftover: move it out of the folder, "
        "or readers of it read its samples too)"
    ]
    (synth_out / stray).unlink()  # what the hint says
    assert verify_output(synth_out)["ok"]
    assert cli(["synth", "--out", str(synth_out), *SYNTH, "--resume"]) == 0


def test_an_interrupted_units_file_is_left_to_resume(synth_out):
    (synth_out / "plan" / "done" / "synth-000001.json").unlink()  # killed between rename and record
    problems = verify_output(synth_out)["problems"]
    assert problems == [
        "synth-000001.tar belongs to unit synth-000001, which is not done (an interrupted unit's file: "
        "a rerun with --resume rewrites it)"
    ]
    assert cli(["synth", "--out", str(synth_out), *SYNTH, "--resume"]) == 0
    assert verify_output(synth_out)["ok"]
