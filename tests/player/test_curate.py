"""Curation: a real glfw window under Xvfb, keys through the window's own key callback,
ratings (with latents) in the folder's SQLite store, resumable."""
from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import offscreen_or_skip, xvfb
from passersby.cli import main as cli
from passersby.common import bookmarks, config, rng
from passersby.common.bookmarks import Bookmark, Store
from passersby.player import batch, curate

SCREENSHOT = Path("/tmp/passersby-curate.png")


@pytest.fixture(scope="module")
def stills(tmp_path_factory: pytest.TempPathFactory) -> Path:
    offscreen_or_skip((8, 8)).release()
    out = tmp_path_factory.mktemp("curate") / "stills"
    cfg = config.load(None, {"stream": {"threads": 1, "seed": 0xC0A7},
                             "render": {"size": [64, 80]}})
    assert batch.render_stills(cfg, out, 4, every=5).total == 4
    return out


# The window runs in a child process: glfw's GLX context cannot be made current in a
# process that has used EGL contexts (the stills, other tests): X_GLXMakeCurrent BadAccess.
CHILD = r"""
import json, sys
from pathlib import Path
import glfw, numpy as np
from PIL import Image
from passersby.player import curate

folder, shot_path = Path(sys.argv[1]), sys.argv[2]
items, store = curate.load_items(folder, "--from")
deck = curate.Deck(items, store)
app = curate.App(deck, windowed=True, size=(640, 480))
stills = {p.name: np.asarray(Image.open(p).convert("RGB"), int)
          for p in sorted(folder.glob("still-*.png"))}
handle = app.window.handle
callback = glfw.set_key_callback(handle, None)   # the key callback glfw calls
glfw.set_key_callback(handle, callback)
out = {"items": [it.path.name for it in items], "steps": []}

def shown():
    # the picture as the window shows it, shrunk back to the stills' size; the closest
    shot = app.screenshot()
    x, y, w, h = app.view.image_rect                        # GL: bottom-left origin
    top = shot.shape[0] - (y + h)
    crop = Image.fromarray(shot[top:top + h, x:x + w])
    pic = np.asarray(crop.resize((64, 80), Image.Resampling.BOX), int)
    diffs = {n: float(np.abs(pic - s).mean()) for n, s in stills.items()}
    best = min(diffs, key=diffs.get)
    return [best, diffs[best], sorted(diffs.values())[1]]

try:
    app.frame(0.0)
    out["steps"].append(["start", *shown(), deck.counter()])
    for name, action in json.loads(sys.argv[3]):
        callback(handle, getattr(glfw, name), glfw.get_key_scancode(getattr(glfw, name)),
                 getattr(glfw, action), 0)
        app.frame(0.0)
        out["steps"].append([name + ("" if action == "PRESS" else " " + action), *shown(),
                             deck.counter()])
    shot = app.screenshot()
    Image.fromarray(shot).save(shot_path)
    band = shot[: app.view.band(shot.shape[0])]
    out["band"] = [int(band.max()), float(np.median(band))]
    out["closing"] = [app.window.should_close()]
    callback(handle, glfw.KEY_Q, 0, glfw.PRESS, 0)
    out["closing"].append(app.window.should_close())
finally:
    app.close()
    store.close()
print(json.dumps(out))
"""
KEYS = [("KEY_LEFT", "PRESS"), ("KEY_RIGHT", "REPEAT"), ("KEY_RIGHT", "PRESS"),
        ("KEY_UP", "PRESS"), ("KEY_BACKSPACE", "PRESS"), ("KEY_F", "PRESS")]


def test_keys_rate_reject_keep_favourite_undo_favourite(stills: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "stills"
    shutil.copytree(stills, folder)
    Image.new("RGB", (64, 80), (200, 10, 10)).save(folder / "stray.png")   # no bookmark
    with caplog.at_level(logging.INFO, logger="passersby.player.curate"):
        curate.load_items(folder, "--from")[1].close()
    assert "stray.png has no bookmark" in caplog.text
    with xvfb("800x600x24") as display:
        env = {**os.environ, "DISPLAY": display}
        env.pop("WAYLAND_DISPLAY", None)
        run = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(SCREENSHOT),
                              json.dumps(KEYS)], env=env, capture_output=True, text=True,
                             check=False,
                             timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["items"] == [f"still-000{i}.png" for i in range(1, 5)]
    steps = out["steps"]
    for label, best, diff, second, _ in steps:
        assert diff < 8.0 < second, (label, best, diff, second)   # clearly that still
    assert [(s[0], s[1]) for s in steps] == [
        ("start", "still-0001.png"), ("KEY_LEFT", "still-0002.png"),
        ("KEY_RIGHT REPEAT", "still-0002.png"),                   # a held key: ignored
        ("KEY_RIGHT", "still-0003.png"), ("KEY_UP", "still-0004.png"),
        ("KEY_BACKSPACE", "still-0003.png"), ("KEY_F", "still-0004.png")]
    assert steps[-1][4].split() == ["3", "/", "4", "rated", "·", "kept", "1", "·",
                                    "favourites", "1", "·", "rejected", "1"]
    assert steps[0][4].split()[:4] == ["0", "/", "4", "rated"]
    assert out["band"][0] > 180 and out["band"][1] < 40            # light text on the band
    assert out["closing"] == [False, True]                        # Q quits
    db = sqlite3.connect(folder / bookmarks.FILE)
    rows = db.execute("SELECT image, rating, z FROM ratings ORDER BY image").fetchall()
    db.close()
    store = Store.in_folder(folder)
    marks = {b.image: b.z for b in store.list("still")}
    store.close()
    assert [(r[0], r[1]) for r in rows] == [("still-0001.png", curate.REJECT),
                                            ("still-0002.png", curate.KEEP),
                                            ("still-0003.png", curate.FAVOURITE)]
    for image, _, z in rows:
        assert np.array_equal(np.frombuffer(z, "<f4"), marks[image])
    # re-opened: the rated ones are skipped, the counter goes on
    items, store = curate.load_items(folder, "--from")
    again = curate.Deck(items, store)
    assert again.current is not None and again.current.path.name == "still-0004.png"
    assert again.counts()["rated"] == 3 and len(again.queue) == 1
    store.close()


def test_all_rated_opens_no_window_and_says_so(stills: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "stills"
    shutil.copytree(stills, folder)
    store = Store.in_folder(folder)
    for b in store.list("still"):
        store.rate(str(b.image), curate.KEEP, b.z)
    store.close()
    monkeypatch.delenv("DISPLAY", raising=False)      # a window would fail here
    r = curate.run(folder, "--from")
    assert (r["rated"], r["total"], r["kept"], r["rated_now"]) == (4, 4, 4, 0)


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["curate", "--from", str(empty)]) == 2
    err = capsys.readouterr().err
    for w in ("--from", str(empty), "holds no images", "passersby render --count"):
        assert w in err, (w, err)
    Image.new("RGB", (8, 8)).save(empty / "a.png")
    with pytest.raises(curate.CurateError, match="no passersby.sqlite"):
        curate.load_items(empty, "--from")
    Store.in_folder(empty).close()
    with pytest.raises(curate.CurateError, match="none of its 1 images has a bookmark"):
        curate.load_items(empty, "--from")
    with pytest.raises(curate.CurateError, match="is not a folder"):
        curate.load_items(empty / "a.png", "--from")


def test_captures_in_the_state_folder_are_the_default(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "state"
    (home / "captures").mkdir(parents=True)
    store = Store.in_folder(home)
    z = rng.normal(9, 3, 100)
    store.add(Bookmark(9, 3, z, "ab" * 32, "cd" * 8, kind="capture",
                       image="captures/capture-0001.png"))
    store.close()
    Image.new("RGB", (8, 8)).save(home / "captures" / "capture-0001.png")
    monkeypatch.setenv("STATE_DIRECTORY", str(home))
    folder, where = curate.default_folder()
    assert folder == home / "captures" and "default state folder" in where
    items, store = curate.load_items(folder, where)
    store.close()
    assert [(it.key, it.name) for it in items] == [("captures/capture-0001.png", "capture-0001")]
    assert np.array_equal(items[0].z, z)


def _xtest(display: str) -> Any:
    """Real key presses on the X server (XTEST, through libXtst), or skip."""
    import ctypes
    import ctypes.util

    names = [ctypes.util.find_library(n) for n in ("X11", "Xtst")]
    if not all(names):
        pytest.skip("no libX11/libXtst to send real key events")
    x11, xtst = (ctypes.CDLL(n) for n in names)  # type: ignore[arg-type]
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XStringToKeysym.restype = ctypes.c_ulong
    x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                                       ctypes.c_ulong]
    dpy = x11.XOpenDisplay(display.encode())
    assert dpy, f"cannot open {display}"

    def press(keysym: str) -> None:
        code = x11.XKeysymToKeycode(dpy, x11.XStringToKeysym(keysym.encode()))
        for down in (1, 0):
            xtst.XTestFakeKeyEvent(dpy, code, down, 0)
        x11.XFlush(dpy)
    press.close = lambda: x11.XCloseDisplay(dpy)  # type: ignore[attr-defined]
    return press


def test_the_command_end_to_end_with_real_key_events(stills: Path, tmp_path: Path) -> None:
    """`passersby curate` fullscreen on a virtual screen; keys typed through XTEST."""
    import time

    folder = tmp_path / "stills"
    shutil.copytree(stills, folder)
    with xvfb("640x480x24") as display:
        env = {**os.environ, "DISPLAY": display}
        env.pop("WAYLAND_DISPLAY", None)
        proc = subprocess.Popen([sys.executable, "-m", "passersby", "curate", "--from",
                                 str(folder)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        press = _xtest(display)
        try:
            seen = ""
            deadline = time.monotonic() + 60
            while "window" not in seen and proc.poll() is None and time.monotonic() < deadline:
                seen += proc.stderr.readline()                      # type: ignore[union-attr]
            assert "fullscreen" in seen, seen
            time.sleep(1.0)
            for key in ("Right", "x", "BackSpace", "Up", "k", "Escape"):
                press(key)
                time.sleep(0.3)
            out, err = proc.communicate(timeout=30)
        finally:
            press.close()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "3/4 rated" in out and "2 kept, 1 favourites, 0 rejected" in out, out
    store = Store.in_folder(folder)
    images, ratings, zs = store.ratings()
    store.close()
    assert dict(zip(images, ratings.tolist())) == {
        "still-0001.png": curate.KEEP, "still-0002.png": curate.FAVOURITE,
        "still-0003.png": curate.KEEP}
    assert zs.shape == (3, 100)
