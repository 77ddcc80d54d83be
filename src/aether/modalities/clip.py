"""``ClipGeometry``: the sizes and the depth normalisation of a batch of clips, resolved once.

A clip dict carries per-frame tensors ("video", "depth", "valid", "c2w", "K", …). Its frame count,
image size and dmax (the largest disparity, which normalises disparity and scales ray origins) are
resolved here, once, by :meth:`ClipGeometry.of`; the modality stack records the result and every
codec, the training losses and validation read it instead of each resolving its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor

from .disparity import resolve_dmax
from .validation import FRAME_KEYS, check_clip_frames, image_size


@dataclass(frozen=True)
class ClipGeometry:
    """Frame count T, image size H × W and per-clip dmax (B,) (None when the clip has no depth
    and gives none) of a batch of clips."""

    num_frames: int
    height: int
    width: int
    dmax: Tensor | None = None

    @classmethod
    def of(cls, clip: Mapping[str, object]) -> ClipGeometry:
        """Resolve a clip dict's geometry: T and B from its per-frame entries (checked to agree), H × W
        from "height"/"width" or the frames, dmax from "dmax" or else from "depth"/"valid"."""
        if isinstance(clip.get("geometry"), ClipGeometry):
            return clip["geometry"]  # type: ignore[return-value]
        keys = [k for k in FRAME_KEYS if isinstance(clip.get(k), Tensor)]
        if not keys:
            raise ValueError(
                f"expected per-frame entries among {sorted(FRAME_KEYS)}, got keys {sorted(clip)}"
            )
        batch_size, num_frames = check_clip_frames(clip, keys)
        size = image_size(clip)
        if size is None:
            raise ValueError(
                f"expected the image size ('height'/'width', 'video', 'depth' or 'valid'), got {sorted(clip)}"
            )
        like = clip[keys[0]]
        dmax = resolve_dmax(clip, batch_size, like if like.is_floating_point() else like.float())  # type: ignore[union-attr]
        return cls(num_frames, size[0], size[1], dmax)

    def side(self) -> dict[str, object]:
        """The clip entries codecs read as side information ("height", "width", "dmax" when known)."""
        out: dict[str, object] = {"height": self.height, "width": self.width}
        if self.dmax is not None:
            out["dmax"] = self.dmax
        return out
