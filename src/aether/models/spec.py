"""``AetherModelSpec``: the model definition saved beside the weights and read by every loader.

One small typed record says what a model is made of: its latent backend (and that backend's
keyword arguments), the target and condition modality stacks in channel order with per-modality
options, the scheduler's prediction type and the frame counts / frame rates it was trained on.
The training module is built from it, ``aether export`` writes it as ``aether_config.json``, and
``AetherPipeline.from_pretrained`` reads it to build the right backend, stacks and scheduler. A
model folder without the file is the released AetherV1 (:data:`AETHERV1_SPEC`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aether.hub import SPEC_FILE
from aether.models.rope import BASE_FPS

AETHERV1_BASE = "THUDM/CogVideoX-5b-I2V"
AETHERV1_FRAMES = (17, 25, 33, 41)
AETHERV1_FPS = (8.0, 10.0, 12.0, 15.0, 24.0)
DEFAULT_FPS = BASE_FPS
"""The frame rate a model samples at when none is given (AetherV1's RoPE base, 12)."""
PREDICTION_TYPES = ("v_prediction", "epsilon", "sample")

COGVIDEOX_SCHEDULER: dict[str, Any] = {
    "_class_name": "CogVideoXDPMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "set_alpha_to_one": True,
    "snr_shift_scale": 1.0,
    "steps_offset": 0,
    "timestep_spacing": "trailing",
}
"""The CogVideoX-5b-I2V scheduler config (v-prediction, zero terminal SNR, trailing steps)."""


def build_scheduler(config: Mapping[str, Any]) -> Any:
    """A diffusers scheduler from a config dict whose ``_class_name`` names the class."""
    import diffusers

    config = dict(config)
    name = config.pop("_class_name", "CogVideoXDPMScheduler")
    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_config"):
        raise ValueError(f"scheduler _class_name must name a diffusers scheduler, got {name!r}")
    return cls.from_config(config)


def _frozen_options(options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {str(k): dict(v) for k, v in (options or {}).items()}


@dataclass(frozen=True)
class AetherModelSpec:
    """What an Aether model is composed of (the registry names and their options).

    Attributes:
        latent_backend: ``LATENT_BACKENDS`` name ("cogvideox", "tiny", or a plug-in's).
        backend_kwargs: keyword arguments of the backend (for "cogvideox": ``path_or_id`` of the base
            model whose ``vae/`` is used).
        target_modalities: ``MODALITIES`` names of the denoised latents, in channel order; the
            condition's frames modality must be one of them.
        condition_modalities: ``MODALITIES`` names of the condition latents: first the one whose
            ``condition_role`` is "frames" (colour), then any number of "action" (at most one),
            "signal" and "memory" modalities (a "memory", e.g. "cache", is a condition only, never a
            target).
        modality_options: per-modality constructor options, e.g. ``{"disparity": {"min_disparity":
            1e-3}}`` (applied to the modality in both stacks).
        prediction_type: the scheduler's regression target ("v_prediction", "epsilon", "sample").
        frames: frame counts the model was trained on (None: any 4k + 1).
        fps: frame rates the model was trained on (None: any).
        rope_base_fps: the frame rate at which RoPE time advances one position per latent frame
            (temporal positions × ``rope_base_fps / fps``; 12 for AetherV1).
        sampling_steps: denoising steps per task name the model is sampled with when a caller gives
            none (None or a missing task: the task's own default, 50 for prediction and planning),
            e.g. ``{"prediction": 2}`` for a small x0-predicting model whose first estimates are its best.
    """

    latent_backend: str = "cogvideox"
    backend_kwargs: Mapping[str, Any] = field(default_factory=lambda: {"path_or_id": AETHERV1_BASE})
    target_modalities: tuple[str, ...] = ("color", "disparity", "raymap")
    condition_modalities: tuple[str, ...] = ("color", "raymap")
    modality_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    prediction_type: str = "v_prediction"
    frames: tuple[int, ...] | None = AETHERV1_FRAMES
    fps: tuple[float, ...] | None = AETHERV1_FPS
    rope_base_fps: float = BASE_FPS
    sampling_steps: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "target_modalities", _names(self.target_modalities, "target_modalities"))
        set_(self, "condition_modalities", _names(self.condition_modalities, "condition_modalities"))
        set_(self, "backend_kwargs", dict(self.backend_kwargs or {}))
        set_(self, "modality_options", _frozen_options(self.modality_options))
        if self.frames is not None:
            set_(self, "frames", tuple(int(t) for t in self.frames))
        if self.fps is not None:
            set_(self, "fps", tuple(float(f) for f in self.fps))
        set_(self, "rope_base_fps", float(self.rope_base_fps))
        if self.sampling_steps is not None:
            steps = dict(self.sampling_steps)
            bad = {k: v for k, v in steps.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
            if bad or not all(isinstance(k, str) for k in steps):
                raise ValueError(f"sampling_steps: expected {{task name: steps >= 1}}, got {steps}")
            set_(self, "sampling_steps", steps)
        if not self.rope_base_fps > 0:
            raise ValueError(f"rope_base_fps must be positive, got {self.rope_base_fps}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}"
            )
        stacked = set(self.target_modalities) | set(self.condition_modalities)
        unknown = sorted(set(self.modality_options) - stacked)
        if unknown:
            raise ValueError(
                f"modality_options name modalities {unknown} that are not stacked ({sorted(stacked)})"
            )

    def nearest_fps(self, fps: float | None) -> float:
        """The frame rate to sample a video recorded at ``fps`` with: the nearest of this model's
        trained rates (``fps`` itself when the model has no trained set; :data:`DEFAULT_FPS` when
        ``fps`` is None or 0, i.e. unknown)."""
        if not fps:
            return DEFAULT_FPS
        if self.fps is None:
            return float(fps)
        return min(self.fps, key=lambda f: abs(f - fps))

    # ------------------------------------------------------------------ registry checks and builds
    def check_registered(self) -> None:
        """ValueError naming the unknown backend / modalities and listing the registered ones."""
        from aether.modalities import LATENT_BACKENDS, MODALITIES

        if self.latent_backend not in LATENT_BACKENDS:
            raise ValueError(
                f"unknown latent backend {self.latent_backend!r}; known: {', '.join(LATENT_BACKENDS.names())}"
            )
        names = dict.fromkeys((*self.target_modalities, *self.condition_modalities))
        unknown = [n for n in names if n not in MODALITIES]
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; known: {', '.join(MODALITIES.names())}")
        roles = [MODALITIES.get(n).condition_role for n in self.condition_modalities]
        if roles[0] != "frames" or roles.count("frames") != 1 or roles.count("action") > 1:
            raise ValueError(
                "condition_modalities must start with the one 'frames' modality (colour) and hold at most "
                f"one 'action'; got {list(self.condition_modalities)} with roles {roles}"
            )
        condition_only = [n for n in self.target_modalities if MODALITIES.get(n).condition_role == "memory"]
        if condition_only:
            raise ValueError(
                f"target_modalities: {condition_only} are 'memory' conditions (rendered, never decoded), "
                f"not targets; got {list(self.target_modalities)}"
            )
        if self.condition_modalities[0] not in self.target_modalities:
            raise ValueError(
                f"target_modalities must contain the condition's frames modality "
                f"{self.condition_modalities[0]!r}, got {list(self.target_modalities)}"
            )

    def build_backend(self, **overrides: Any) -> Any:
        """The latent backend (``backend_kwargs`` updated with ``overrides``)."""
        from aether.modalities import LATENT_BACKENDS

        self.check_registered()
        return LATENT_BACKENDS.build(self.latent_backend, **{**self.backend_kwargs, **overrides})

    def build_stacks(self, backend: Any) -> tuple[Any, Any]:
        """The target and condition ``ModalityStack`` on ``backend``."""
        from aether.modalities import ModalityStack

        self.check_registered()

        def options(names: Sequence[str]) -> dict[str, dict[str, Any]]:
            return {k: v for k, v in self.modality_options.items() if k in names}

        target = ModalityStack(self.target_modalities, backend, options(self.target_modalities))
        condition = ModalityStack(self.condition_modalities, backend, options(self.condition_modalities))
        return target, condition

    def check_transformer(
        self, config: Mapping[str, Any], target_channels: int, condition_channels: int
    ) -> None:
        """ValueError unless the transformer config's channels match the stacks' (naming both)."""
        got_in, got_out = int(config["in_channels"]), int(config["out_channels"])
        want_in = target_channels + condition_channels
        if (got_in, got_out) != (want_in, target_channels):
            raise ValueError(
                f"the transformer config has in_channels={got_in}, out_channels={got_out}, but the model "
                f"spec's modalities need in_channels={want_in} (targets {list(self.target_modalities)}: "
                f"{target_channels}, conditions {list(self.condition_modalities)}: {condition_channels}) "
                f"and out_channels={target_channels}"
            )

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("target_modalities", "condition_modalities", "frames", "fps"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "spec") -> AetherModelSpec:
        """A spec from a mapping (unknown keys are refused; ``training`` records and ``checksums``
        are ignored)."""
        known = set(cls.__dataclass_fields__)
        data = {k: v for k, v in data.items() if k not in ("training", CHECKSUMS)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown model spec keys {unknown}; expected keys among {sorted(known)}"
            )
        kwargs = dict(data)
        for key in ("target_modalities", "condition_modalities", "frames", "fps"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    def save(
        self,
        directory: str | os.PathLike,
        *,
        extra: Mapping[str, Any] | None = None,
        checksums: bool = False,
    ) -> Path:
        """Write ``directory/aether_config.json`` atomically (``extra`` keys such as ``training`` are
        added for the record); returns its path.

        With ``checksums`` it also records the size and SHA-256 of every other file under
        ``directory`` and a SHA-256 of its own contents (see :func:`verify_checksums`)."""
        path = Path(directory) / SPEC_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {**self.to_dict(), **dict(extra or {})}
        if checksums:
            files = {
                file.relative_to(directory).as_posix(): {
                    "bytes": file.stat().st_size,
                    "sha256": sha256_file(file),
                }
                for file in sorted(Path(directory).rglob("*"))
                if file.is_file() and file != path
            }
            payload[CHECKSUMS] = {"files": files}
            payload[CHECKSUMS]["config"] = _config_digest(payload)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> AetherModelSpec:
        """The spec of a model folder: its ``aether_config.json``, else :data:`AETHERV1_SPEC`."""
        path = Path(directory) / SPEC_FILE
        if not path.is_file():
            return AETHERV1_SPEC
        return cls.from_dict(_read_spec_file(path), source=str(path))

    def replace(self, **changes: Any) -> AetherModelSpec:
        return replace(self, **changes)


CHECKSUMS = "checksums"
"""The ``aether_config.json`` key holding ``{"files": {path: {"bytes", "sha256"}}, "config": sha256}``."""


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_spec_file(path: Path) -> dict[str, Any]:
    """The JSON object of a spec file; ValueError naming it otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable model spec ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _config_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 of a spec file's contents, without the digest itself (canonical JSON)."""
    data = dict(payload)
    if isinstance(data.get(CHECKSUMS), Mapping):
        data[CHECKSUMS] = {k: v for k, v in data[CHECKSUMS].items() if k != "config"}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def verify_checksums(directory: str | os.PathLike) -> bool:
    """Check a model folder against the checksums its ``aether_config.json`` records (written by
    ``aether export``); False when it records none (a hand-written or released model).

    ValueError naming ``aether_config.json`` when its contents were edited since (another raymap
    layout, say), FileNotFoundError naming a listed file that is gone, ValueError naming a file whose
    size or SHA-256 differs (bytes flipped or truncated)."""
    path = Path(directory) / SPEC_FILE
    if not path.is_file():
        return False
    payload = _read_spec_file(path)
    record = payload.get(CHECKSUMS)
    if record is None:
        return False
    files = record.get("files") if isinstance(record, Mapping) else None
    if not isinstance(files, Mapping) or not isinstance(record.get("config"), str):
        raise ValueError(
            f"{path}: its {CHECKSUMS!r} entry is damaged: expected files and config, got {record!r}"
        )
    want, got = record["config"], _config_digest(payload)
    if want != got:
        raise ValueError(
            f"{path}: its contents differ from what `aether export` wrote (sha256 {want[:16]}…, now "
            f"{got[:16]}…): the model spec was edited or damaged since; export the model again, or delete "
            f"its {CHECKSUMS!r} entry to load it unverified"
        )
    for name, entry in files.items():
        file = Path(directory) / name
        if not file.is_file():
            raise FileNotFoundError(f"{file}: missing (listed in the checksums of {path})")
        size = file.stat().st_size
        digest = sha256_file(file) if size == entry.get("bytes") else None
        if digest != entry.get("sha256"):
            read = f"sha256 {digest[:16]}…" if digest else f"{size} bytes"
            raise ValueError(
                f"{file}: checksum mismatch with {path}: expected {entry.get('bytes')} bytes with sha256 "
                f"{str(entry.get('sha256'))[:16]}…, read {read} (corrupt or replaced since export)"
            )
    return True


def _names(names: Sequence[str] | str, what: str) -> tuple[str, ...]:
    names = (names,) if isinstance(names, str) else tuple(str(n) for n in names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{what}: expected a non-empty list of distinct modality names, got {list(names)}")
    return names


AETHERV1_SPEC = AetherModelSpec()
"""The released AetherV1: CogVideoX VAE, targets color | disparity | raymap, conditions color | raymap."""
