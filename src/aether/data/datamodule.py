"""Streaming RGB-D clips from WebDataset shards into training batches.

Per clip: draw T from the allowed frame counts and a target fps reachable from the source fps by
an integer temporal stride, pick a window, resize (cover) and crop to the training resolution
while adjusting K, express poses relative to the window's first frame and compute the clip's
dmax. Batches hold a single T (bucketing), so no padding is wasted.

Training streams are resampled (shards drawn with replacement, infinite) and shuffled through a
buffer; validation streams visit every clip exactly once across ranks × workers. All randomness
comes from ``seed``, the epoch, the rank and the worker, so a run (and a resumed run) draws the
same stream.

Nothing bad reaches a batch: samples failing the schema or the :class:`Plausibility` bounds
(``plausibility``; the clip's dmax after resizing too) are skipped and counted in
``skipped_samples``; a source that cannot be opened, read or closed is counted and the stream
moves on; a stream whose every source fails ends with one error listing them, and one that
skips ``max_consecutive_skips`` samples in a row (duplicates aside) ends with an error naming the
last reason, instead of looping over unusable data forever.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from aether.data.batch import Clip, ClipBatch
from aether.data.reading import PIPE_READ_TIMEOUT, DuplicateKeyError, expand_urls, iter_samples
from aether.data.schema import PLAUSIBLE, Plausibility
from aether.geometry.cameras import resize_intrinsics
from aether.geometry.framing import cover_size, crop_origin

__all__ = [
    "AetherDataModule",
    "ClipLoader",
    "ClipStream",
    "check_frames_fps",
    "choose_window",
    "collate_clips",
    "prepare_clip",
    "resize_and_crop",
]

MAX_CONSECUTIVE_SKIPS = 100  # bad samples in a row after which a stream gives up
FRAMES = (17, 25, 33, 41)
FPS = (8, 10, 12, 15, 24)


def check_frames_fps(frames: Sequence[int], fps: Sequence[float]) -> None:
    """ValueError unless ``frames`` are positive integers and ``fps`` finite positive numbers."""
    if not frames or not fps:
        raise ValueError(f"frames and fps must be non-empty, got {frames!r} and {fps!r}")
    for t in frames:
        if isinstance(t, bool) or not isinstance(t, int | np.integer) or t < 1:
            raise ValueError(f"frames: expected positive integers (frame counts), got {list(frames)!r}")
    for f in fps:
        if isinstance(f, bool) or not isinstance(f, int | float | np.number) or not np.isfinite(f) or f <= 0:
            raise ValueError(f"fps: expected finite positive numbers, got {list(fps)!r}")


def _check_positive(**settings: float) -> None:
    """ValueError naming the first setting that is not a finite positive number."""
    for name, value in settings.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not np.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"{name}: expected a finite positive number, got {value!r}")


def choose_window(
    num_frames: int,
    source_fps: float,
    frames: Sequence[int],
    fps: Sequence[float],
    rng: np.random.Generator,
    tolerance: float = 0.01,
) -> tuple[int, int, int, float] | None:
    """Draw (T, stride, start, target fps) for a source clip of ``num_frames`` at ``source_fps``.

    The target fps must equal ``source_fps / stride`` for an integer stride (within ``tolerance``
    relative) and the window ``start + stride·(T-1)`` must fit in the clip. T is drawn uniformly
    among the feasible counts, then the fps among those feasible for it. None when nothing fits.
    """
    strides: dict[float, int] = {}
    for target in fps:
        ratio = source_fps / target
        stride = round(ratio)
        if stride >= 1 and abs(ratio - stride) <= tolerance * ratio:
            strides[float(target)] = stride
    options = {
        t: [f for f, s in strides.items() if (t - 1) * s + 1 <= num_frames] for t in sorted(set(frames))
    }
    options = {t: fs for t, fs in options.items() if fs}
    if not options:
        return None
    count = list(options)[int(rng.integers(0, len(options)))]
    target = options[count][int(rng.integers(0, len(options[count])))]
    stride = strides[target]
    start = int(rng.integers(0, num_frames - (count - 1) * stride))
    return count, stride, start, target


def resize_and_crop(
    video: torch.Tensor,
    depth: torch.Tensor,
    K: torch.Tensor,
    height: int,
    width: int,
    *,
    dynamic: torch.Tensor | None = None,
    offset: tuple[float, float] = (0.5, 0.5),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Resize a clip to cover (height, width), then crop; K follows.

    video float (T,3,h,w) (bilinear, antialiased), depth (T,h,w) and dynamic bool (T,h,w)
    (nearest), K (T,3,3) with pixel centres at integer coordinates: a scale s maps u to
    (u + 0.5)·s - 0.5, a crop subtracts its offset. ``offset`` (y, x) in [0,1] places the crop
    (0.5 = centre, as inference crops: :mod:`aether.geometry.framing`). Returns video (T,3,H,W),
    depth (T,H,W), K (T,3,3), dynamic (T,H,W) or None.
    """
    src_h, src_w = depth.shape[-2:]
    new_h, new_w = cover_size(src_h, src_w, height, width)
    if (new_h, new_w) != (src_h, src_w):
        video = F.interpolate(
            video, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
        )
        depth = F.interpolate(depth[:, None], size=(new_h, new_w), mode="nearest-exact")[:, 0]
        if dynamic is not None:
            dynamic = (
                F.interpolate(dynamic[:, None].float(), size=(new_h, new_w), mode="nearest-exact")[:, 0] > 0.5
            )
    top, left = crop_origin(new_h, height, offset[0]), crop_origin(new_w, width, offset[1])
    K = resize_intrinsics(K, (src_h, src_w), (new_h, new_w), crop=(top, left))
    crop = (slice(top, top + height), slice(left, left + width))
    video = video[..., crop[0], crop[1]]
    depth = depth[..., crop[0], crop[1]]
    if dynamic is not None:
        dynamic = dynamic[..., crop[0], crop[1]]
    return video, depth, K, dynamic


def prepare_clip(
    sample: dict[str, Any],
    *,
    height: int,
    width: int,
    frames: Sequence[int] = FRAMES,
    fps: Sequence[float] = FPS,
    rng: np.random.Generator,
    random_crop: bool = False,
    tolerance: float = 0.01,
    max_dmax: float = PLAUSIBLE.max_dmax,
) -> Clip | None:
    """Turn a validated shard sample into one training clip, or None when no (T, fps) fits or no
    pixel has valid depth; ValueError when the clip's dmax is not finite or exceeds ``max_dmax``.
    A sample decoded for a window carries it as ``__window__`` = (T, stride, start, fps) (see
    :func:`choose_window`) and holds just those frames.

    Returns a :class:`~aether.data.batch.Clip`: "video" float32 (T,3,H,W) in [-1,1], "depth"
    float32 (T,H,W) (0 = invalid), "valid" bool (T,H,W), "K" float32 (T,3,3), "c2w" float32 (T,4,4)
    relative to the window's first frame, "fps" float, "dmax" float, "key" str, and "dynamic" bool
    (T,H,W) when the sample has it.
    """
    from aether.geometry import relative_poses
    from aether.modalities.disparity import clip_dmax

    window = sample.get("__window__")
    if window is None:
        window = choose_window(len(sample["rgb"]), float(sample["fps"]), frames, fps, rng, tolerance)
        if window is None:
            return None
        count, stride, start, target = window
        index = slice(start, start + (count - 1) * stride + 1, stride)
    else:  # the sample holds only its window's frames already
        count, stride, start, target = window
        index = slice(None)
    video = torch.from_numpy(np.ascontiguousarray(sample["rgb"][index])).permute(0, 3, 1, 2).float()
    depth = torch.from_numpy(np.ascontiguousarray(sample["depth"][index], dtype=np.float32))
    dynamic = sample.get("dynamic")
    dynamic = None if dynamic is None else torch.from_numpy(np.ascontiguousarray(dynamic[index]))
    K = torch.from_numpy(np.ascontiguousarray(sample["K"][index], dtype=np.float64))
    offset = (float(rng.uniform()), float(rng.uniform())) if random_crop else (0.5, 0.5)
    video, depth, K, dynamic = resize_and_crop(video, depth, K, height, width, dynamic=dynamic, offset=offset)
    valid = torch.isfinite(depth) & (depth > 0)
    if not bool(valid.any()):
        return None
    depth = torch.where(valid, depth, torch.zeros_like(depth))
    c2w = relative_poses(torch.from_numpy(np.ascontiguousarray(sample["c2w"][index], dtype=np.float64)))
    dmax = float(clip_dmax(depth[None], valid[None])[0])
    if not np.isfinite(dmax) or dmax > max_dmax:
        raise ValueError(
            f"depth.npy: expected the clip's dmax (1 / min depth) <= {max_dmax:g}, got {dmax:.3g}"
        )
    clip: Clip = {
        "video": (video / 127.5 - 1.0).clamp(-1, 1).contiguous(),
        "depth": depth.contiguous(),
        "valid": valid.contiguous(),
        "K": K.float(),
        "c2w": c2w.float(),
        "fps": float(target),
        "dmax": dmax,
        "key": sample["__key__"],
    }
    if dynamic is not None:
        clip["dynamic"] = dynamic.contiguous()
    return clip


def collate_clips(clips: Sequence[Clip]) -> ClipBatch:
    """Stack clips of one T into a :class:`~aether.data.batch.ClipBatch` (keys of
    :func:`prepare_clip`, leading dim B)."""
    counts = {clip["video"].shape[0] for clip in clips}
    if len(counts) != 1:
        raise ValueError(f"a batch must hold one frame count, got {sorted(counts)}")
    batch: ClipBatch = {
        "video": torch.stack([clip["video"] for clip in clips]),
        "depth": torch.stack([clip["depth"] for clip in clips]),
        "valid": torch.stack([clip["valid"] for clip in clips]),
        "K": torch.stack([clip["K"] for clip in clips]),
        "c2w": torch.stack([clip["c2w"] for clip in clips]),
        "fps": torch.tensor([clip["fps"] for clip in clips], dtype=torch.float32),
        "dmax": torch.tensor([clip["dmax"] for clip in clips], dtype=torch.float32),
        "key": [clip["key"] for clip in clips],
    }
    if all("dynamic" in clip for clip in clips):
        batch["dynamic"] = torch.stack([clip["dynamic"] for clip in clips])
    return batch


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class ClipStream(IterableDataset):
    """An iterable of batches (:class:`~aether.data.batch.ClipBatch`, see :func:`collate_clips`)
    streamed from shards.

    Args:
        urls: shard URLs (see :func:`aether.data.shards.expand_urls`).
        height, width: output resolution. frames, fps: allowed T and target fps.
        batch_size: clips per batch, all of one T.
        train: True for a shuffled stream with random windows and crops; False for a deterministic
            pass (windows drawn from the key) in which every clip appears exactly once across
            ranks × workers (shards split between them, or samples when there are fewer shards).
        resampled: training only: draw shards with replacement, forever.
        shuffle_buffer: training only: samples held for shuffling (0 or 1 = no shuffle).
        seed: stream seed; the epoch (attribute ``epoch``), rank and worker are mixed in.
        rank, world_size: override the distributed rank / size (default: torch.distributed or the
            RANK / WORLD_SIZE environment variables).
        skipped: a shared counter (``multiprocessing.Value``) incremented for every bad sample.
        plausibility: bounds a sample must meet (see :class:`aether.data.shards.Plausibility`).
        max_consecutive_skips: bad samples in a row (duplicates not counted) after which the
            stream raises RuntimeError naming the last reason.
        read_timeout: seconds a ``pipe:`` source may stay silent before it counts as failed.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        height: int,
        width: int,
        frames: Sequence[int] = FRAMES,
        fps: Sequence[float] = FPS,
        batch_size: int = 1,
        train: bool = True,
        resampled: bool = True,
        shuffle_buffer: int = 64,
        random_crop: bool = True,
        seed: int = 0,
        fps_tolerance: float = 0.01,
        rank: int | None = None,
        world_size: int | None = None,
        skipped: Any = None,
        plausibility: Plausibility | None = PLAUSIBLE,
        max_consecutive_skips: int = MAX_CONSECUTIVE_SKIPS,
        read_timeout: float = PIPE_READ_TIMEOUT,
    ) -> None:
        super().__init__()
        self.urls = expand_urls(urls)
        if not self.urls:
            raise ValueError(f"no shards found for {urls!r}")
        if batch_size < 1 or height < 1 or width < 1:
            raise ValueError(f"need batch_size, height, width >= 1, got {batch_size}, {height}, {width}")
        check_frames_fps(frames, fps)
        _check_positive(max_consecutive_skips=max_consecutive_skips, read_timeout=read_timeout)
        self.max_consecutive_skips, self.read_timeout = int(max_consecutive_skips), float(read_timeout)
        self.consecutive_skips = 0
        self.height, self.width = height, width
        self.frames, self.fps = tuple(int(t) for t in frames), tuple(float(f) for f in fps)
        self.batch_size, self.train, self.resampled = batch_size, train, resampled
        self.shuffle_buffer, self.random_crop = shuffle_buffer, random_crop
        self.seed, self.fps_tolerance = seed, fps_tolerance
        self.rank, self.world_size = rank, world_size
        self.skipped = skipped if skipped is not None else multiprocessing.Value("q", 0)
        self.plausibility = plausibility
        self.epoch = 0
        self.failed_sources: dict[str, str] = {}  # url -> error, of sources that failed in this process

    def _report(self, url: str, key: str | None, error: Exception) -> None:
        with self.skipped.get_lock():
            self.skipped.value += 1
        if key is None:
            self.failed_sources[url] = f"{type(error).__name__}: {error}"
        what = f"source {url}" if key is None else f"sample {key!r} of shard {url}"
        warnings.warn(f"skipping {what}: {error}", RuntimeWarning, stacklevel=2)
        if isinstance(error, DuplicateKeyError):
            return
        self.consecutive_skips += 1
        if self.consecutive_skips >= self.max_consecutive_skips:
            raise RuntimeError(
                f"{self.consecutive_skips} samples in a row were skipped (max_consecutive_skips="
                f"{self.max_consecutive_skips}); the last: {what}: {error}"
            )

    def _all_failed(self, urls: list[str], draws: int | None = None) -> RuntimeError:
        listed = "; ".join(f"{url} ({self.failed_sources.get(url, 'no readable sample')})" for url in urls)
        drawn = "" if draws is None else f" in {draws} draws"
        return RuntimeError(f"no readable sample from any of {len(urls)} source(s){drawn}: {listed}")

    def _position(self) -> tuple[int, int]:
        rank, world = _distributed()
        rank = rank if self.rank is None else self.rank
        world = world if self.world_size is None else self.world_size
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        return rank * workers + worker, world * workers

    def _decoded(
        self, urls: list[str], rng: np.random.Generator, part: tuple[int, int] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Samples decoded for a window drawn from their metadata (only the window's frames)."""
        chosen: dict[str, tuple[int, int, int, float]] = {}

        def window(meta: dict[str, Any], key: str) -> slice:
            draw = rng if self.train else np.random.default_rng([self.seed, zlib.crc32(key.encode())])
            length, source = int(meta["num_frames"]), float(meta["fps"])
            picked = choose_window(length, source, self.frames, self.fps, draw, self.fps_tolerance)
            if picked is None:
                raise ValueError(
                    f"no window of T in {self.frames} at fps in {self.fps} fits {length} frames "
                    f"at {source} fps"
                )
            chosen["last"] = picked
            count, stride, start, _ = picked
            return slice(start, start + (count - 1) * stride + 1, stride)

        for sample in iter_samples(
            urls, on_error=self._report, part=part, window=window, plausibility=self.plausibility,
            read_timeout=self.read_timeout,
        ):  # fmt: skip
            sample["__window__"] = chosen["last"]  # set while decoding this very sample
            yield sample

    def _samples(self, rng: np.random.Generator, slot: int, slots: int) -> Iterator[dict[str, Any]]:
        urls = self.urls
        if self.train and self.resampled:
            barren = 0  # consecutive shards without a single good sample
            while barren < 10 * len(urls) + 10:
                barren += 1
                for sample in self._decoded([urls[int(rng.integers(0, len(urls)))]], rng):
                    barren = 0
                    yield sample
            raise self._all_failed(urls, barren)
        if self.train:  # one pass in an epoch-dependent order, identical on every rank
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(urls))
            urls = [urls[i] for i in order]
        count = 0
        for sample in self._decoded(urls, rng, part=(slot, slots)):
            count += 1
            yield sample
        # every source failed and this process read them all: nothing will ever come
        if count == 0 and all(url in self.failed_sources for url in urls):
            raise self._all_failed(urls)

    def _shuffled(
        self, samples: Iterator[dict[str, Any]], rng: np.random.Generator
    ) -> Iterator[dict[str, Any]]:
        if not self.train or self.shuffle_buffer <= 1:
            yield from samples
            return
        buffer: list[dict[str, Any]] = []
        for sample in samples:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(sample)
                continue
            i = int(rng.integers(0, len(buffer)))
            buffer[i], sample = sample, buffer[i]
            yield sample
        rng.shuffle(buffer)
        yield from buffer

    def __iter__(self) -> Iterator[ClipBatch]:
        self.consecutive_skips = 0
        slot, slots = self._position()
        rng = np.random.default_rng([self.seed, self.epoch, slot, slots])
        buckets: dict[int, list[Clip]] = {}
        for sample in self._shuffled(self._samples(rng, slot, slots), rng):
            try:
                clip = prepare_clip(
                    sample, height=self.height, width=self.width, frames=self.frames, fps=self.fps,
                    rng=rng, random_crop=self.random_crop and self.train, tolerance=self.fps_tolerance,
                    max_dmax=PLAUSIBLE.max_dmax if self.plausibility is None else self.plausibility.max_dmax,
                )  # fmt: skip
            except ValueError as err:
                self._report(sample.get("__url__", "?"), sample["__key__"], err)
                continue
            if clip is None:
                self._report(
                    sample.get("__url__", "?"), sample["__key__"], ValueError("no valid depth pixel")
                )
                continue
            self.consecutive_skips = 0
            bucket = buckets.setdefault(clip["video"].shape[0], [])
            bucket.append(clip)
            if len(bucket) == self.batch_size:
                yield collate_clips(bucket)
                bucket.clear()
        for count in sorted(buckets):
            if buckets[count]:
                yield collate_clips(buckets[count])


class ClipLoader(DataLoader):
    """A DataLoader over a :class:`ClipStream` that advances the stream's epoch on every pass and
    can resume mid-epoch. ``state_dict()`` = {"epoch", "batches"}: the epoch being streamed and the
    batches handed out in it (before any pass: the position the next pass starts from). After
    ``load_state_dict`` the next pass replays that epoch and skips those batches; ``next_state()``
    is where a fresh loader continues (the next epoch once a pass has started). With an
    ``epoch_source`` callable attached (the DataModule attaches its trainer's current epoch), a
    pass streams that epoch, and skips the restored batches only when resuming inside it."""

    def __iter__(self) -> Iterator[ClipBatch]:
        epoch, skip = getattr(self, "start_epoch", 0), getattr(self, "skip", 0)
        follow = getattr(self, "epoch_source", None)  # e.g. the trainer's current epoch
        if follow is not None and follow() is not None and follow() != epoch:
            epoch, skip = follow(), 0  # a new epoch (or a resume after a completed one)
        self.dataset.epoch = epoch
        self.start_epoch, self.skip, self.current, self.batches = epoch + 1, 0, epoch, skip
        carry = getattr(self, "carry", None)  # where the counts of finished passes are kept
        if carry is not None:
            live = self.dataset.skipped  # this pass's bad samples (all workers)
            with carry.get_lock(), live.get_lock():
                if not skip:  # the last pass's count stays; a replayed prefix is counted again
                    carry.value += live.value
                live.value = 0
        for index, batch in enumerate(super().__iter__()):
            if index < skip:
                continue
            self.batches = index + 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        if getattr(self, "current", None) is None:
            return {"epoch": getattr(self, "start_epoch", 0), "batches": getattr(self, "skip", 0)}
        return {"epoch": self.current, "batches": self.batches}

    def next_state(self) -> dict[str, int]:
        return {"epoch": getattr(self, "start_epoch", 0), "batches": getattr(self, "skip", 0)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.start_epoch, self.skip, self.current = int(state["epoch"]), int(state["batches"]), None


class AetherDataModule(L.LightningDataModule):
    """RGB-D clips from WebDataset shards for training and validation.

    Args:
        train_urls, val_urls, test_urls: shard URLs: lists, brace patterns, ``::``-joined lists,
            directories, local paths, ``pipe:`` commands or fsspec URLs.
        height, width: training resolution. frames: allowed T. fps: allowed target fps.
        batch_size, val_batch_size: clips per batch (val defaults to batch_size).
        num_workers: DataLoader workers per rank.
        shuffle_buffer: training shuffle buffer (samples per worker).
        resampled: infinite training stream of shards drawn with replacement.
        random_crop: random crop placement in training (validation crops the centre).
        seed: stream seed. fps_tolerance: relative tolerance matching source fps / stride.
        plausibility: bounds on depth, focal length, skew, translations and dmax; samples outside
            are skipped and counted. True: the defaults of :class:`aether.data.shards.Plausibility`;
            a dict: those fields changed (e.g. ``{max_depth: 200}``); False: no bounds.
        max_consecutive_skips: bad samples in a row after which a stream raises (see
            :class:`ClipStream`). read_timeout: seconds a ``pipe:`` source may stay silent.

    Batches are :class:`~aether.data.batch.ClipBatch` dicts: "video" (B,T,3,H,W) in [-1,1], "depth",
    "valid" (B,T,H,W), "K" (B,T,3,3), "c2w" (B,T,4,4) relative to frame 0, "fps", "dmax" (B,), "key"
    list, optional "dynamic".
    ``skipped_samples`` counts the bad samples met so far (all workers). ``state_dict`` holds the
    seed and the training stream position (epoch, batches) so a resumed run draws the same stream.
    """

    def __init__(
        self,
        train_urls: str | list[str] | None = None,
        val_urls: str | list[str] | None = None,
        test_urls: str | list[str] | None = None,
        height: int = 64,
        width: int = 96,
        frames: Sequence[int] = FRAMES,
        fps: Sequence[float] = FPS,
        batch_size: int = 1,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        shuffle_buffer: int = 64,
        resampled: bool = True,
        random_crop: bool = True,
        seed: int = 0,
        fps_tolerance: float = 0.01,
        pin_memory: bool = False,
        plausibility: bool | dict[str, float] = True,
        max_consecutive_skips: int = MAX_CONSECUTIVE_SKIPS,
        read_timeout: float = PIPE_READ_TIMEOUT,
    ) -> None:
        super().__init__()
        check_frames_fps(frames, fps)
        _check_positive(
            height=height, width=width, batch_size=batch_size, val_batch_size=val_batch_size or batch_size,
            max_consecutive_skips=max_consecutive_skips, read_timeout=read_timeout,
            fps_tolerance=fps_tolerance,
        )  # fmt: skip
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers: expected an integer >= 0, got {num_workers!r}")
        self.max_consecutive_skips, self.read_timeout = max_consecutive_skips, read_timeout
        self.save_hyperparameters()
        if isinstance(plausibility, dict):
            unknown = set(plausibility) - set(vars(PLAUSIBLE))
            if unknown:
                raise ValueError(
                    f"plausibility: unknown bounds {sorted(unknown)}, expected {sorted(vars(PLAUSIBLE))}"
                )
            self.plausibility: Plausibility | None = Plausibility(**{**vars(PLAUSIBLE), **plausibility})
        else:
            self.plausibility = PLAUSIBLE if plausibility else None
        self.train_urls, self.val_urls, self.test_urls = train_urls, val_urls, test_urls
        self.height, self.width = height, width
        self.frames, self.fps = tuple(frames), tuple(fps)
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.shuffle_buffer = num_workers, shuffle_buffer
        self.resampled, self.random_crop = resampled, random_crop
        self.seed, self.fps_tolerance, self.pin_memory = seed, fps_tolerance, pin_memory
        self._skipped: Any = None  # shared counters, created with the first loader
        self._train_skipped: Any = None
        self._train_loader: ClipLoader | None = None
        self._train_state: dict[str, int] = {"epoch": 0, "batches": 0}

    @property
    def skipped_samples(self) -> int:
        """Bad samples skipped so far, over all loaders and workers."""
        return int(self._counter().value) + self._epoch_skipped()

    def _counter(self) -> Any:
        """Evaluation loaders' skips and the training passes' finished before the current one."""
        if self._skipped is None:
            self._skipped = multiprocessing.Value("q", 0)
        return self._skipped

    def _train_counter(self) -> Any:
        """The current training pass's skips: a resumed pass replays its prefix and counts it again,
        so this count is set aside on resume instead of added twice."""
        if self._train_skipped is None:
            self._train_skipped = multiprocessing.Value("q", 0)
        return self._train_skipped

    def _epoch_skipped(self) -> int:
        return 0 if self._train_skipped is None else int(self._train_skipped.value)

    def _rank(self) -> tuple[int | None, int | None]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.global_rank, trainer.world_size
        return None, None

    def _loader(self, urls: Any, train: bool, batch_size: int) -> ClipLoader:
        if urls is None:
            raise ValueError(f"no {'training' if train else 'evaluation'} shards given (urls=None)")
        rank, world = self._rank()
        stream = ClipStream(
            urls, height=self.height, width=self.width, frames=self.frames, fps=self.fps,
            batch_size=batch_size, train=train, resampled=self.resampled, shuffle_buffer=self.shuffle_buffer,
            random_crop=self.random_crop, seed=self.seed, fps_tolerance=self.fps_tolerance,
            rank=rank, world_size=world, skipped=self._train_counter() if train else self._counter(),
            plausibility=self.plausibility,
            max_consecutive_skips=self.max_consecutive_skips, read_timeout=self.read_timeout,
        )  # fmt: skip
        return ClipLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            prefetch_factor=2 if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> ClipLoader:
        if self._train_loader is not None:  # a reloaded loader continues where the last one was
            self._train_state = self._train_loader.next_state()
        self._train_loader = self._loader(self.train_urls, True, self.batch_size)
        self._train_loader.carry = self._counter()
        self._train_loader.load_state_dict(self._train_state)
        self._train_loader.epoch_source = self._trainer_epoch
        return self._train_loader

    def _trainer_epoch(self) -> int | None:
        trainer = getattr(self, "trainer", None)
        return None if trainer is None else int(trainer.current_epoch)

    def val_dataloader(self) -> ClipLoader | list:
        """The validation pass; an empty list (no validation) when ``val_urls`` is None."""
        return [] if self.val_urls is None else self._loader(self.val_urls, False, self.val_batch_size)

    def test_dataloader(self) -> ClipLoader:
        return self._loader(self.test_urls, False, self.val_batch_size)

    def state_dict(self) -> dict[str, Any]:
        state = self._train_loader.state_dict() if self._train_loader is not None else dict(self._train_state)
        return {"seed": self.seed, **state, "skipped_samples": self.skipped_samples,
                "epoch_skipped": self._epoch_skipped()}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if int(state_dict.get("seed", self.seed)) != self.seed:
            warnings.warn(
                f"resuming with seed {self.seed} but the checkpoint streamed with seed {state_dict['seed']}",
                RuntimeWarning,
                stacklevel=2,
            )
        self._train_state = {
            "epoch": int(state_dict.get("epoch", 0)),
            "batches": int(state_dict.get("batches", 0)),
        }
        if self._train_loader is not None:
            self._train_loader.load_state_dict(self._train_state)
        total, in_epoch = int(state_dict.get("skipped_samples", 0)), int(state_dict.get("epoch_skipped", 0))
        counter, live = self._counter(), self._train_counter()
        with counter.get_lock(), live.get_lock():  # a replay of the pass drops in_epoch and recounts it
            counter.value, live.value = total - in_epoch, in_epoch
