"""Curation: `passersby curate [--from DIR]` shows one image at a time, full screen, and
the artist rates it with one key: reject (left/X), keep (right/K), favourite (up/F),
undo (backspace/U), quit (Esc/Q). A counter at the top says how far it is.

Each rating goes to the ratings table of the images' SQLite store (bookmarks.py) with
the image's latent (from its bookmark), which is what the taste model learns from.
Images without a bookmark are skipped with a logged note (their latent is unknown);
images rated before are skipped, so a curation can be stopped and resumed at will.

No waiting between images: a thread pool decodes (and fits to the screen) the next
few images ahead while the artist looks at the current one.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from passersby.common import bookmarks, state
from passersby.common.bookmarks import Store
from passersby.common.errors import UserError
from passersby.player.display import Window

log = logging.getLogger(__name__)

REJECT, KEEP, FAVOURITE = -1, 1, 2        # the ratings table's values
LABELS = {REJECT: "rejected", KEEP: "kept", FAVOURITE: "favourite"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CAPTURES = "captures"                     # the state folder's captures
AHEAD = 4                                 # images decoded ahead of the one shown
HELP = "left/X reject  ·  right/K keep  ·  up/F favourite  ·  backspace/U undo  ·  Esc/Q quit"
BG, PANEL, FG, DIM = (0.06, 0.055, 0.05), (16, 15, 14, 255), (235, 226, 210, 255), \
    (150, 142, 130, 255)


class CurateError(UserError):
    """Nothing to curate, or no store to rate into; the message names the folder and fix."""


@dataclass(frozen=True)
class Item:
    path: Path
    key: str            # the ratings table's `image`: the bookmark's image as stored
    z: np.ndarray       # [nz] f32, the latent that made it
    name: str           # its bookmark


def default_folder(state_dir: str | None = None) -> tuple[Path, str]:
    """(folder, where it came from): the state folder's captures/, else the state folder."""
    base = Path(state_dir) if state_dir else state.default_dir()
    where = "--state" if state_dir else "the default state folder"
    if (base / CAPTURES).is_dir():
        return base / CAPTURES, f"{where}'s captures"
    return base, where


# -- the deck: what to show, what was rated, undo ---------------------------------------

def _find_store(folder: Path, where: str) -> tuple[Store, Path]:
    """The store beside the images (a batch folder) or one level up (state/captures)."""
    for home in (folder, folder.parent):
        if (home / bookmarks.FILE).is_file():
            return Store.in_folder(home), home
    raise CurateError(f"{where} {folder}: no {bookmarks.FILE} in it or its parent, so the "
                      f"images' latents are unknown; curate a folder made by `passersby render "
                      f"--count N --out DIR` or the state folder's captures")


def load_items(folder: Path, where: str) -> tuple[list[Item], Store]:
    """The images in `folder` that have a bookmark, in name order, and their store."""
    if not folder.is_dir():
        raise CurateError(f"{where} {folder} is not a folder; pass --from with a folder of "
                          f"stills (`passersby render --count N --out DIR` makes one)")
    images = sorted(p for p in folder.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not images:
        raise CurateError(f"{where} {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                          f"make some with `passersby render --count 100 --out {folder}` or "
                          f"the capture key, or pass --from FOLDER")
    store, home = _find_store(folder, where)
    by_path: dict[Path, bookmarks.Bookmark] = {}
    for bm in store.list():
        if bm.image:
            for base in (home, folder):
                by_path.setdefault((base / bm.image).resolve(), bm)
    items = []
    for path in images:
        bm = by_path.get(path.resolve())
        if bm is None:
            log.info("%s has no bookmark in %s: skipped (its latent is unknown)", path,
                     store.path)
            continue
        items.append(Item(path, str(bm.image), bm.z, bm.name))
    if not items:
        store.close()
        raise CurateError(f"{where} {folder}: none of its {len(images)} images has a bookmark "
                          f"in {store.path}, so none can teach a taste; curate stills made by "
                          f"`passersby render --count` or captures")
    return items, store


class Deck:
    """The images still to rate, in order, with the ratings made and an undo history."""

    def __init__(self, items: list[Item], store: Store) -> None:
        self.items, self.store = items, store
        keys = {it.key for it in items}
        images, ratings, _ = store.ratings()
        self.rated = {k: int(r) for k, r in zip(images, ratings) if k in keys}
        self.queue = [it for it in items if it.key not in self.rated]
        self.index = 0
        self.history: list[int] = []      # queue indices rated this session, in order
        self.last = ""                    # what the last key did, for the counter line

    @property
    def current(self) -> Item | None:
        return self.queue[self.index] if self.index < len(self.queue) else None

    def rate(self, value: int) -> None:
        item = self.current
        if item is None:
            return
        self.store.rate(item.key, value, item.z)
        self.rated[item.key] = value
        self.history.append(self.index)
        self.index += 1
        self.last = f"{LABELS[value]} {item.path.name}"

    def undo(self) -> bool:
        if not self.history:
            self.last = "nothing to undo"
            return False
        self.index = self.history.pop()
        item = self.queue[self.index]
        self.store.unrate(item.key)
        self.rated.pop(item.key, None)
        self.last = f"undone: {item.path.name}"
        return True

    def skip(self, why: str) -> None:
        """Pass over the current image without rating it (unreadable)."""
        if self.current is not None:
            self.last = f"skipped {self.current.path.name}: {why}"
            self.index += 1

    def counts(self) -> dict[str, int]:
        values = list(self.rated.values())
        return {"rated": len(values), "total": len(self.items), "rated_now": len(self.history),
                "kept": values.count(KEEP), "favourites": values.count(FAVOURITE),
                "rejected": values.count(REJECT)}

    def counter(self) -> str:
        c = self.counts()
        return (f"{c['rated']} / {c['total']} rated   ·   kept {c['kept']}   ·   "
                f"favourites {c['favourites']}   ·   rejected {c['rejected']}")


# -- decoding ahead -------------------------------------------------------------------

def decode(path: Path, fit: tuple[int, int]) -> np.ndarray:
    """An image file -> [H,W,3] uint8 RGB, top row first, shrunk (Lanczos) to fit `fit`."""
    from PIL import Image

    with Image.open(path) as im:
        im.draft("RGB", fit)                       # JPEG: decode at a smaller scale
        rgb = im.convert("RGB")
    s = min(fit[0] / rgb.width, fit[1] / rgb.height)
    if s < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * s)), max(1, round(rgb.height * s))),
                         Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(rgb, np.uint8))


class Prefetcher:
    """Decodes the image at i and the next AHEAD ones (and i-1, for undo) in threads."""

    def __init__(self, paths: list[Path], fit: tuple[int, int], ahead: int = AHEAD) -> None:
        self.paths, self.fit, self.ahead = paths, fit, ahead
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="curate-decode")
        self.futures: dict[int, Future] = {}

    def schedule(self, i: int) -> None:
        want = [j for j in (*range(i, i + self.ahead + 1), i - 1) if 0 <= j < len(self.paths)]
        for j in [j for j in self.futures if j not in want]:
            self.futures.pop(j).cancel()
        for j in want:
            if j not in self.futures:
                self.futures[j] = self.pool.submit(decode, self.paths[j], self.fit)

    def get(self, i: int) -> np.ndarray:
        """Image i (waits only if it is not decoded yet); raises its decoding error."""
        self.schedule(i)
        return self.futures[i].result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# -- the window -------------------------------------------------------------------------

class CurateWindow(Window):
    """A Window whose key callback hands key presses to `handler` (key repeat ignored)."""
    handler: Callable[[int], None] | None = None

    def _on_key(self, win: Any, key: int, scancode: int, action: int, mods: int) -> None:
        if action == self._glfw.PRESS and self.handler is not None:
            self.handler(key)

    @property
    def handle(self) -> Any:
        """The glfw window (for glfw calls such as fetching its key callback)."""
        return self._win


class View:
    """GL side: the picture fitted below a counter band; textures made once per size."""

    def __init__(self, ctx: Any) -> None:
        from PIL import ImageFont

        from passersby.player.render.shaders import ProgramCache

        self.ctx = ctx
        self.programs = ProgramCache(ctx)
        self.program = self.programs.get("panel")
        self.program["image"].value = 0
        self.vao = ctx.vertex_array(self.program, [])
        self.font_px = 0
        self.font: Any = None
        self._font_cls = ImageFont
        self.image: Any = None          # moderngl.Texture of the shown picture
        self.panel: Any = None          # the counter band
        self._shown: object = None
        self._has_image = False
        self.image_rect = (0, 0, 0, 0)   # where the picture was drawn: x, y, w, h (GL)
        self._text: tuple = ()

    def _texture(self, old: Any, pixels: np.ndarray, components: int) -> Any:
        import moderngl

        h, w = pixels.shape[:2]
        if old is None or old.size != (w, h):
            if old is not None:
                old.release()
            old = self.ctx.texture((w, h), components, alignment=1)
            old.filter = (moderngl.LINEAR, moderngl.LINEAR)
        old.write(pixels.tobytes())
        return old

    def show(self, key: object, image: np.ndarray | None) -> None:
        """Upload `image` ([H,W,3] uint8) unless `key` is already shown; None: none."""
        if key != self._shown:
            self._shown = key
            if image is not None:
                self.image = self._texture(self.image, image, 3)
            self._has_image = image is not None

    def band(self, height: int) -> int:
        return 2 * self.line_px(height) + 16

    def line_px(self, height: int) -> int:
        return max(14, height // 45) + 6

    def set_text(self, lines: tuple[str, str], width: int, height: int) -> None:
        from PIL import Image, ImageDraw

        px = max(14, height // 45)
        if px != self.font_px:
            self.font_px, self.font = px, self._font_cls.load_default(size=px)
        key = (lines, width, height)
        if key == self._text:
            return
        self._text = key
        band = Image.new("RGBA", (width, self.band(height)), PANEL)
        draw = ImageDraw.Draw(band)
        for i, (text, fill) in enumerate(zip(lines, (FG, DIM))):
            draw.text((12, 8 + i * self.line_px(height)), text, font=self.font, fill=fill)
        self.panel = self._texture(self.panel, np.asarray(band), 4)

    def draw(self, target: Any) -> None:
        """The counter band at the top, the picture fitted (aspect kept) below it."""
        w, h = target.size
        target.use()
        target.viewport = (0, 0, w, h)
        self.ctx.clear(*BG, 1.0, viewport=(0, 0, w, h))
        band = self.band(h)
        if self.image is not None and self._has_image:
            iw, ih = self.image.size
            margin = max(8, h // 60)
            aw, ah = max(1, w - 2 * margin), max(1, h - band - 2 * margin)
            s = min(aw / iw, ah / ih)
            dw, dh = max(1, round(iw * s)), max(1, round(ih * s))
            self.image_rect = ((w - dw) // 2, margin + (ah - dh) // 2, dw, dh)
            self._blit(target, self.image, self.image_rect)
        if self.panel is not None:
            self._blit(target, self.panel, (0, h - band, w, band))
        target.viewport = (0, 0, w, h)

    def _blit(self, target: Any, tex: Any, rect: tuple[int, int, int, int]) -> None:
        import moderngl

        target.viewport = rect
        tex.use(0)
        self.vao.render(moderngl.TRIANGLES, vertices=3)

    def release(self) -> None:
        for obj in (self.vao, self.image, self.panel):
            if obj is not None:
                obj.release()
        self.programs.release()


class App:
    """The curate window: keys -> deck, deck -> view. `frame()` is one turn of the loop."""

    def __init__(self, deck: Deck, windowed: bool = False,
                 size: tuple[int, int] = (1280, 800)) -> None:
        import glfw

        self.glfw, self.deck = glfw, deck
        self.keys = {glfw.KEY_LEFT: "reject", glfw.KEY_X: "reject", glfw.KEY_RIGHT: "keep",
                     glfw.KEY_K: "keep", glfw.KEY_UP: "favourite", glfw.KEY_F: "favourite",
                     glfw.KEY_BACKSPACE: "undo", glfw.KEY_U: "undo",
                     glfw.KEY_ESCAPE: "quit", glfw.KEY_Q: "quit"}
        self.window = CurateWindow("passersby curate", fullscreen=not windowed, size=size)
        try:
            self.window.handler = self.on_key
            self.view = View(self.window.ctx)
            w, h = self.window.size
            fit = (max(1, w - 32), max(1, h - self.view.band(h) - 32))
            self.prefetch = Prefetcher([it.path for it in deck.queue], fit)
        except BaseException:
            self.window.close()
            raise
        self.dirty = True
        self._size: tuple[int, int] | None = None

    def on_key(self, key: int) -> None:
        action = self.keys.get(key)
        if action == "quit":
            self.window.request_close()
        elif action == "undo":
            self.deck.undo()
        elif action is not None:
            self.deck.rate({"reject": REJECT, "keep": KEEP, "favourite": FAVOURITE}[action])
        self.dirty = self.dirty or action is not None

    def _lines(self) -> tuple[str, str]:
        item = self.deck.current
        where = item.path.name if item else "all rated: backspace/U to undo, Esc/Q to quit"
        return (self.deck.counter() + (f"   ·   {self.deck.last}" if self.deck.last else ""),
                f"{where}      {HELP}")

    def draw(self) -> None:
        """Draw the current image and the counter into the back buffer."""
        item, image = self.deck.current, None
        while item is not None:
            try:
                image = self.prefetch.get(self.deck.index)
                break
            except Exception as e:  # noqa: BLE001 (any decoder error: say so, go on)
                log.warning("cannot read %s (%s): skipped", item.path, e)
                self.deck.skip(f"unreadable ({type(e).__name__})")
                item = self.deck.current
        self.view.show(self.deck.index if item else None, image)
        w, h = self.window.size
        self.view.set_text(self._lines(), w, h)
        self.view.draw(self.window.fbo)

    def frame(self, wait: float = 0.1) -> None:
        """Wait up to `wait` s for events, then redraw if anything changed."""
        self.glfw.wait_events_timeout(wait)
        if self.dirty or self.window.size != self._size:
            self._size = self.window.size
            self.dirty = False
            self.draw()
            self.window.swap()

    def screenshot(self) -> np.ndarray:
        """What the window shows now: [H,W,3] uint8, top row first."""
        self.draw()
        return self.window.read().copy()

    def loop(self) -> None:
        while not self.window.should_close():
            self.frame()

    def close(self) -> None:
        self.prefetch.close()
        self.window.make_current()
        self.view.release()
        self.window.close()


def run(folder: Path, where: str = "--from", windowed: bool = False,
        size: tuple[int, int] = (1280, 800)) -> dict:
    """Curate `folder` until quit (or until all are rated and quit); returns the counts."""
    items, store = load_items(folder, where)
    deck = Deck(items, store)
    try:
        if deck.current is None:
            log.info("all %d images in %s are rated already", len(items), folder)
        else:
            app = App(deck, windowed, size)
            try:
                app.loop()
            finally:
                app.close()
        return {**deck.counts(), "store": str(store.path)}
    finally:
        store.close()
