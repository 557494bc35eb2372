"""sd_notify over a real AF_UNIX datagram socket, as systemd would receive it."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from passersby.unit import watchdog


class FakeSystemd:
    """A bound datagram socket standing in for systemd's notify socket."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value
        sock.settimeout(0.0)

    def messages(self) -> list[str]:
        got = []
        while True:
            try:
                got.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return got


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    # a short directory: AF_UNIX paths are limited to 108 bytes
    folder = Path(tempfile.mkdtemp(prefix="pb-notify-", dir="/tmp"))
    path = folder / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield FakeSystemd(sock, str(path))
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_no_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert watchdog.ready() is False
    assert watchdog.status("x") is False
    assert watchdog.stopping() is False
    beat = watchdog.Heartbeat(1.0)
    assert not beat.enabled and beat.beat(1) is False and beat.sent == 0


def test_ready_status_stopping(systemd: FakeSystemd) -> None:
    assert watchdog.ready("edition ab12, step 7")
    assert watchdog.status("30.0 fps\nstep 9")
    assert watchdog.stopping()
    assert systemd.messages() == ["READY=1\nSTATUS=edition ab12, step 7",
                                  "STATUS=30.0 fps step 9", "STOPPING=1"]


def test_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"passersby-test-{os.getpid()}-{os.urandom(4).hex()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert watchdog.socket_address() == b"\0" + name.encode()
        assert watchdog.ready()
        sock.settimeout(1.0)
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_heartbeat_only_while_the_step_advances(systemd: FakeSystemd) -> None:
    clock = Clock()
    beat = watchdog.Heartbeat(5.0, clock=clock)
    assert beat.beat(10)                      # first beat goes out
    clock.t += 1.0
    assert not beat.beat(11)                  # advanced, but within the interval
    clock.t += 5.0
    assert beat.beat(11)                      # advanced and the interval passed
    for _ in range(4):                        # frozen picture: silence, however long
        clock.t += 10.0
        assert not beat.beat(11)
    assert beat.beat(12)                      # moving again
    assert systemd.messages() == ["WATCHDOG=1"] * 3 and beat.sent == 3


def test_heartbeat_every_frame_is_rate_limited(systemd: FakeSystemd) -> None:
    clock = Clock()
    beat = watchdog.Heartbeat(2.0, clock=clock)
    for frame in range(600):                  # 10 s at 60 fps, a new step every 15 frames
        clock.t += 1 / 60
        beat.beat(frame // 15)
    assert 4 <= len(systemd.messages()) <= 6


def test_interval_from_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog.watchdog_interval() == 15.0
    assert watchdog.Heartbeat().interval_s == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))     # meant for another process
    assert watchdog.watchdog_interval(7.0) == 7.0
    monkeypatch.delenv("WATCHDOG_PID")
    monkeypatch.setenv("WATCHDOG_USEC", "junk")
    assert watchdog.watchdog_interval(7.0) == 7.0
    with pytest.raises(ValueError):
        watchdog.Heartbeat(0)


def test_unreachable_socket_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert watchdog.ready() is False
    clock = Clock()
    beat = watchdog.Heartbeat(1.0, clock=clock)
    assert beat.beat(1) is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert watchdog.socket_address() is None and watchdog.status("x") is False
