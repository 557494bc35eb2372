from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from passersby.generator import weights
from passersby.generator.weights import WeightsError

GEN = "dcgan64-standin"


@pytest.fixture()
def copy(weights_root: Path, tmp_path: Path) -> Path:
    for name in (GEN, "dcgan64-standin-encoder"):
        shutil.copytree(weights_root / name, tmp_path / name)
    return tmp_path


def test_verify_ok(weights_root: Path) -> None:
    results = weights.verify(weights_root, [GEN, "dcgan64-standin-encoder"])
    assert all(ok and not fix for _, ok, _, fix in results), results


def test_the_default_world_is_the_projects_own_and_committed(weights_root: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from passersby.cli import main as cli
    from passersby.common.config import WeightsConfig

    w = WeightsConfig()
    g = weights.read_manifest(weights_root, w.generator)
    e = weights.read_manifest(weights_root, w.encoder)
    assert g["kind"] == "generator"
    root, chain = g, [w.generator]                 # its lineage, back to a run from scratch,
    while root["lineage"]["init"] is not None:     # every step of it committed and intact
        init = root["lineage"]["init"]
        chain.append(init["package"])
        root = weights.read_manifest(weights_root, init["package"])
        assert root["tensors_sha256"] == init["tensors_sha256"], chain
    assert root["licence"].startswith("Trained from scratch") and "CC0" in root["licence"]
    assert "Trained from scratch by passersby" in g["licence"] and "CC0" in g["licence"]
    assert "NON-COMMERCIAL" not in g["licence"] + e["licence"]
    assert e["generator_tensors_sha256"] == g["tensors_sha256"]           # E is G's own
    assert all(ok for _, ok, _, _ in weights.verify(weights_root, [w.generator, w.encoder]))
    tracked = subprocess.run(["git", "ls-files", "weights/"], capture_output=True, text=True,
                             cwd=weights.PROJECT_WEIGHTS.parent).stdout.split()
    if tracked:                      # in a git checkout: the player needs no download
        for name in (w.generator, w.encoder, w.refiner, *chain[1:]):
            assert f"weights/{name}/model.safetensors" in tracked, name
    assert cli.main(["weights", "verify", GEN]) == 0                       # one by name
    out = capsys.readouterr().out
    assert GEN in out and w.generator not in out


def test_manifest_records_provenance_and_licence(weights_root: Path) -> None:
    m = weights.read_manifest(weights_root, GEN)
    assert m["arch"] == "dcgan-generator" and m["args"]["nz"] == 100
    assert m["source"]["wheel_sha256"] == weights.STANDIN["wheel_sha256"]
    assert "NON-COMMERCIAL" in m["licence"] and "DigiFace-1M" in m["training_data"]
    enc = weights.read_manifest(weights_root, "dcgan64-standin-encoder")
    assert enc["generator_tensors_sha256"] == m["tensors_sha256"]


def test_missing_file_names_file_and_fix(copy: Path) -> None:
    (copy / GEN / "model.safetensors").unlink()
    with pytest.raises(WeightsError,
                       match=r"model.safetensors: weights file missing.*weights fetch"):
        weights.load_module(copy, GEN, "generator")


def test_truncated_file(copy: Path) -> None:
    f = copy / GEN / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(WeightsError, match=r"truncated or corrupt.*weights fetch"):
        weights.load_module(copy, GEN, "generator")


def test_flipped_byte_is_a_hash_mismatch(copy: Path) -> None:
    f = copy / GEN / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-100] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match the manifest"):
        weights.load_module(copy, GEN, "generator")


def test_wrong_kind_and_wrong_pairing(copy: Path) -> None:
    with pytest.raises(WeightsError, match="expected 'generator'"):
        weights.load_module(copy, "dcgan64-standin-encoder", "generator")
    from passersby.generator.chain import Chain

    m = weights.read_manifest(copy, "dcgan64-standin-encoder")
    m["generator_tensors_sha256"] = "0" * 64
    (copy / "dcgan64-standin-encoder" / "manifest.json").write_text(__import__("json").dumps(m))
    with pytest.raises(WeightsError, match="trained for generator"):
        Chain.load(copy, GEN, "dcgan64-standin-encoder", "cpu")


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no such weight package.*weights fetch"):
        weights.load_module(tmp_path, GEN, "generator")


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    from passersby.generator.models.encoder import Encoder

    e = Encoder(nz=8, ndf=8)
    weights.save_package(tmp_path, "e", e.state_dict(),
                         {"kind": "encoder", "arch": "conv-encoder",
                          "args": {"nz": 8, "ndf": 8, "nc": 3, "size": 64}})
    e2, m = weights.load_module(tmp_path, "e", "encoder")
    x = torch.zeros(1, 3, 64, 64)
    assert torch.equal(e.eval()(x), e2(x))


def test_no_unpickling_outside_the_one_checked_conversion() -> None:
    root = Path(__file__).resolve().parents[2] / "passersby"
    hits = [(p.name, line) for p in root.rglob("*.py") for line in p.read_text().splitlines()
            if "torch." "load(" in line]
    assert hits == [("weights.py", hits[0][1])] and "weights_only=True" in hits[0][1], hits
