"""Launched by test_ddp.py: a few DDP steps on 2 CPU processes (gloo); each rank saves its weights.

Usage: python ddp_script.py TRAIN_SHARDS VAL_SHARDS OUT_DIR
"""

import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import datamodule, make_module

if __name__ == "__main__":
    torch.set_num_threads(1)
    train, val, out = sys.argv[1:4]
    L.seed_everything(0)
    module = make_module(stage2_start_step=2)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=datamodule({"train": train, "val": val}, batch_size=1))
    state = {k: v.detach().clone() for k, v in module.transformer.state_dict().items()}
    torch.save(
        {"state": state, "step": trainer.global_step, "world": trainer.world_size},
        Path(out) / f"rank{trainer.global_rank}.pt",
    )
