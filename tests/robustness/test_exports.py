"""Exports and checkpoints: damaged bytes, edited specs and used folders are refused naming the file."""

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch

from aether.cli import main as cli
from aether.models.spec import SPEC_FILE
from aether.models.testing import tiny_module_kwargs
from aether.pipeline import AetherPipeline
from aether.training.checkpoints import read_checkpoint
from aether.training.export import export_module
from aether.training.module import AetherModule

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def module():
    module = AetherModule(**tiny_module_kwargs())
    module.configure_model()
    return module


@pytest.fixture
def exported(module, tmp_path):
    return export_module(module, tmp_path / "model")


@pytest.fixture
def ckpt(module, tmp_path):
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_export_records_every_file_and_the_spec_with_sha256(exported):
    record = json.loads((exported / SPEC_FILE).read_text())["checksums"]
    files = sorted(str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file())
    assert sorted(record["files"]) == [f for f in files if f != SPEC_FILE]
    weights = exported / "transformer" / "diffusion_pytorch_model.safetensors"
    entry = record["files"]["transformer/diffusion_pytorch_model.safetensors"]
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert entry == {"bytes": weights.stat().st_size, "sha256": digest}
    AetherPipeline.from_pretrained(exported)  # verifies and loads


def test_flipped_bytes_in_exported_weights_are_refused_naming_the_file(exported):
    weights = exported / "transformer" / "diffusion_pytorch_model.safetensors"
    _flip(weights, weights.stat().st_size - 10)  # inside the last tensor: the file still decodes
    with pytest.raises(ValueError, match=f"{weights}: checksum mismatch with .*{SPEC_FILE}"):
        AetherPipeline.from_pretrained(exported)


@pytest.mark.parametrize(
    "edit",
    [{"modality_options": {"raymap": {"layout": "consecutive"}}}, {"training": {"lr": 1}}],
    ids=["another raymap layout", "the training record"],
)
def test_an_edited_spec_is_refused_naming_it(exported, edit):
    path = exported / SPEC_FILE
    data = json.loads(path.read_text())
    assert data["modality_options"] != edit.get("modality_options")
    data.update(edit)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{path}: its contents differ from what `aether export` wrote"):
        AetherPipeline.from_pretrained(exported)
    del data["checksums"]  # the documented way to load a hand-edited spec
    path.write_text(json.dumps(data))
    AetherPipeline.from_pretrained(exported)


def test_a_missing_listed_file_is_named(exported):
    (exported / "scheduler" / "scheduler_config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"scheduler_config\.json: missing \(listed in the checksums"):
        AetherPipeline.from_pretrained(exported)


def test_exporting_over_a_previous_export_replaces_it_whole(module, exported):
    (exported / "transformer" / "stale.safetensors").write_bytes(b"old")
    export_module(module, exported)
    assert not (exported / "transformer" / "stale.safetensors").exists()
    assert sorted(p.name for p in exported.parent.iterdir()) == ["model"]  # no temporary folder left


def test_a_used_folder_is_refused_unless_overwrite(module, tmp_path):
    used = tmp_path / "used"
    (used / "vae").mkdir(parents=True)
    (used / "text_encoder").mkdir()
    with pytest.raises(ValueError, match=r"used: not empty and not a previous export .*'text_encoder'"):
        export_module(module, used)
    assert sorted(p.name for p in used.iterdir()) == ["text_encoder", "vae"]  # untouched
    export_module(module, used, overwrite=True)
    expected = ["aether_config.json", "empty_prompt_embedding.safetensors", "scheduler", "transformer"]
    assert sorted(p.name for p in used.iterdir()) == expected


def _member_offset(path: Path, suffix: str) -> int:
    """Where a zip member's data starts in the file (torch.save stores members uncompressed)."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(suffix))
        payload = archive.read(info.filename)
    return path.read_bytes().index(payload, info.header_offset)


def test_a_checkpoint_with_flipped_bytes_is_refused_by_export(ckpt, tmp_path, capsys):
    _flip(ckpt, _member_offset(ckpt, "data/2") + 3)  # the high byte of a float32 weight
    assert cli(["export", str(ckpt), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{ckpt}: member " in err and "fails the CRC-32 check" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        ("nan", r"proj_out\.weight \(\d+, \d+\) holds 1 NaN or infinite value"),
        ("huge", r"proj_out\.weight \(\d+, \d+\) reaches \|w\| = 1\.8e\+30; expected \|w\| <= 1e\+06"),
    ],
)
def test_absurd_weights_in_a_checkpoint_are_refused(module, tmp_path, damage, message):
    state = {k: v.clone() for k, v in module.state_dict().items()}
    name = next(k for k in state if k.endswith("proj_out.weight"))
    state[name][0, 0] = float("nan") if damage == "nan" else 1.8e30
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": dict(module.hparams)}, path)
    with pytest.raises(ValueError, match=rf"{path}: weight transformer\.{message}"):
        read_checkpoint(path)


@pytest.mark.parametrize("kind", ["truncated", "text", "a pickled list"])
def test_unreadable_checkpoints_are_one_line_naming_the_file(ckpt, tmp_path, capsys, kind):
    bad = tmp_path / "bad.ckpt"
    if kind == "truncated":
        bad.write_bytes(ckpt.read_bytes()[:5000])
    elif kind == "text":
        bad.write_text("hello\n")
    else:
        torch.save([1, 2], bad)
    assert cli(["export", str(bad), str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"aether export: error: {bad}: not a ")
    assert "checkpoint" in line
