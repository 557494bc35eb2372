"""Issue 16, class 7: a hostile manifest (wrong types, paths outside the package, args that
build something else or something huge) is one WeightsError naming the file; `weights
verify` builds the network, so ok means the player can load it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from passersby.generator import weights
from passersby.generator.weights import WeightsError

PKG = "met64-encoder"


@pytest.fixture()
def pkg(tmp_path: Path) -> Path:
    shutil.copytree(weights.PROJECT_WEIGHTS / PKG, tmp_path / PKG)
    return tmp_path


def edit(root: Path, **fields: object) -> Path:
    path = root / PKG / weights.MANIFEST_FILE
    m = json.loads(path.read_text())
    m.update(fields)
    path.write_text(json.dumps(m))
    return path


@pytest.mark.parametrize("fields", [
    {"args": [1, 2]}, {"args": "nz=100"}, {"args": {"nz": [100]}}, {"args": {"nz": "100"}},
    {"args": {"nz": 10 ** 7}}, {"args": {"nz": -3}}, {"args": {"bogus": 1}},
    {"arch": 5}, {"arch": "dcgan-generator"}, {"kind": ["encoder"]},
    {"file": "../met64/model.safetensors"}, {"file": "/etc/passwd"}, {"file": 7},
    {"tensors_sha256": None}, {"fix": {"x": 1}},
])
def test_hostile_manifest_is_one_error_naming_the_file(pkg: Path, fields: dict) -> None:
    path = edit(pkg, **fields)
    for attempt in (lambda: weights.load_module(pkg, PKG, "encoder"),):
        with pytest.raises(WeightsError) as e:
            attempt()
        msg = str(e.value)
        assert str(pkg / PKG) in msg and "\n" not in msg and len(msg) < 1200, msg
    (name, ok, msg, fix), = weights.verify(pkg, [PKG])
    assert not ok and str(pkg / PKG) in msg
    assert path.exists()


def test_manifest_that_is_not_an_object(pkg: Path) -> None:
    (pkg / PKG / weights.MANIFEST_FILE).write_text("[1, 2]")
    with pytest.raises(WeightsError, match="JSON object"):
        weights.load_module(pkg, PKG, "encoder")
    (pkg / PKG / weights.MANIFEST_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(WeightsError, match="unreadable manifest"):
        weights.load_module(pkg, PKG, "encoder")


def test_a_package_name_is_not_a_path(pkg: Path) -> None:
    with pytest.raises(WeightsError, match="not a path"):
        weights.load_module(pkg, f"../{pkg.name}/{PKG}", "encoder")


def test_verify_builds_the_network(pkg: Path) -> None:
    assert weights.verify(pkg, [PKG])[0][1]
    edit(pkg, args={**json.loads((pkg / PKG / weights.MANIFEST_FILE).read_text())["args"],
                    "nz": 7})  # the hash still matches: only building it finds out
    (name, ok, msg, fix), = weights.verify(pkg, [PKG])
    assert not ok and "architecture" in msg, msg
