"""The layout of a training clip and of a batch of clips, described in one place.

:class:`Clip` is one prepared clip (:func:`aether.data.datamodule.prepare_clip`); :class:`ClipBatch`
is B clips of one frame count stacked (:func:`aether.data.datamodule.collate_clips`, and
:func:`aether.data.synthetic.clips_batch` for rendered clips): what the DataModule yields and
``AetherModule.training_step``, validation and the reports read.

Both are ``TypedDict``: plain dicts at run time, the keys and their types for readers and type
checkers. Each entry's annotation also states its shape and dtype (``Annotated`` metadata, e.g.
``"(B, T, 3, H, W) float32"``), which the tests check against real batches. Keys of
``total=False`` classes may be absent. The modality codecs take any ``Mapping[str, object]``
(a plug-in may read keys of its own), which a ``ClipBatch`` is.
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from torch import Tensor

__all__ = ["Clip", "ClipBatch"]


class _ClipKeys(TypedDict):
    video: Annotated[Tensor, "(T, 3, H, W) float32, in [-1, 1]"]
    depth: Annotated[Tensor, "(T, H, W) float32, scene units (metres), 0 = invalid"]
    valid: Annotated[Tensor, "(T, H, W) bool, finite depth > 0"]
    K: Annotated[Tensor, "(T, 3, 3) float32, pixels, pixel centres at integer coordinates"]
    c2w: Annotated[Tensor, "(T, 4, 4) float32, OpenCV camera-to-world relative to the first frame"]
    fps: Annotated[float, "frame rate of the clip"]
    dmax: Annotated[float, "largest disparity 1 / depth over the valid pixels"]
    key: Annotated[str, "the shard sample's key"]


class Clip(_ClipKeys, total=False):
    """One training clip of T frames of H × W pixels; ``dynamic`` may be absent."""

    dynamic: Annotated[Tensor, "(T, H, W) bool, pixels of moving objects (when the shard has them)"]


class _ClipBatchKeys(TypedDict):
    video: Annotated[Tensor, "(B, T, 3, H, W) float32, in [-1, 1]"]
    depth: Annotated[Tensor, "(B, T, H, W) float32, scene units (metres), 0 = invalid"]
    valid: Annotated[Tensor, "(B, T, H, W) bool, finite depth > 0"]
    K: Annotated[Tensor, "(B, T, 3, 3) float32, pixels, pixel centres at integer coordinates"]
    c2w: Annotated[Tensor, "(B, T, 4, 4) float32, OpenCV camera-to-world relative to each first frame"]
    fps: Annotated[Tensor, "(B,) float32, frame rates"]
    dmax: Annotated[Tensor, "(B,) float32, each clip's largest disparity 1 / depth"]
    key: Annotated[list[str], "(B,) str, the clips' keys"]


class ClipBatch(_ClipBatchKeys, total=False):
    """B clips of one frame count T.

    Optional: ``dynamic`` (present when every clip has it) and precomputed latents, which
    ``AetherModule.encode_clip`` uses instead of encoding (the DataModule does not produce them; a
    DataModule of precomputed latents may)."""

    dynamic: Annotated[Tensor, "(B, T, H, W) bool, pixels of moving objects (when every clip has them)"]
    latents: Annotated[Tensor, "(B, F, Ct, h, w) float, the target latents"]
    observation_latents: Annotated[Tensor, "(B, 1, C, h, w) float, the colour latent of the first frame"]
    goal_latents: Annotated[Tensor, "(B, 1, C, h, w) float, the colour latent of the last frame"]
