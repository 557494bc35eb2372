"""deploy/: scripts pass shellcheck, units pass `systemd-analyze verify`, and the
boot-time helpers behave (wait for a screen, fall back to a config that loads).

Runs without systemd as PID 1 (CI containers): `systemd-analyze verify` only reads
unit files, and we verify copies whose /opt/passersby/current/src paths point at this
checkout, so every ExecStart= names a file that exists.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCRIPTS = sorted(DEPLOY.glob("*.sh"))
UNITS = sorted([*(DEPLOY / "systemd").glob("*.service"), *(DEPLOY / "systemd").glob("*.timer")])
INSTALLED_SRC = "/opt/passersby/current/src"


def directives(unit: Path) -> dict[str, list[str]]:
    """KEY -> values of the unit's (uncommented) lines."""
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test_every_script_parses_and_is_executable() -> None:
    assert {p.name for p in SCRIPTS} >= {"install.sh", "wait-for-display.sh", "launch.sh",
                                         "kiosk-x.sh", "recover.sh", "setup.sh"}
    for script in SCRIPTS:
        subprocess.run(["bash", "-n", str(script)], check=True)
        assert os.access(script, os.X_OK), f"{script} is not executable (chmod +x)"


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (apt-get install -y shellcheck; "
                           "deploy/setup.sh --test does it)")
def test_shellcheck() -> None:
    done = subprocess.run(["shellcheck", *map(str, SCRIPTS)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install -y systemd; "
                           "deploy/setup.sh --test does it)")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED_SRC, str(ROOT)))
    names = [f"./{u.name}" for u in UNITS]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=tmp_path,
                          capture_output=True, text=True)
    out = done.stdout + done.stderr
    print(out)
    assert done.returncode == 0, out
    # warnings (unknown keys, bad values) do not change the exit status: none allowed
    ours = [line for line in out.splitlines() if any(u.name in line for u in UNITS)]
    assert not ours, "\n".join(ours)


def test_player_unit_policy() -> None:
    d = directives(DEPLOY / "systemd" / "passersby.service")
    for key, value in (("Type", "notify"), ("NotifyAccess", "main"), ("Restart", "always"),
                       ("StateDirectory", "passersby"), ("User", "passersby"),
                       ("PrivateNetwork", "yes"), ("NoNewPrivileges", "yes")):
        assert d.get(key) == [value], f"{key}={d.get(key)}"
    assert int(d["WatchdogSec"][0]) > 0 and int(d["StartLimitBurst"][0]) > 0
    # hardening that would break GL/CUDA must stay out (they are named in comments)
    for key in ("PrivateDevices", "MemoryDenyWriteExecute", "DevicePolicy", "ProtectClock",
                "PrivateTmp", "SystemCallFilter", "ProcSubset"):
        assert key not in d, f"{key} breaks the GPU/X; see the comment in the unit"
    timer = directives(DEPLOY / "systemd" / "passersby-recover.timer")
    assert timer.get("OnUnitActiveSec"), "the slow retry after the start limit is missing"


def fake_drm(root: Path, **connectors: str) -> Path:
    for name, status in connectors.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "status").write_text(status + "\n")
    return root


def wait_for_display(drm: Path, **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "PASSERSBY_DRM": str(drm), "PASSERSBY_WAIT_POLL_S": "0.1", **env}
    return subprocess.Popen(["bash", str(DEPLOY / "wait-for-display.sh")], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_wait_for_display_waits_then_starts(tmp_path: Path) -> None:
    drm = fake_drm(tmp_path / "drm", **{"card0-HDMI-A-1": "disconnected",
                                        "card0-DP-1": "disconnected"})
    proc = wait_for_display(drm)
    time.sleep(1.0)
    assert proc.poll() is None, "it must wait while no screen is connected"
    (drm / "card0-DP-1" / "status").write_text("connected\n")
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "screen found" in out and "card0-DP-1=connected" in out
    assert out.count("no screen connected") == 1, "logs once a minute, not every poll"


def test_wait_for_display_gives_up_only_when_told(tmp_path: Path) -> None:
    drm = fake_drm(tmp_path / "drm", **{"card0-HDMI-A-1": "disconnected"})
    out, _ = wait_for_display(drm, PASSERSBY_WAIT_MAX_S="1").communicate(timeout=10)
    assert "gave up" in out
    # no connectors at all (NVIDIA without KMS): cannot tell, so never wait forever
    proc = wait_for_display(tmp_path / "empty", PASSERSBY_WAIT_KMS_S="1")
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "starting anyway" in out


def launch(tmp_path: Path, cfg: Path, display: str, wait_s: str = "2") -> tuple[int, str]:
    venv = tmp_path / "venv" / "bin"
    if not venv.exists():
        venv.mkdir(parents=True)
        (venv / "python").symlink_to(sys.executable)
        (venv / "passersby").write_text("#!/bin/sh\necho \"PLAYER $*\"\n")
        (venv / "passersby").chmod(0o755)
        (tmp_path / "state").mkdir()
    env = {**os.environ, "PASSERSBY_VENV": str(venv.parent), "DISPLAY": display,
           "PASSERSBY_CONFIG": str(cfg), "STATE_DIRECTORY": str(tmp_path / "state"),
           "PASSERSBY_X_WAIT_S": wait_s}
    env.pop("XAUTHORITY", None)
    done = subprocess.run(["bash", str(DEPLOY / "launch.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_launch_falls_back_to_a_config_that_loads(tmp_path: Path) -> None:
    number = 900 + os.getpid() % 90
    sock_path = Path(f"/tmp/.X11-unix/X{number}")
    if sock_path.exists():
        pytest.skip(f"{sock_path} is in use")
    sock_path.parent.mkdir(mode=0o1777, exist_ok=True)
    x = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    x.bind(str(sock_path))
    try:
        good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
        good.write_text("look:\n  vignette: 0.3\n")
        bad.write_text("look:\n  vignette: -3\n")
        rc, out = launch(tmp_path, good, f":{number}")
        assert rc == 0 and f"PLAYER run --state {tmp_path / 'state'} --config {good}" in out
        rc, out = launch(tmp_path, bad, f":{number}.0")
        last_good = tmp_path / "state" / "config.last-good.yaml"
        assert rc == 0 and f"--config {last_good}" in out and "look.vignette" in out
        for hostile in (b"look:\n  exposure: .nan\n", b"look:\n  grain: \xff\n",
                        b"look: " + b"[" * 5000):  # issue 16: never kept as last good
            bad.write_bytes(hostile)
            rc, out = launch(tmp_path, bad, f":{number}")
            assert rc == 0 and f"--config {last_good}" in out, out
            assert "0.3" in last_good.read_text() and "Traceback" not in out, out
        bad.write_text("look:\n  vignette: -3\n")
        last_good.unlink()
        rc, out = launch(tmp_path, bad, f":{number}")
        assert rc == 0 and "built-in defaults" in out and "PLAYER run" in out
        assert "--config" not in out.split("PLAYER")[1]
    finally:
        x.close()
        sock_path.unlink()


def test_launch_without_x_exits_for_a_retry(tmp_path: Path) -> None:
    rc, out = launch(tmp_path, tmp_path / "none.yaml", ":899", wait_s="1")
    assert rc == 1 and "no X server" in out and "PLAYER" not in out


def test_package_data_names_files_that_exist() -> None:
    """pyproject's package data follows the files when they move (the layout change left
    it naming passersby/defaults.yaml, which a wheel would then have lacked)."""
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["packages"]["find"]["include"] == ["passersby*"]
    for package, names in tool["package-data"].items():
        for name in names:
            assert (ROOT / package.replace(".", "/") / name).is_file(), (package, name)
