"""Torch side never imports GL; GL side never imports torch; importing does nothing."""
from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import render_in_fresh_process

TORCH_SIDE = ["passersby.chain", "passersby.stream", "passersby.weights", "passersby.audit",
              "passersby.traversal.feedback", "passersby.traversal.transform",
              "passersby.train.encoder", "passersby.models.dcgan", "passersby.models.encoder",
              "passersby.models.refiner"]
GL_SIDE = ["passersby.render.pipeline", "passersby.render.shaders", "passersby.display",
           "passersby.video", "passersby.batch", "passersby.curate"]
NEUTRAL = ["passersby.frames", "passersby.morph", "passersby.config", "passersby.state",
           "passersby.screens", "passersby.hotplug", "passersby.stage",
           "passersby.rng", "passersby.cli", "passersby.worker", "passersby.player",
           "passersby.taste", "passersby.traversal.base", "passersby.traversal.drift",
           "passersby.traversal.orbit", "passersby.traversal.journey",
           "passersby.traversal.modes", "passersby.tune", "passersby.bookmarks",
           "passersby.quitguard"]


def loaded_after(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", TORCH_SIDE)
def test_torch_side_does_not_import_gl(module: str) -> None:
    mods = loaded_after(module)
    assert not {"moderngl", "glfw"} & mods


@pytest.mark.parametrize("module", GL_SIDE)
def test_gl_side_does_not_import_torch(module: str) -> None:
    assert "torch" not in loaded_after(module)


@pytest.mark.parametrize("module", NEUTRAL)
def test_neutral_modules_import_neither(module: str) -> None:
    assert not {"torch", "moderngl", "glfw"} & loaded_after(module)


def test_the_player_process_never_imports_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Keyframes come from the generator process; the GL process stays torch-free."""
    out = render_in_fresh_process("{'stream': {'threads': 1, 'seed': 1}, 'render': "
                                  "{'seconds': 1.0, 'fps': 8.0, 'size': [64, 64]}}",
                                  tmp_path / "out")
    assert out.stdout.split() == ["False"] and len(list((tmp_path / "out").glob("*.png"))) == 8
