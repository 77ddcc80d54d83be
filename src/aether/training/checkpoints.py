"""Training checkpoints of every strategy: per-rank states, both layouts, consolidation on CPU.

A Lightning checkpoint of an :class:`~aether.training.AetherModule` is either a file (one
process, DDP, or FSDP2 gathering a full checkpoint) or a folder written by
:class:`~aether.training.sharding.FSDP2Strategy`: every rank's shards of the weights and the
optimizer (``torch.distributed.checkpoint``) plus ``meta.pt`` with rank 0's loops, OneCycle,
callbacks and hyper-parameters. Per-rank states (the task/timestep/noise generator) are gathered
into every checkpoint, so a resumed run continues each rank's draws; they also pin the world size
a checkpoint resumes onto. :func:`aether.training.export.load_module` consolidates either layout
into an unsharded module on CPU, without the world size it was trained with.
"""

from __future__ import annotations

import inspect
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

RANK_STATES = "aether_rank_states"
META_FILE = "meta.pt"  # Lightning's name for a sharded checkpoint's non-tensor state


def is_sharded_checkpoint(path: str | Path) -> bool:
    """True for a folder written by a distributed (sharded) save."""
    path = Path(path)
    return path.is_dir() and (path / META_FILE).is_file()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict on CPU: the whole file, or a sharded folder's ``meta.pt`` (no tensors of
    the model or the optimizer). FileNotFoundError / ValueError naming the path otherwise."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.is_dir() and not is_sharded_checkpoint(path):
        raise ValueError(f"{path} is a folder without {META_FILE}: not a sharded checkpoint")
    source = path / META_FILE if path.is_dir() else path
    check_crc(source)
    try:
        checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, AttributeError, ImportError,
            UnicodeDecodeError, pickle.UnpicklingError, zipfile.BadZipFile) as err:  # fmt: skip
        text = " ".join(str(err).split()).split(". ")[0] or type(err).__name__
        raise ValueError(
            f"{source}: not a readable checkpoint (truncated, damaged or another kind of file: "
            f"{type(err).__name__}: {text[:160]})"
        ) from err
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{source}: not a Lightning checkpoint (it holds a {type(checkpoint).__name__})")
    state = checkpoint.get("state_dict")
    if isinstance(state, dict):
        check_weights(state, str(source))
    return checkpoint


def check_crc(path: Path) -> None:
    """ValueError naming ``path`` and the member when a zip-format ``torch.save`` file fails the CRC-32
    its writer recorded (torch.load does not check it: flipped bytes would load as weights)."""
    try:
        if not zipfile.is_zipfile(path):
            return  # not zip-format (legacy torch.save, or not a checkpoint): torch.load decides
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
        raise ValueError(f"{path}: not a readable checkpoint (truncated or damaged zip: {err})") from err
    if bad is not None:
        raise ValueError(
            f"{path}: member {bad} fails the CRC-32 check recorded when it was saved: the checkpoint is "
            "damaged (flipped bytes); expected an intact file (restore it, or use an earlier checkpoint)"
        )


ABSURD_WEIGHT = 1e6
"""No trained weight of a transformer comes near this magnitude: larger ones are damaged bytes."""


def check_weights(state: dict[str, Any], source: str) -> None:
    """ValueError naming ``source`` and the tensor when a floating-point weight is NaN / inf or
    larger in magnitude than :data:`ABSURD_WEIGHT` (bytes flipped in a file that still unpickles)."""
    for name, value in state.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.numel() == 0:
            continue
        if value.device.type == "meta":
            continue
        data = value.detach().float()
        finite = torch.isfinite(data)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(
                f"{source}: weight {name} {tuple(value.shape)} holds {bad} NaN or infinite value(s): the "
                "checkpoint is damaged (or training diverged); expected finite weights"
            )
        largest = float(data.abs().max())
        if largest > ABSURD_WEIGHT:
            raise ValueError(
                f"{source}: weight {name} {tuple(value.shape)} reaches |w| = {largest:.3g}; expected "
                f"|w| <= {ABSURD_WEIGHT:g}: the checkpoint is damaged (flipped bytes?)"
            )


def gather_rank_states(state: dict[str, Any]) -> list[dict[str, Any]]:
    """``state`` of every rank, in rank order (a collective: every rank must call it)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [state]
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, state)
    return states


def rank_state(checkpoint: dict[str, Any], rank: int, world_size: int, path: Any = None) -> dict | None:
    """This rank's state from :func:`gather_rank_states` (None in a checkpoint without them).

    ValueError naming both world sizes when the checkpoint was written by another number of
    ranks: each rank's random stream cannot be split or merged, so such a checkpoint is
    consolidated into a model (``aether export``) and a new run starts from it.
    """
    states = checkpoint.get(RANK_STATES)
    if states is None:
        return None
    if len(states) != world_size:
        where = path or "the checkpoint"
        raise ValueError(
            f"{where} was written by {len(states)} ranks but this run has world size {world_size}: "
            f"resume it with {len(states)} processes, or consolidate it with `aether export {where} OUT` "
            "and start a new run from it (model.transformer: {pretrained: OUT, subfolder: transformer})"
        )
    return states[rank]


def module_kwargs(cls: type, hyper_parameters: dict[str, Any]) -> dict[str, Any]:
    """The saved hyper-parameters that ``cls.__init__`` takes."""
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    return {k: v for k, v in hyper_parameters.items() if k in accepted}


def unsharded_copy(module: Any) -> Any:
    """``module`` itself when it is not sharded; otherwise a CPU copy with the gathered weights on
    rank 0 (None on the other ranks) for export and evaluation. A collective when ``module`` is
    sharded: every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    from aether.training.sharding import is_sharded

    if not any(is_sharded(m) for m in module.modules()):
        return module
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(module, options=options)  # full on rank 0, empty elsewhere
    if not state:
        return None
    copy = type(module)(**module_kwargs(type(module), dict(module.hparams)))
    copy.configure_model()
    copy.load_state_dict(state)
    return copy
