"""Training benchmark: the tiny recipe on CPU, and a paper-scale estimate under FSDP.

Measures, for ``recipes/tiny.yaml`` (model and data as the recipe sets them):
- training clips per second (forward, backward, optimizer step, clipping) and the data
  loader's share of the step time (time waiting for the next batch / total step time);
- peak resident memory of the process.

Estimates, for ``recipes/aether.yaml`` (CogVideoX-5b-I2V widened to 96/56 channels,
41 frames at 480x720, local batch 4): parameters (counted on the meta device from the
published config), step FLOPs per GPU and memory per GPU under FSDP (ZeRO-2-like hybrid
sharding over 8 GPUs, and full hybrid sharding), with activation checkpointing per block.

    .venv/bin/python benchmarks/bench_training.py [--steps 30] [--threads 1]

Writes benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "training.json"

# CogVideoX-5b-I2V transformer config (THUDM/CogVideoX-5b-I2V transformer/config.json)
COGVIDEOX_5B_I2V = {
    "num_attention_heads": 48,
    "attention_head_dim": 64,
    "in_channels": 32,
    "out_channels": 16,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "time_embed_dim": 512,
    "text_embed_dim": 4096,
    "num_layers": 42,
    "dropout": 0.0,
    "attention_bias": True,
    "sample_width": 90,
    "sample_height": 60,
    "sample_frames": 49,
    "patch_size": 2,
    "temporal_compression_ratio": 4,
    "max_text_seq_length": 226,
    "activation_fn": "gelu-approximate",
    "timestep_activation_fn": "silu",
    "norm_elementwise_affine": True,
    "norm_eps": 1e-5,
    "spatial_interpolation_scale": 1.875,
    "temporal_interpolation_scale": 1.0,
    "use_rotary_positional_embeddings": True,
    "use_learned_positional_embeddings": True,
}


def tiny_benchmark(steps: int, threads: int) -> dict:
    """Time ``steps`` optimizer steps of the tiny recipe on shards rendered for the benchmark."""
    from aether.data import synthesize_shards
    from aether.training.cli import build_cli, load_recipe

    torch.set_num_threads(threads)
    recipe = load_recipe(ROOT / "recipes" / "tiny.yaml")
    recipe.pop("run")
    init = recipe["data"]["init_args"]
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "train"
        synthesize_shards(
            shards,
            16,
            frames=41,
            height=init["height"],
            width=init["width"],
            seed=0,
            maxcount=4,
            progress=False,
        )
        init["train_urls"] = init["val_urls"] = str(shards)
        recipe["trainer"].update(logger=False, enable_checkpointing=False, default_root_dir=tmp)
        cli = build_cli(recipe)
        module, data = cli.model, cli.datamodule
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        opt = torch.optim.AdamW(module.transformer.parameters(), lr=1e-3)
        loader = iter(data.train_dataloader())
        wait = compute = 0.0
        warmup = 3
        for step in range(steps + warmup):
            t0 = time.perf_counter()
            batch = next(loader)
            t1 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = module.training_step(batch, step)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.transformer.parameters(), 1.0)
            opt.step()
            t2 = time.perf_counter()
            if step >= warmup:
                wait += t1 - t0
                compute += t2 - t1
        batch_size = int(init["batch_size"])
        total = wait + compute
        return {
            "steps": steps,
            "batch_size": batch_size,
            "frames": list(init["frames"]),
            "resolution": [init["height"], init["width"]],
            "num_workers": init["num_workers"],
            "torch_threads": threads,
            "parameters": sum(p.numel() for p in module.transformer.parameters()),
            "step_seconds": total / steps,
            "samples_per_second": steps * batch_size / total,
            "loader_share_of_step": wait / total,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_training_mib": rss_before,
        }


def paper_scale_estimate(gpus_per_node: int = 8, local_batch: int = 4, frames: int = 41) -> dict:
    """FLOPs and memory per GPU for one optimizer step of the paper recipe (analytic)."""
    from diffusers import CogVideoXTransformer3DModel

    config = dict(COGVIDEOX_5B_I2V, in_channels=96, out_channels=56)
    with torch.device("meta"):
        model = CogVideoXTransformer3DModel(**config)
    params = sum(p.numel() for p in model.parameters())
    hidden = config["num_attention_heads"] * config["attention_head_dim"]
    layers = config["num_layers"]
    latent_frames = (frames - 1) // 4 + 1
    patches = (config["sample_height"] // 2) * (config["sample_width"] // 2)
    tokens = latent_frames * patches + config["max_text_seq_length"]
    # forward: 2 FLOPs per parameter per token (matmuls) + attention scores and values 4·L²·D per layer
    forward = 2 * params * tokens + 4 * tokens**2 * hidden * layers
    # training: forward + backward (2x forward) + recomputed forward under activation checkpointing
    per_sample = 4 * forward
    per_gpu_step = per_sample * local_batch
    # memory (bytes): fp32 master parameters, fp32 gradients, Adam's two fp32 moments
    shard = gpus_per_node
    zero2 = 4 * params + (4 + 4 + 8) * params / shard  # parameters kept gathered between fwd and bwd
    zero3 = (4 + 4 + 4 + 8) * params / shard + 4 * params / layers * 2  # + two gathered blocks
    checkpoints = tokens * hidden * 2 * layers * local_batch  # bf16 block inputs kept for recompute
    # one block's activations while it is recomputed and back-propagated (bf16): qkv, attention
    # output, 4x MLP, norms ~ 16·L·D values plus the flash-attention workspace (no L² scores)
    block = 16 * tokens * hidden * 2 * local_batch
    gib = 1024**3
    a100_bf16 = 312e12
    return {
        "parameters": params,
        "tokens_per_sample": tokens,
        "latent_frames": latent_frames,
        "flops_forward_per_sample": forward,
        "flops_per_gpu_step": per_gpu_step,
        "seconds_per_step_at_40pct_mfu_a100": per_gpu_step / (0.4 * a100_bf16),
        "memory_gib_per_gpu": {
            "hybrid_shard_zero2": {
                "states": zero2 / gib,
                "activation_checkpoints": checkpoints / gib,
                "block": block / gib,
                "total": (zero2 + checkpoints + block) / gib,
            },
            "hybrid_shard": {
                "states": zero3 / gib,
                "activation_checkpoints": checkpoints / gib,
                "block": block / gib,
                "total": (zero3 + checkpoints + block) / gib,
            },
        },
        "assumptions": (
            f"41 frames at 480x720, local batch {local_batch}, sharding over {gpus_per_node} GPUs of a node, "
            "bf16 autocast with fp32 master weights, AdamW, activation checkpointing per CogVideoXBlock, "
            "flash attention; VAE encoding (frozen, run online) and the data loader are not counted."
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    result = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "tiny_recipe_cpu": tiny_benchmark(args.steps, args.threads),
        "paper_scale_estimate": paper_scale_estimate(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
