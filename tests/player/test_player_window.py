"""`passersby run` end to end in a real glfw window on a virtual screen (Xvfb)."""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import XVFB, default_world, xvfb
from passersby.common import state


@pytest.fixture()
def xdisplay() -> Iterator[str]:
    with xvfb("640x480x24") as display:
        yield display


def wait_for(proc: subprocess.Popen, text: str, timeout: float) -> str:
    """Read the player's log until `text` appears; returns what was read."""
    seen, deadline = "", time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, f"no {text!r} in {timeout:.0f} s:\n{seen}"
        if not select.select([proc.stderr], [], [], 1.0)[0]:
            assert proc.poll() is None, f"the player exited:\n{seen}"
            continue
        line = proc.stderr.readline()
        assert line or proc.poll() is None, f"the player exited:\n{seen}"
        seen += line
    return seen


def test_run_plays_in_a_window_and_saves_its_place_on_sigterm(xdisplay: str,
                                                              tmp_path: Path) -> None:
    env = {**os.environ, "DISPLAY": xdisplay}
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [sys.executable, "-m", "passersby", "run", "--windowed", "--state", str(tmp_path),
           "--seed", "0xabc"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    log = wait_for(proc, "live stream", 180)  # the generator process loads meanwhile
    time.sleep(5)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    err = log + err
    assert proc.returncode == 0, err
    assert "played" in out and "fps" in out, (out, err)
    frames = int(out.split("played ")[1].split()[0])
    assert frames > 20, out
    saved = state.load(tmp_path)
    assert saved is not None and saved.seed == 0xABC and saved.step > 0


def test_a_lost_display_ends_the_player_and_its_generator_without_losing_state(
        xdisplay: str, tmp_path: Path) -> None:
    """X dies under the player (a crashed server, a pulled cable on some drivers): the
    player exits for systemd to restart it, the generator process follows it, and the
    stream's place survives."""
    env = {**os.environ, "DISPLAY": xdisplay}
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [sys.executable, "-m", "passersby", "run", "--windowed", "--state", str(tmp_path),
           "--seed", "0xabd", "--config", str(fast_saves(tmp_path))]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen = wait_for(proc, "live stream", 180)
    time.sleep(3)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    generator = [int(p) for p in children.stdout.split()]
    assert generator, "no generator process under the player"
    XVFB[xdisplay].kill()
    assert proc.wait(30) != 0, seen
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() and "zombie" not in status(p) for p in generator):
        assert time.monotonic() < deadline, "the generator outlived its player"
        time.sleep(0.1)
    saved = state.load(tmp_path)
    assert saved is not None and saved.seed == 0xABD and saved.skip_to > 0


def fast_saves(folder: Path) -> Path:
    path = folder / "fast.yaml"
    path.write_text("stream:\n  save_seconds: 1.0\n  threads: 1\n")
    return path


def status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"


def test_corrupt_weights_keep_the_last_picture_on_screen(xdisplay: str, tmp_path: Path) -> None:
    """Issue 16: weights corrupted under a unit that has played before: the player stays up
    showing its last picture (the error logged), instead of exiting to a black screen; on a
    first start (no picture yet) it fails clearly."""
    import numpy as np
    from PIL import Image

    from passersby.generator import weights

    root = tmp_path / "weights"
    for name in default_world():
        shutil.copytree(weights.PROJECT_WEIGHTS / name, root / name)
    model = root / default_world()[0] / weights.MODEL_FILE
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    env = {**os.environ, "DISPLAY": xdisplay, "PASSERSBY_WEIGHTS": str(root)}
    env.pop("WAYLAND_DISPLAY", None)
    first = subprocess.run([sys.executable, "-m", "passersby", "run", "--windowed", "--state",
                            str(tmp_path / "new")], env=env, capture_output=True, text=True,
                           timeout=120)
    assert first.returncode == 2 and default_world()[0] in first.stderr, first.stderr[-2000:]
    played = tmp_path / "played"
    played.mkdir()
    Image.fromarray(np.full((256, 256, 3), 120, np.uint8)).save(played / "last.png")
    proc = subprocess.Popen([sys.executable, "-m", "passersby", "run", "--windowed", "--state",
                             str(played)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = wait_for(proc, "cannot start", 120)
    assert "last picture stays on screen" in seen and default_world()[0] in seen
    time.sleep(5)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
