"""The quit path holds while a frame never ends: SIGTERM still stops the player."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent("""
    import signal, sys, time
    from pathlib import Path
    from passersby.player.quitguard import QuitGuard
    mark = Path(sys.argv[1])
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGUSR1, lambda *_: None)   # another signal through the wakeup fd
    guard = QuitGuard(lambda: mark.write_text("generators stopped"), grace=float(sys.argv[2]))
    print("ready", flush=True)
    end = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < end:      # a frame that never ends: the flag is never read
        time.sleep(0.05)
    guard.close()
    mark.write_text("loop ended by itself" + (" after SIGTERM" if stopping else ""))
    sys.exit(3)
""")


def _start(tmp_path: Path, grace: float, busy: float) -> tuple[subprocess.Popen, Path]:
    mark = tmp_path / "mark.txt"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(mark), str(grace), str(busy)],
                             stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child, mark


def test_sigterm_during_an_endless_frame_stops_the_generators_and_exits(tmp_path: Path) -> None:
    child, mark = _start(tmp_path, grace=0.5, busy=60)
    sent = time.monotonic()
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=15) == 0
    assert time.monotonic() - sent < 10
    assert mark.read_text() == "generators stopped"


def test_a_loop_that_stops_in_time_is_left_alone(tmp_path: Path) -> None:
    child, mark = _start(tmp_path, grace=30, busy=1.0)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=20) == 3                     # its own exit, not the guard's
    assert mark.read_text() == "loop ended by itself after SIGTERM"


def test_other_signals_do_not_trip_it(tmp_path: Path) -> None:
    child, mark = _start(tmp_path, grace=0.2, busy=1.5)
    for _ in range(3):
        os.kill(child.pid, signal.SIGUSR1)
        time.sleep(0.1)
    assert child.wait(timeout=20) == 3
    assert mark.read_text() == "loop ended by itself"


def test_off_the_main_thread_it_installs_nothing() -> None:
    import threading

    from passersby.player.quitguard import QuitGuard

    made: list = []
    t = threading.Thread(target=lambda: made.append(QuitGuard(lambda: None, grace=0.1)))
    t.start()
    t.join()
    assert made and made[0]._thread is None
    made[0].close()
    assert signal.set_wakeup_fd(-1) == -1        # the main thread's wakeup fd untouched
