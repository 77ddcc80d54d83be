"""Launched by test_fsdp.py as 2 CPU processes over gloo (RANK/WORLD_SIZE/LOCAL_RANK set by the test).

Usage: python fsdp_script.py OUT_DIR TRAIN_SHARDS VAL_SHARDS

1. FSDP2 with float32 parameters, 3 steps on fixed per-rank batches (rank r, step s: the
   synthetic clip of seed 2s + r), on a (1 x 2) mesh ("shard": ZeRO-2-like, no resharding,
   activation checkpointing) and on a (2 x 1) mesh ("replicate": resharding, no checkpointing);
   per-rank losses and the gathered final state go to OUT_DIR/{tag}_rank{r}.pt, the sharded
   checkpoint to OUT_DIR/{tag}.ckpt.
2. FSDP2 with resharding on the shard stream: 4 steps with a sharded checkpoint every 2 steps,
   then a fresh module resumed from the step-2 checkpoint; losses go to OUT_DIR/resume_rank{r}.pt.
"""

import sys
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

sys.path.insert(0, str(Path(__file__).parent))
from aether.training.checkpoints import unsharded_copy
from aether.training.sharding import FSDP2Strategy
from conftest import LossRecorder, cpu_trainer, datamodule, make_module, synthetic_batch

EQUAL_STEPS, RESUME_STEPS, CHECKPOINT_EVERY = 3, 4, 2


def rank_batches(rank: int, steps: int) -> list[dict]:
    """The batch rank ``rank`` trains on at each step (one clip each)."""
    return [synthetic_batch(seeds=(2 * step + rank,)) for step in range(steps)]


def trainer(max_steps: int, root: Path, callbacks: list, mesh=(1, 2), **strategy) -> L.Trainer:
    return cpu_trainer(
        root,
        max_steps,
        devices=2,
        strategy=FSDP2Strategy(mesh=mesh, param_dtype=None, timeout=timedelta(seconds=120), **strategy),
        precision="32-true",
        gradient_clip_val=1.0,
        callbacks=callbacks,
        use_distributed_sampler=False,
    )


def equal_run(out: Path, rank: int, tag: str, mesh: tuple[int, int], **strategy) -> None:
    L.seed_everything(0)
    module = make_module(stage2_start_step=2)
    recorder = LossRecorder()
    fit = trainer(EQUAL_STEPS, out, [recorder], mesh=mesh, **strategy)
    loader = torch.utils.data.DataLoader(rank_batches(rank, EQUAL_STEPS), batch_size=None)
    fit.fit(module, train_dataloaders=loader)
    fit.save_checkpoint(out / f"{tag}.ckpt")  # sharded: a folder of per-rank shards
    copy = unsharded_copy(module)  # gathered on rank 0
    state = copy.state_dict() if copy is not None else {}
    torch.save({"losses": recorder.losses, "state": state}, out / f"{tag}_rank{rank}.pt")


def resume_run(out: Path, rank: int, shards: dict[str, str]) -> None:
    ckpts = out / "ckpts"
    full = LossRecorder()
    every = ModelCheckpoint(dirpath=ckpts, every_n_train_steps=CHECKPOINT_EVERY, save_top_k=-1)
    L.seed_everything(0)
    trainer(RESUME_STEPS, out, [full, every]).fit(
        make_module(stage2_start_step=3), datamodule=datamodule(shards, batch_size=1)
    )
    torch.manual_seed(1234)  # a fresh start: other initial weights and global RNG
    resumed = LossRecorder()
    trainer(RESUME_STEPS, out, [resumed]).fit(
        make_module(stage2_start_step=3),
        datamodule=datamodule(shards, batch_size=1),
        ckpt_path=ckpts / f"epoch=0-step={CHECKPOINT_EVERY}.ckpt",
    )
    torch.save({"full": full.losses, "resumed": resumed.losses}, out / f"resume_rank{rank}.pt")


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    shards = {"train": sys.argv[2], "val": sys.argv[3]}
    rank = int(__import__("os").environ["RANK"])
    equal_run(out, rank, "shard", (1, 2), reshard_after_forward=False, activation_checkpointing=True)
    equal_run(out, rank, "replicate", (2, 1), reshard_after_forward=True, activation_checkpointing=False)
    resume_run(out, rank, shards)
