"""The process of every module is given by its folder, and the folders keep to it:
the player (GL) never imports torch, the generator never imports GL, the unit's plumbing
and the common modules import neither, and no folder reaches into one it must not.
Every module is found by walking the package: there is no list to keep."""
from __future__ import annotations

import ast
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import passersby
from conftest import render_in_fresh_process

GL = {"moderngl", "glfw"}
TORCH = {"torch", "safetensors", "torchvision"}
# folder -> (the project's folders it may import, the libraries it must not import)
RULES = {
    "common": ({"common"}, GL | TORCH),
    "generator": ({"common", "generator"}, GL),
    "player": ({"common", "player", "unit"}, TORCH),
    "unit": ({"common", "unit"}, GL | TORCH),
    "train": ({"common", "generator", "train"}, GL),
    "cli": ({"common", "generator", "player", "unit", "train", "cli"}, set()),
}
TOP = {"passersby", "passersby.__main__"}                 # the package itself: the CLI only


def modules() -> list[str]:
    found = [m.name for m in pkgutil.walk_packages(passersby.__path__, "passersby.")]
    return sorted(found)


def folder(module: str) -> str:
    return module.split(".")[1]


def imports(source: str) -> set[str]:
    """Every module named by an import statement anywhere in `source` (at the top or
    inside a function: a lazy import still runs in the same process)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            if node.module == "passersby" or node.module.count(".") == 1 and \
                    node.module.startswith("passersby."):
                names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def violations(where: str, names: set[str]) -> list[str]:
    """The imports a module in folder `where` must not have."""
    allowed, banned = RULES[where]
    return sorted(n for n in names if n.split(".")[0] in banned
                  or n.startswith("passersby.") and folder(n) not in allowed)


def source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin
    return Path(spec.origin).read_text(encoding="utf-8")


def test_every_module_lives_in_a_process_folder() -> None:
    stray = [m for m in modules() if m not in TOP and folder(m) not in RULES]
    assert not stray, f"modules outside the process folders {sorted(RULES)}: {stray}"
    assert len(modules()) > 60                                   # the walk found the tree


@pytest.mark.parametrize("module", [m for m in modules() if m not in TOP])
def test_module_imports_only_what_its_folder_allows(module: str) -> None:
    bad = violations(folder(module), imports(source(module)))
    assert not bad, f"{module} ({folder(module)}/) imports {bad}"


@pytest.mark.parametrize("where", sorted(set(RULES) - {"cli"}))
def test_importing_a_folder_loads_nothing_it_must_not(where: str) -> None:
    """At run time too (what a module's imports import): every module of the folder in
    one fresh interpreter."""
    mods = [m for m in modules() if m not in TOP and folder(m) == where]
    code = f"import sys; import {', '.join(mods)}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    loaded = {m.split(".")[0] for m in out.stdout.split()}
    assert not RULES[where][1] & loaded, f"{where}/ loads {RULES[where][1] & loaded}"


def test_the_command_line_imports_neither_torch_nor_gl() -> None:
    """Importing the CLI, and parsing a player's command line (the parser of `train`'s
    subcommands, made from torch modules' recipes, is made only when it is used)."""
    code = ("import sys, passersby.cli.main as m, passersby.cli.doctor; "
            "[m.parser().parse_args(a) for a in (['run'], ['render', '--count', '2'], "
            "['train', 'carry', '--out', 'x'])]; print(' '.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert not (GL | {"torch"}) & set(out.stdout.split())


def test_a_violation_is_seen() -> None:
    """The check can fail: lazy imports of torch and of the generator in a player module,
    GL in the unit's plumbing, the player in common/."""
    lazy = "def f():\n    import torch\n    from passersby.generator import chain\n"
    assert violations("player", imports(lazy)) == ["passersby.generator",
                                                   "passersby.generator.chain", "torch"]
    assert violations("unit", imports("import moderngl\n")) == ["moderngl"]
    assert violations("common", imports("from passersby import player\n")) == \
        ["passersby.player"]
    assert violations("player", imports("from passersby.common import state\n")) == []


def test_the_player_process_never_imports_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Keyframes come from the generator process; the GL process stays torch-free."""
    out = render_in_fresh_process("{'stream': {'threads': 1, 'seed': 1}, 'render': "
                                  "{'seconds': 1.0, 'fps': 8.0, 'size': [64, 64]}}",
                                  tmp_path / "out")
    assert out.stdout.split() == ["False"] and len(list((tmp_path / "out").glob("*.png"))) == 8


def test_the_live_window_never_imports_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same run-time check on the windowed path: the player plays a real glfw window
    (under Xvfb) until a keyframe from the generator process is on screen, then quits on
    SIGTERM as under systemd, and says whether torch was imported."""
    import os
    import signal
    import time

    from conftest import xvfb

    code = ("import logging, sys; from pathlib import Path; from passersby.common import "
            "config; from passersby.player import stage\n"
            "logging.basicConfig(level=logging.INFO)\n"
            "cfg = config.load(None, {'stream': {'threads': 1, 'seed': 1}, "
            "'display': {'window_size': [160, 200]}})\n"
            f"figures = stage.run(cfg, Path({str(tmp_path)!r}), True, max_seconds=240.0)\n"
            "print('step', figures['step'])\n"
            "print('torch', 'torch' in sys.modules)")
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with xvfb("320x240x24") as display, open(out, "w") as o, open(err, "w") as e:
        # files, not pipes: the generator child inherits them and may outlive the player
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=o, stderr=e,
                                env={**os.environ, "DISPLAY": display})
        deadline = time.monotonic() + 180
        while "live stream" not in err.read_text() and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    assert rc == 0, err.read_text()[-2000:]
    lines = dict(line.split() for line in out.read_text().splitlines() if line.count(" ") == 1)
    assert lines["torch"] == "False"
    assert int(lines["step"]) >= 0, err.read_text()[-2000:]   # a keyframe was shown
