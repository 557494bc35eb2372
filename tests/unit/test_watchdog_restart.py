"""Issue 16, class 5: a restart that must replay unseen steps (after a kill -9) stays under
systemd's watchdog: `passersby run` with a fake NOTIFY_SOCKET and WATCHDOG_USEC, as systemd
would start it, sends WATCHDOG=1 all through the replay (the still is on screen and the
loop runs), and the place reached during the replay is saved (a second kill does not
replay it all again)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import default_world, xvfb
from passersby.common import state

WATCHDOG_S = 4.0           # WatchdogSec of this test's "unit": beats every 2 s
REPLAY = 4000              # unseen steps to replay after the "kill -9"
SEED = 0xBEEF


def make_edition(folder: Path, weights_root: Path) -> state.State:
    """An edition whose saved place says: replay REPLAY steps before showing anything."""
    from passersby.common import config
    from passersby.generator import audit
    from passersby.generator.chain import Chain

    chain = Chain.load(weights_root, *default_world()[:2], "cpu")   # the world the player plays
    audit.run(chain, config.Config(), 30, seed=SEED, face_every=30, state_dir=folder)
    path = folder / state.CURRENT
    doc = json.loads(path.read_text())
    doc["payload"]["skip_to"] = doc["payload"]["step"] + REPLAY
    body = json.dumps(doc["payload"], sort_keys=True)
    doc["sha256"] = hashlib.sha256(body.encode()).hexdigest()
    path.write_text(json.dumps(doc))
    (folder / state.PREVIOUS).unlink(missing_ok=True)
    saved = state.load(folder)
    assert saved is not None and saved.skip_to - saved.step == REPLAY
    return saved


@pytest.mark.slow
def test_watchdog_beats_through_the_replay_and_the_replay_is_saved(tmp_path: Path,
                                                                   weights_root: Path) -> None:
    saved = make_edition(tmp_path / "state", weights_root)
    sock_dir = Path(tempfile.mkdtemp(prefix="pb-wd-", dir="/tmp"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_dir / "notify"))
    sock.settimeout(0.5)
    with xvfb("640x480x24") as display:
        env = {**os.environ, "DISPLAY": display, "NOTIFY_SOCKET": str(sock_dir / "notify"),
               "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))}
        env.pop("WAYLAND_DISPLAY", None)
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen([sys.executable, "-m", "passersby", "run", "--windowed",
                                 "--state", str(tmp_path / "state"), "--seed", hex(SEED)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        beats: list[float] = []
        ready_at = None
        progressed = False
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and not progressed:
                assert proc.poll() is None, "the player exited"
                try:
                    msg = sock.recv(4096).decode()
                except TimeoutError:
                    msg = ""
                now = time.monotonic()
                if "READY=1" in msg:
                    ready_at = now
                if "WATCHDOG=1" in msg:
                    beats.append(now)
                if ready_at is not None:
                    last = beats[-1] if beats else ready_at
                    assert now - last < WATCHDOG_S, (
                        f"no WATCHDOG=1 for {now - last:.1f} s after {len(beats)} beats: "
                        f"systemd would abort the unit")
                now_saved = state.load(tmp_path / "state", memory=False)
                progressed = now_saved is not None and saved.step < now_saved.step < \
                    saved.skip_to  # saved during the replay, before anything was shown
            assert progressed, "the place reached during the replay was never saved"
            assert len(beats) >= 2
        finally:
            proc.kill()  # a kill -9 mid-replay: the next start replays less
            proc.wait(30)
            sock.close()
            shutil.rmtree(sock_dir, ignore_errors=True)
    after = state.load(tmp_path / "state", memory=False)
    assert after is not None and after.skip_to == saved.skip_to and after.step > saved.step
