"""`passersby run` end to end in a real glfw window on a virtual screen (Xvfb)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from passersby import state


@pytest.fixture()
def xdisplay() -> Iterator[str]:
    if shutil.which("Xvfb") is None:
        pytest.skip("no Xvfb: apt-get install -y xvfb xauth to test the window")
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "640x480x24",
                             "-noreset", "-nolisten", "tcp"], pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_run_plays_in_a_window_and_saves_its_place_on_sigterm(xdisplay: str,
                                                              tmp_path: Path) -> None:
    env = {**os.environ, "DISPLAY": xdisplay}
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [sys.executable, "-m", "passersby", "run", "--windowed", "--state", str(tmp_path),
           "--seed", "0xabc"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(12)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "played" in out and "fps" in out, (out, err)
    frames = int(out.split("played ")[1].split()[0])
    assert frames > 20, out
    saved = state.load(tmp_path)
    assert saved is not None and saved.seed == 0xABC and saved.step > 0
