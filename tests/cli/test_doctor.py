"""`passersby doctor`: headless here (EGL on llvmpipe, CPU torch), each check says what to do."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import default_world
from passersby.cli import doctor
from passersby.cli import main as cli


def by_name(results: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in results}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory,
            weights_root: Path) -> dict[str, doctor.Check]:
    state_dir = tmp_path_factory.mktemp("state")
    return by_name(doctor.run(None, str(state_dir)))


def test_every_check_reports(healthy: dict[str, doctor.Check]) -> None:
    assert list(healthy) == ["config", "torch", "gl", "displays", "weights", "state", "disk"]
    for c in healthy.values():
        assert c.status in ("ok", "warn", "fail") and c.message and "\n" not in c.message
        assert c.status == "ok" or c.fix, f"{c.name} is {c.status} but names no fix"


def test_headless_box_is_healthy(healthy: dict[str, doctor.Check]) -> None:
    assert healthy["gl"].status == "ok" and "OpenGL" in healthy["gl"].message
    assert healthy["weights"].status == "ok", healthy["weights"].message
    assert healthy["state"].status == "ok" and healthy["disk"].status == "ok"
    assert healthy["torch"].status in ("ok", "warn")       # warn: CPU only, as here


def test_broken_weights_fail_and_name_the_fix(tmp_path: Path, weights_root: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "weights"
    world, encoder, _ = default_world()
    for name in (world, encoder):                 # the default world, its G truncated
        shutil.copytree(weights_root / name, broken / name,
                        ignore=shutil.ignore_patterns("*.safetensors", "*.png"))
    shutil.copy(weights_root / encoder / "model.safetensors", broken / encoder)
    (broken / world / "model.safetensors").write_bytes(b"\0" * 100)
    monkeypatch.setenv("PASSERSBY_WEIGHTS", str(broken))
    monkeypatch.delenv("PASSERSBY_CONFIG", raising=False)
    results = by_name(doctor.run(None, str(tmp_path / "state")))
    w = results["weights"]
    assert w.status == "fail" and "model.safetensors" in w.message
    assert f"git checkout -- weights/{world}" in w.fix and "passersby train generator" in w.fix
    assert doctor.main(None, str(tmp_path / "state"), False) == 1
    manifest = broken / world / "manifest.json"     # a fix holding "; " reaches the doctor whole
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()),
                                    "fix": "first this; then that"}))
    w = by_name(doctor.run(None, str(tmp_path / "state")))["weights"]
    assert w.status == "fail" and w.fix.endswith("or first this; then that"), w.fix


def test_bad_config_fails_and_the_rest_still_runs(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("look:\n  vignette: -3\n")
    results = by_name(doctor.run(str(bad), str(tmp_path / "state")))
    assert results["config"].status == "fail" and "look.vignette" in results["config"].message
    assert str(bad) in results["config"].fix
    assert len(results) == 7 and results["gl"].status == "ok"


def test_unwritable_state_warns(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    c = doctor.check_state(doctor.Context(doctor.config.load(), None, blocker))
    assert c.status == "warn" and "in memory" in c.message and c.fix


def test_displays_read_drm_connectors(tmp_path: Path) -> None:
    for name, status in (("card0-HDMI-A-1", "disconnected"), ("card0-DP-1", "connected")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "status").write_text(status + "\n")
    ctx = doctor.Context(doctor.config.load(), None, tmp_path)
    c = doctor.check_displays(ctx, {"WAYLAND_DISPLAY": "wayland-1"}, tmp_path)
    assert c.status == "ok" and "card0-DP-1" in c.message
    (tmp_path / "card0-DP-1" / "status").write_text("disconnected\n")
    c = doctor.check_displays(ctx, {"WAYLAND_DISPLAY": "wayland-1"}, tmp_path)
    assert c.status == "warn" and "plug in a screen" in c.fix
    assert doctor.check_displays(ctx, {}, tmp_path).status == "warn"


def test_cli_json_parses(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         weights_root: Path) -> None:
    rc = cli.main(["doctor", "--json", "--state", str(tmp_path / "state")])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["ok"] is True
    assert {c["name"]: c["status"] for c in doc["checks"]}["gl"] == "ok"
    rc = cli.main(["doctor", "--state", str(tmp_path / "state")])
    out = capsys.readouterr().out
    assert rc == 0 and out.splitlines()[0].startswith("ok    config")


def test_import_loads_neither_torch_nor_gl() -> None:
    code = "import sys, passersby.cli.doctor; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"torch", "moderngl", "glfw"} & set(out.stdout.split())
