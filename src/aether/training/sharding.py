"""FSDP2 (``torch.distributed.fsdp.fully_shard``) through Lightning's ``ModelParallelStrategy``.

:class:`FSDP2Strategy` builds a 2-D device mesh ``(replicas, shards)``: parameters, gradients
and optimizer states are sharded over the ``shards`` ranks of a group (the GPUs of a node) and
replicated across the ``replicas`` groups (the nodes), i.e. hybrid sharding (HSDP).
``reshard_after_forward=False`` keeps a block's gathered parameters from forward to backward:
the paper's ZeRO-2 inside a node. :meth:`FSDP2Strategy.parallelize` (called by
``AetherModule.configure_model``) checkpoints the activations of every wrap-class block, shards
each block and then the root with bf16 parameters and float32 gradient reduction
(``MixedPrecisionPolicy``). FSDP2 runs on CPU processes over gloo, so the same path runs in CI.

Sharded checkpoints are folders (each rank writes its shards with
``torch.distributed.checkpoint``); they are written next to their final name and renamed into
place, so a killed run never leaves a half-written ``last.ckpt``.
"""

from __future__ import annotations

import importlib
import math
import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.pytorch.strategies import ModelParallelStrategy

COGVIDEOX_BLOCK = "diffusers.models.transformers.cogvideox_transformer_3d.CogVideoXBlock"
MESH_DIMS = ("replicate", "shard")


def check_mesh(mesh: Sequence[int], world_size: int, how: str = "") -> tuple[int, int]:
    """``mesh`` as ``(replicas, shards)``; ValueError naming both when its product is not the world size."""
    shape = tuple(int(n) for n in mesh)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"mesh must be [replicas, shards] of positive integers, got {list(mesh)}")
    if math.prod(shape) != world_size:
        raise ValueError(
            f"mesh {list(shape)} needs {math.prod(shape)} processes but the trainer has world size "
            f"{world_size}{how}: set trainer.strategy.init_args.mesh to [nodes, devices per node]"
        )
    return shape


def resolve_class(path: str | type) -> type:
    """A class from its dotted import path; ValueError naming the path otherwise."""
    if isinstance(path, type):
        return path
    module_name, _, name = str(path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name) if module_name else None
    except ImportError as error:
        raise ValueError(f"wrap class {path!r} cannot be imported: {error}") from error
    if not isinstance(cls, type):
        raise ValueError(f"wrap class {path!r} must be a dotted path to a class, got {cls!r}")
    return cls


def _dtype(name: str | None) -> torch.dtype | None:
    if name is None:
        return None
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"expected a floating-point torch dtype name (bfloat16, float32, ...), got {name!r}")
    return dtype


def is_sharded(module: torch.nn.Module) -> bool:
    """True once ``fully_shard`` was applied to ``module``."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


class FSDP2Strategy(ModelParallelStrategy):
    """Lightning strategy sharding the module with FSDP2 over a ``(replicas, shards)`` mesh.

    Args:
        mesh: ``[replicas, shards]``; its product must be the world size (default
            ``[num_nodes, devices]``: shards inside a node, replicas across nodes).
        reshard_after_forward: free each block's gathered parameters after its forward
            (ZeRO-3-like); False keeps them until its backward (ZeRO-2-like, the paper's).
        wrap: dotted paths of the block classes sharded (and checkpointed) one by one.
        activation_checkpointing: recompute each wrapped block's activations in backward.
        param_dtype: dtype of the gathered parameters used in forward/backward (the sharded
            float32 parameters stay the optimizer's master weights); None keeps float32.
        reduce_dtype: dtype of the gradient reduction.
        save_distributed_checkpoint: each rank writes its shards (a checkpoint folder); False
            gathers a full single-file checkpoint on rank 0.
        process_group_backend: as for Lightning's ``ModelParallelStrategy``.
        timeout: as for Lightning's ``ModelParallelStrategy``.
    """

    def __init__(
        self,
        mesh: Sequence[int] | None = None,
        reshard_after_forward: bool = True,
        wrap: Sequence[str] = (COGVIDEOX_BLOCK,),
        activation_checkpointing: bool = True,
        param_dtype: str | None = "bfloat16",
        reduce_dtype: str | None = "float32",
        save_distributed_checkpoint: bool = True,
        process_group_backend: str | None = None,
        timeout: timedelta | None = default_pg_timeout,
    ) -> None:
        from torch.distributed.fsdp import MixedPrecisionPolicy

        super().__init__(
            save_distributed_checkpoint=save_distributed_checkpoint,
            process_group_backend=process_group_backend,
            timeout=timeout,
        )
        self.mesh = None if mesh is None else check_mesh(mesh, math.prod(int(n) for n in mesh))
        self.reshard_after_forward = bool(reshard_after_forward)
        if isinstance(wrap, str) or not wrap:
            raise ValueError(f"wrap must be a non-empty list of class paths, got {wrap!r}")
        self.wrap = tuple(resolve_class(w) for w in wrap)
        self.activation_checkpointing = bool(activation_checkpointing)
        self.mixed_precision = MixedPrecisionPolicy(
            param_dtype=_dtype(param_dtype), reduce_dtype=_dtype(reduce_dtype)
        )

    @property
    def mesh_shape(self) -> tuple[int, int]:
        """``(replicas, shards)`` of this run."""
        world = self.num_nodes * self.num_processes
        how = f" ({self.num_nodes} nodes x {self.num_processes} devices)"
        return check_mesh(self.mesh or (self.num_nodes, self.num_processes), world, how)

    def setup_environment(self) -> None:
        from torch.distributed.device_mesh import init_device_mesh

        shape = self.mesh_shape  # checked before any process group exists
        self._setup_distributed()
        self._device_mesh = init_device_mesh(self.root_device.type, shape, mesh_dim_names=MESH_DIMS)
        self.lightning_module._device_mesh = self._device_mesh

    @property
    def distributed_sampler_kwargs(self) -> dict[str, Any]:
        # every rank is a data-parallel rank (sharding is data parallelism)
        return {"num_replicas": self.world_size, "rank": self.global_rank}

    def parallelize(self, module: torch.nn.Module) -> torch.nn.Module:
        """Checkpoint and shard every ``wrap`` block of ``module``, then ``module`` (the root).

        ValueError naming the classes when none of ``module``'s submodules is a wrap class.
        """
        from torch.distributed._composable import checkpoint
        from torch.distributed.fsdp import fully_shard

        blocks = [m for m in module.modules() if isinstance(m, self.wrap) and m is not module]
        if not blocks:
            present = sorted({type(m).__name__ for m in module.modules()} - {type(module).__name__})
            raise ValueError(
                f"wrap classes {[c.__qualname__ for c in self.wrap]} match no submodule of "
                f"{type(module).__name__} (its submodule classes: {', '.join(present)})"
            )
        common = {"mesh": self.device_mesh, "mp_policy": self.mixed_precision}
        for block in blocks:
            if self.activation_checkpointing:
                checkpoint(block)
            fully_shard(block, reshard_after_forward=self.reshard_after_forward, **common)
        # the root's parameters (embeddings, output projection) are needed first in backward
        fully_shard(module, reshard_after_forward=False, **common)
        return module

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any = None) -> None:
        if not self._save_distributed_checkpoint:
            return super().save_checkpoint(checkpoint, filepath, storage_options)
        path = Path(self.broadcast(str(filepath)))
        partial, old = path.with_name(path.name + ".partial"), path.with_name(path.name + ".old")
        if self.global_rank == 0 and partial.exists():
            shutil.rmtree(partial)
        self.barrier()
        super().save_checkpoint(checkpoint, partial, storage_options)
        self.barrier()
        if self.global_rank == 0:
            if path.is_dir():
                path.rename(old)
            elif path.exists():
                path.unlink()
            partial.rename(path)
            if old.exists():
                shutil.rmtree(old)
        self.barrier()
