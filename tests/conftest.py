"""Shared fixtures. Tests run headless: GL through EGL, windows under Xvfb."""
from __future__ import annotations

import contextlib
import functools
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
ROOT = Path(__file__).resolve().parents[1]


def default_world() -> tuple[str, str, str]:
    """The default world's generator, encoder and refiner package names."""
    from passersby.common.config import WeightsConfig

    w = WeightsConfig()
    return w.generator, w.encoder, str(w.refiner)


@pytest.fixture(scope="session")
def weights_root() -> Path:
    from passersby.generator import weights

    root = weights.weights_dir()
    if not (root / "dcgan64-standin" / "model.safetensors").exists():
        pytest.fail(f"{root}/dcgan64-standin is missing: run `passersby weights fetch` "
                    "(deploy/test.sh does it)")
    return root


@pytest.fixture(scope="session")
def chain(weights_root: Path):  # type: ignore[no-untyped-def]
    from passersby.generator.chain import Chain

    return Chain.load(weights_root, "dcgan64-standin", "dcgan64-standin-encoder", "cpu")


def offscreen_or_skip(size: tuple[int, int]):  # type: ignore[no-untyped-def]
    """An EGL offscreen target, or skip the test with the reason when GL is missing."""
    from passersby.player.display import DisplayError, Offscreen

    try:
        return Offscreen(size)
    except DisplayError as e:
        pytest.skip(f"no headless GL here: {e}")


XVFB: dict[str, subprocess.Popen] = {}  # DISPLAY -> its Xvfb (a test may kill it)


@contextlib.contextmanager
def xvfb(geometry: str) -> Iterator[str]:
    """A virtual X screen of `geometry` (WxHxDEPTH); yields its DISPLAY, or skips."""
    if shutil.which("Xvfb") is None:
        pytest.skip("no Xvfb: apt-get install -y xvfb xauth to test windows")
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", geometry,
                             "-br", "-noreset", "-nolisten", "tcp"], pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    XVFB[f":{number}"] = proc
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:     # an Xvfb slow to leave (a loaded machine)
            proc.kill()
            proc.wait(10)


def assert_config_error(path: Path, words: list) -> None:
    """Loading `path` fails with a message naming the file and each of `words`."""
    from passersby.common import config

    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


def isolated(fn):  # type: ignore[no-untyped-def]
    """Run this test in a fresh Python process: a glfw (GLX) window's context cannot be
    made current in a process that already used EGL contexts, as other tests do. The
    child's outcome is the test's: a skip there is a skip here, with the child's reason;
    a failure, an error or no test run at all is a failure."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        if os.environ.get("PASSERSBY_ISOLATED") == fn.__name__:
            return fn(*args, **kwargs)
        node = f"{inspect.getfile(fn)}::{fn.__name__}"
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "child.xml"
            out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p",
                                  "no:cacheprovider", f"--junitxml={report}", node],
                                 env={**os.environ, "PASSERSBY_ISOLATED": fn.__name__},
                                 capture_output=True, text=True, timeout=900)
            outcome, reason = child_outcome(report)
        if outcome == "skipped":
            pytest.skip(f"(in a fresh process) {reason}")
        if outcome != "passed" or out.returncode != 0:
            pytest.fail(f"{node} in a fresh process: {outcome} {reason}\n"
                        + out.stdout[-6000:] + out.stderr[-2000:], pytrace=False)
        return None
    return wrapper


def child_outcome(report: Path) -> tuple[str, str]:
    """(passed | skipped | failed | error | no test, message) of the one test in a
    pytest JUnit XML report."""
    try:
        cases = ElementTree.parse(report).getroot().iter("testcase")
    except (OSError, ElementTree.ParseError) as e:
        return "no test", f"(no report: {e})"
    for case in cases:
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome = "failed" if kind == "failure" else kind
                return outcome, found.get("message", "")
        return "passed", ""
    return "no test", "(the child collected none)"


@pytest.fixture()
def few_ship_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped average's BatchNorm statistics from 2 batches, not 32 (training tests):
    the same code, and ~90 % of the tiny runs' time was those 2,048 pictures per sample
    grid and export (what those tests check is exactness and lineage, not the statistics)."""
    from passersby.train import generator

    monkeypatch.setattr(generator, "SHIP_BATCHES", 2)


@pytest.fixture()
def one_torch_thread() -> Iterator[None]:
    """torch on one CPU thread for the test (training tests: steady, and exact on resume)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def render_in_fresh_process(overrides: str, out: Path, log: bool = False):  # type: ignore[no-untyped-def]
    """`player.render_offscreen` with config `overrides` (a Python dict literal) in a new
    interpreter that prints whether torch got imported; skips without headless GL."""
    code = ("import logging, sys; from pathlib import Path; from passersby.common import "
            "config; from passersby.player import session as player\n"
            + ("logging.basicConfig(level=logging.INFO)\n" if log else "")
            + f"cfg = config.load(None, {overrides})\n"
            f"player.render_offscreen(cfg, Path({str(out)!r}), None)\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode and "EGL" in done.stderr:
        pytest.skip(f"no headless GL here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr[-2000:]
    return done
