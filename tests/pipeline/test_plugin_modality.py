"""A third-party modality registered only here trains, exports, loads and decodes into World4D.

Nothing outside this module knows the "foreground" modality: it is registered the way a plug-in
would be, named in the module's ``target_modalities``, and every later step (export, the spec,
``AetherPipeline.from_pretrained``, the sampler's decode, ``World4D.modalities``) follows from it.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from aether.modalities import MODALITIES, ModalityCodec
from aether.models.testing import tiny_module_kwargs
from aether.pipeline import AetherPipeline
from aether.training.export import export_module
from aether.training.module import AetherModule
from tests.clips import synthetic_batch

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class ForegroundCodec(ModalityCodec):
    """A 1-channel modality: the valid-depth mask in [-1, 1], replicated to 3 channels and encoded
    by the latent backend; decoded as the channel mean mapped to [0, 1]."""

    name = "foreground"
    inputs = ("valid",)

    @property
    def channels(self) -> int:
        return self.backend.latent_channels

    def encode(self, clip, *, sample=False, generator=None):
        mask = clip["valid"].float() * 2 - 1
        return self.backend.encode(
            mask[:, :, None].expand(-1, -1, 3, -1, -1), sample=sample, generator=generator
        )

    def decode(self, latents, clip=None):
        return {"foreground": (self.backend.decode(latents).float().mean(2) + 1) / 2}


@pytest.fixture
def foreground():
    """The plug-in registered as a third party would (``MODALITIES.register``), for this test only."""
    MODALITIES.register("foreground", ForegroundCodec)
    yield "foreground"
    MODALITIES._items.pop("foreground")  # other tests list the registered names


def test_plugin_modality_trains_exports_loads_and_decodes(foreground, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    module = AetherModule(
        **tiny_module_kwargs(), target_modalities=["color", "disparity", "raymap", foreground]
    )
    assert module.transformer.config.out_channels == 16 + 16 + 24 + 16
    before = module.transformer.proj_out.weight.detach().clone()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, train_dataloaders=DataLoader([synthetic_batch()] * 3, batch_size=None))
    assert trainer.global_step == 3
    assert torch.isfinite(trainer.callback_metrics["train/loss_latent_foreground"])
    assert not torch.equal(module.transformer.proj_out.weight, before)

    out = export_module(module, tmp_path / "model")
    pipe = AetherPipeline.from_pretrained(out)
    pipe.progress = False
    assert pipe.spec.target_modalities == ("color", "disparity", "raymap", "foreground")
    image = synthetic_batch()["video"][0, 0]
    world = pipe.predict(image, num_frames=17, num_inference_steps=2, seed=3)
    assert set(world.modalities) == {"foreground"}
    assert world.modalities["foreground"].shape == (17, 48, 64)
    assert world.depth.shape == (17, 48, 64) and world.c2w.shape == (17, 4, 4)
    # the value is the plug-in's own decode of its slice of the sampled latents
    sample = pipe.generate(
        "prediction", observation=image, num_frames=17, num_inference_steps=2,
        generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    part = sample.latents[:, :, pipe.targets.slices["foreground"]]
    expected = (pipe.backend.decode(part).float().mean(2)[0] + 1) / 2
    np.testing.assert_array_equal(world.modalities["foreground"], expected.numpy())
    saved = world.save(tmp_path / "world", formats=("npz",))
    from aether.pipeline import World4D

    np.testing.assert_array_equal(World4D.load(saved["npz"]).modalities["foreground"], expected.numpy())
