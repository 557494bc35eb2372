"""Fault injection: kill -9 at random moments during a render, 50 times."""
from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from passersby.common import state

RUNS = 50
KPS, FPS = 4.0, 8.0


def start(tmp: Path, run: int, cfg: Path) -> tuple[subprocess.Popen, Path]:
    out = tmp / f"run{run:02d}"
    cmd = [sys.executable, "-m", "passersby", "render", "--seconds", "600", "--fps", str(FPS),
           "--size", "64x64", "--out", str(out), "--state", str(tmp / "state"),
           "--config", str(cfg), "--seed", "0x51"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out


def test_fifty_kill9_during_render_resume_and_never_repeat(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"stream": {"keyframes_per_second": KPS, "save_seconds": 1.0,
                                              "threads": 1}}))
    r = random.Random(2026)
    first, prev_end = 0, -1  # first keyframe step a run shows; last step the previous showed
    for run in range(RUNS):
        proc, out = start(tmp_path, run, cfg)
        deadline = time.monotonic() + 120
        while not (out.exists() and any(out.iterdir())):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "render never produced a frame"
            time.sleep(0.02)
        time.sleep(r.uniform(0.0, 1.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        frames = len(list(out.glob("*.png")))
        # keyframes shown: `first` and one more per KPS/FPS of a keyframe per frame
        last = first + math.ceil(frames * KPS / FPS) + 1
        assert first > prev_end, f"run {run} showed keyframe {first} again (<= {prev_end})"
        saved = state.load(tmp_path / "state")
        assert saved is not None, f"state did not load after kill {run}"
        assert saved.seed == 0x51
        nxt = max(saved.step, saved.skip_to)
        assert nxt > last, f"after kill {run} the stream would resume at {nxt}, " \
                           f"but keyframes up to {last} were shown"
        first, prev_end = nxt, last
