"""FSDP2 on 2 CPU processes over gloo: equal to one process, resumes, exports.

``fsdp_script.py`` runs once for the module (two processes started here as a launcher would:
RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from safetensors.torch import load_file

from aether.pipeline import AetherPipeline
from aether.training.export import export_checkpoint, export_module
from aether.training.sharding import FSDP2Strategy
from tests.training.conftest import cpu_trainer, make_module, subprocess_environ
from tests.training.fsdp_script import EQUAL_STEPS, rank_batches

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

SCRIPT = Path(__file__).with_name("fsdp_script.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(script: Path, args: list[str], world: int = 2, timeout: float = 600) -> None:
    """Run ``script`` as ``world`` processes of one gloo group; AssertionError with the logs on failure."""
    env = subprocess_environ(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(world), NODE_RANK="0"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), *args],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(world)
    ]
    try:
        logs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for r, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"rank {r} failed:\n{log[-4000:]}"


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory, shards) -> Path:
    """The script's outputs, made once per session even when xdist spreads this module's tests
    over workers (they share the session's base folder; a lock lets one of them run it)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = root / "fsdp_run"
    with FileLock(str(root / "fsdp_run.lock")):
        if not (out / "done").is_file():
            out.mkdir(exist_ok=True)
            launch(SCRIPT, [str(out), shards["train"], shards["val"]])
            (out / "done").touch()
    return out


@pytest.fixture(scope="module")
def reference():
    """The same 3 steps in one process: both ranks' batches and generators, the mean of their
    losses, clipping over the whole model, AdamW + OneCycle."""
    torch.manual_seed(0)  # the script's L.seed_everything(0)
    module = make_module(stage2_start_step=2)
    config = module.configure_optimizers()
    opt, sched = config["optimizer"], config["lr_scheduler"]["scheduler"]
    generators = [torch.Generator().manual_seed(module.seed + 1_000_003 * r) for r in (0, 1)]
    batches = [rank_batches(r, EQUAL_STEPS) for r in (0, 1)]
    losses: list[dict[int, float]] = [{}, {}]
    for step in range(EQUAL_STEPS):
        opt.zero_grad()
        total = 0.0
        with mock.patch.object(type(module), "in_stage2", lambda self, s=step: s >= 2):
            for r in (0, 1):
                module._generator = generators[r]
                loss = module.training_step(batches[r][step], step)
                losses[r][step + 1] = float(loss)
                total = total + loss / 2
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.requires_grad], 1.0)
        opt.step()
        sched.step()
    return module, losses


@pytest.mark.parametrize("tag", ["shard", "replicate"])
def test_fsdp2_mesh_equals_one_process(tag, fsdp_run, reference) -> None:
    module, losses = reference
    for r in (0, 1):
        got = torch.load(fsdp_run / f"{tag}_rank{r}.pt")["losses"]
        assert sorted(got) == [1, 2, 3]
        for step, value in losses[r].items():
            assert got[step] == pytest.approx(value, rel=1e-5, abs=1e-6), (r, step)
    gathered = torch.load(fsdp_run / f"{tag}_rank0.pt")["state"]
    state = module.state_dict()
    assert set(gathered) == set(state)
    torch.manual_seed(0)
    initial = make_module(stage2_start_step=2).state_dict()
    moved = 0
    for name, value in state.items():
        torch.testing.assert_close(gathered[name], value, rtol=1e-5, atol=1e-6, msg=name)
        moved += not torch.equal(initial[name], value)
    assert moved > len(state) // 2  # the steps changed the weights


def test_resume_from_sharded_checkpoint_continues_the_loss_curve(fsdp_run) -> None:
    for r in (0, 1):
        run = torch.load(fsdp_run / f"resume_rank{r}.pt")
        assert sorted(run["full"]) == [1, 2, 3, 4] and sorted(run["resumed"]) == [3, 4]
        for step in (3, 4):
            assert run["resumed"][step] == pytest.approx(run["full"][step], rel=1e-5, abs=1e-6), (r, step)
    assert len({round(v, 6) for v in run["full"].values()}) == 4  # the stream moves on
    ckpt = fsdp_run / "ckpts" / "epoch=0-step=2.ckpt"
    assert sorted(p.name for p in ckpt.iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp", "meta.pt"]


def test_export_of_sharded_checkpoint_equals_unsharded_training(fsdp_run, reference, tmp_path, batch) -> None:
    module, _ = reference
    sharded = export_checkpoint(fsdp_run / "shard.ckpt", tmp_path / "sharded")
    plain = export_module(module, tmp_path / "plain")
    a = load_file(str(sharded / "transformer" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(plain / "transformer" / "diffusion_pytorch_model.safetensors"))
    assert set(a) == set(b)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)
    video = module.target_stack.prepare(batch)["video"][0]
    outputs = []
    for folder in (sharded, plain):
        pipe = AetherPipeline.from_pretrained(folder)
        pipe.progress = False
        outputs.append(
            pipe.generate(
                "reconstruction",
                video=video,
                num_frames=video.shape[0],
                fps=24.0,
                num_inference_steps=2,
                generator=torch.Generator().manual_seed(0),
            )
        )
    torch.testing.assert_close(outputs[0].disparity, outputs[1].disparity, rtol=1e-4, atol=1e-5)


def test_mesh_must_match_the_world_size(tmp_path, shards, datamodule_factory, isolated_environ) -> None:
    trainer = cpu_trainer(tmp_path, 4, strategy=FSDP2Strategy(mesh=[2, 2]))
    with pytest.raises(ValueError, match=r"mesh \[2, 2\] needs 4 processes but the trainer has world size 1"):
        trainer.fit(make_module(), datamodule=datamodule_factory(shards))
    with pytest.raises(
        ValueError, match=r"mesh must be \[replicas, shards\] of positive integers, got \[0, 2\]"
    ):
        FSDP2Strategy(mesh=[0, 2])


def test_wrap_classes_must_exist_and_match() -> None:
    with pytest.raises(
        ValueError, match=r"wrap classes \['Conv3d'\] match no submodule of AetherTransformer"
    ):
        FSDP2Strategy(wrap=["torch.nn.Conv3d"]).parallelize(make_module().transformer)
    with pytest.raises(ValueError, match="wrap class 'aether.nowhere.Block' cannot be imported"):
        FSDP2Strategy(wrap=["aether.nowhere.Block"])
    with pytest.raises(ValueError, match="floating-point torch dtype name"):
        FSDP2Strategy(param_dtype="bf16")


def test_resuming_onto_another_world_size_asks_for_consolidation(
    fsdp_run, tmp_path, shards, datamodule_factory, isolated_environ
) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    ckpt = fsdp_run / "ckpts" / "epoch=0-step=2.ckpt"
    trainer = cpu_trainer(tmp_path, 4, strategy=FSDP2Strategy(mesh=[1, 1], param_dtype=None))
    try:
        with pytest.raises(
            ValueError, match=r"written by 2 ranks but this run has world size 1.*aether export"
        ):
            trainer.fit(
                make_module(stage2_start_step=3), datamodule=datamodule_factory(shards), ckpt_path=ckpt
            )
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
