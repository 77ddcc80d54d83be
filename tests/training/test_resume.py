"""A run killed mid-epoch and resumed from its checkpoint lands on the same loss curve."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from tests.training.conftest import LossRecorder, cpu_trainer

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


def _fit(module, data, root, max_steps, ckpt_path=None, every=None):
    recorder = LossRecorder()
    callbacks = [recorder]
    if every:
        callbacks.append(
            ModelCheckpoint(dirpath=root, every_n_train_steps=every, save_top_k=-1, save_last=False)
        )
    trainer = cpu_trainer(
        root,
        max_steps,
        gradient_clip_val=1.0,
        callbacks=callbacks,
    )
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return recorder.losses


def test_kill_and_resume_reproduces_losses(tmp_path, shards, module_factory, datamodule_factory) -> None:
    full = _fit(module_factory(stage2_start_step=4), datamodule_factory(shards), tmp_path / "a", 6, every=3)
    ckpt = next((tmp_path / "a").glob("*step=3.ckpt"))
    # a fresh process state: other weights, other global RNG
    torch.manual_seed(1234)
    resumed = _fit(
        module_factory(stage2_start_step=4), datamodule_factory(shards), tmp_path / "b", 6, ckpt_path=ckpt
    )
    assert sorted(full) == [1, 2, 3, 4, 5, 6] and sorted(resumed) == [4, 5, 6]
    for step in (4, 5, 6):
        assert resumed[step] == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    assert len({round(v, 6) for v in full.values()}) == 6  # the stream really moves on
