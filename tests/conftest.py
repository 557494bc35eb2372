"""Shared fixtures. Tests run headless: GL through EGL, windows under Xvfb."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def weights_root() -> Path:
    from passersby import weights

    root = weights.weights_dir()
    if not (root / "dcgan64-standin" / "model.safetensors").exists():
        pytest.fail(f"{root}/dcgan64-standin is missing: run `passersby weights fetch` "
                    "(deploy/test.sh does it)")
    return root


@pytest.fixture(scope="session")
def chain(weights_root: Path):  # type: ignore[no-untyped-def]
    from passersby.chain import Chain

    return Chain.load(weights_root, "dcgan64-standin", "dcgan64-standin-encoder", "cpu")


def offscreen_or_skip(size: tuple[int, int]):  # type: ignore[no-untyped-def]
    """An EGL offscreen target, or skip the test with the reason when GL is missing."""
    from passersby.display import DisplayError, Offscreen

    try:
        return Offscreen(size)
    except DisplayError as e:
        pytest.skip(f"no headless GL here: {e}")
