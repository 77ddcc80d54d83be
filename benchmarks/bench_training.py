"""Training benchmark: the tiny recipe on CPU, and a paper-scale estimate under FSDP.

Measures, for ``recipes/tiny.yaml`` (model and data as the recipe sets them):
- training clips per second (forward, backward, optimizer step, clipping) and the data
  loader's share of the step time (time waiting for the next batch / total step time);
- peak resident memory of the process.

Estimates (analytic, not measured), for ``recipes/aether.yaml`` and ``recipes/aether_lora.yaml``
(CogVideoX-5b-I2V widened to 96/56 channels, 41 frames at 480x720): parameters (counted on the
meta device from the published config), step FLOPs and memory per GPU for full fine-tuning and
LoRA, FSDP2 with and without resharding after forward, with and without activation
checkpointing, and LoRA on one GPU; printed as the table of docs/training.md.

    .venv/bin/python benchmarks/bench_training.py [--steps 30] [--threads 1] [--estimate-only]

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


GIB = 1024**3
A100_BF16_FLOPS = 312e12  # dense bf16 peak
MFU = 0.4  # assumed model FLOPs utilisation
# activation bytes one transformer block keeps per token per hidden unit in bf16 (Korthikanti et
# al. 2022, "Reducing Activation Recomputation", 34·s·b·h without the s² attention scores that
# flash attention does not store)
BLOCK_ACTIVATION_BYTES = 34


def paper_shapes(frames: int = 41) -> dict:
    """Parameter counts of the widened CogVideoX-5b-I2V transformer (meta device) and tokens per clip."""
    from diffusers import CogVideoXTransformer3DModel

    from aether.training.lora import DEFAULT_LORA

    config = dict(COGVIDEOX_5B_I2V, in_channels=96, out_channels=56)
    with torch.device("meta"):
        model = CogVideoXTransformer3DModel(**config)
    params = sum(p.numel() for p in model.parameters())
    block = sum(p.numel() for p in model.transformer_blocks[0].parameters())
    rank = DEFAULT_LORA["rank"]
    lora = sum(
        rank * (m.in_features + m.out_features)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and any(n.endswith("." + t) for t in DEFAULT_LORA["targets"])
    )
    full = sum(p.numel() for f in DEFAULT_LORA["full"] for p in model.get_submodule(f).parameters())
    latent_frames = (frames - 1) // 4 + 1
    patches = (config["sample_height"] // 2) * (config["sample_width"] // 2)
    return {
        "parameters": params,
        "block_parameters": block,
        "layers": config["num_layers"],
        "hidden": config["num_attention_heads"] * config["attention_head_dim"],
        "lora_rank": rank,
        "lora_parameters": lora,
        "full_parameters_in_lora": full,
        "latent_frames": latent_frames,
        "tokens_per_sample": latent_frames * patches + config["max_text_seq_length"],
    }


def step_estimate(
    shapes: dict,
    *,
    lora: bool,
    shards: int,
    reshard_after_forward: bool,
    activation_checkpointing: bool,
    local_batch: int,
) -> dict:
    """FLOPs, time and memory per GPU of one optimizer step (analytic).

    Full fine-tuning under FSDP2: float32 sharded master weights, gradients and Adam moments
    (16 bytes per parameter / shards), bf16 gathered weights (all of them between forward and
    backward without resharding, two blocks with it). LoRA: the frozen base in float32 (sharded
    when shards > 1) and 16 bytes per trained parameter (adapters + the full projections).
    FLOPs: matmuls 2·P per token forward, as much again for the input gradients and, in full
    fine-tuning, for the weight gradients; attention 4·s²·D per layer forward, twice that
    backward; activation checkpointing recomputes the forward.
    """
    p, s, d, layers = shapes["parameters"], shapes["tokens_per_sample"], shapes["hidden"], shapes["layers"]
    matmul, attention = 2 * p * s, 4 * s**2 * d * layers
    backward = (2 if lora else 4) * p * s + 2 * attention
    per_sample = matmul + attention + backward + (matmul + attention if activation_checkpointing else 0)
    flops = per_sample * local_batch
    trained = shapes["lora_parameters"] + shapes["full_parameters_in_lora"] if lora else p
    states = (4 * p if lora else 0) / shards + 16 * trained / shards
    if shards == 1:
        gathered = 0.0  # one GPU: the float32 weights are used directly (bf16 autocast)
    elif reshard_after_forward:
        gathered = 2 * 2 * shapes["block_parameters"] + 2 * (p - layers * shapes["block_parameters"])
    else:
        gathered = 2 * p
    block = BLOCK_ACTIVATION_BYTES * s * d * local_batch
    if activation_checkpointing:
        activations = 2 * s * d * local_batch * layers + block  # bf16 block inputs + one block live
    else:
        activations = block * layers
    total = states + gathered + activations
    return {
        "mode": "lora" if lora else "full",
        "shards": shards,
        "reshard_after_forward": reshard_after_forward,
        "activation_checkpointing": activation_checkpointing,
        "local_batch": local_batch,
        "flops_per_gpu_step": flops,
        "seconds_per_step_a100_at_40pct_mfu": flops / (MFU * A100_BF16_FLOPS),
        "memory_gib": {
            "sharded_states": states / GIB,
            "gathered_bf16_weights": gathered / GIB,
            "activations": activations / GIB,
            "total": total / GIB,
        },
        "fits_80gb": total < 0.95 * 80e9,
    }


def paper_scale_estimate(gpus_per_node: int = 8, local_batch: int = 4, frames: int = 41) -> dict:
    """The estimate grid: full fine-tuning and LoRA, with and without resharding after forward and
    activation checkpointing, sharded over a node's GPUs; LoRA also on one GPU."""
    shapes = paper_shapes(frames)
    rows = [
        step_estimate(
            shapes,
            lora=lora,
            shards=gpus_per_node,
            reshard_after_forward=reshard,
            activation_checkpointing=ac,
            local_batch=local_batch,
        )
        for lora in (False, True)
        for reshard in (False, True)
        for ac in (True, False)
    ]
    rows += [
        step_estimate(
            shapes,
            lora=True,
            shards=1,
            reshard_after_forward=False,
            activation_checkpointing=True,
            local_batch=b,
        )
        for b in (1, 2, 4)
    ]
    return {
        **shapes,
        "rows": rows,
        "assumptions": (
            f"estimates, not measurements: {frames} frames at 480x720, local batch {local_batch} "
            "unless stated, "
            f"FSDP2 sharding over {gpus_per_node} GPUs of a node, bf16 compute with float32 master weights, "
            f"AdamW, flash attention, {BLOCK_ACTIVATION_BYTES} activation bytes per token and hidden unit "
            f"per block, {MFU:.0%} MFU of an A100's bf16 peak; LoRA rank {shapes['lora_rank']} on the "
            "attention and feed-forward projections with the input/output projections trained in full; "
            "the frozen VAE encoder, its activations, the allocator's fragmentation and communication "
            "buffers are not counted."
        ),
    }


def table(estimate: dict) -> str:
    """The markdown table of docs/training.md, from :func:`paper_scale_estimate`."""
    lines = [
        "| mode | GPUs sharded | reshard after forward | activation ckpt | local batch | states GiB "
        "| gathered weights GiB | activations GiB | total GiB/GPU | TFLOP/GPU/step "
        "| s/step (A100, 40 % MFU) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in estimate["rows"]:
        m = r["memory_gib"]
        lines.append(
            f"| {r['mode']} | {r['shards']} | {'yes' if r['reshard_after_forward'] else 'no'} "
            f"| {'yes' if r['activation_checkpointing'] else 'no'} | {r['local_batch']} "
            f"| {m['sharded_states']:.1f} | {m['gathered_bf16_weights']:.1f} | {m['activations']:.1f} "
            f"| {m['total']:.1f} | {r['flops_per_gpu_step'] / 1e12:.0f} "
            f"| {r['seconds_per_step_a100_at_40pct_mfu']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--estimate-only",
        action="store_true",
        help="recompute the paper-scale estimate and keep the stored CPU measurement (no timing run)",
    )
    args = parser.parse_args()
    stored = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.estimate_only and "tiny_recipe_cpu" in stored:
        result = {**stored, "paper_scale_estimate": paper_scale_estimate()}
    else:
        result = {
            "machine": {
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "torch": torch.__version__,
            },
            "tiny_recipe_cpu": tiny_benchmark(args.steps, args.threads),
            "paper_scale_estimate": paper_scale_estimate(),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["tiny_recipe_cpu"], indent=2))
    print(table(result["paper_scale_estimate"]))


if __name__ == "__main__":
    main()
