"""Bookmarks, captures and ratings: one SQLite file in the state folder (sqlite3).

A bookmark is everything needed to return exactly to a picture: the stream seed,
the step, the latent z there (the picture is G(z)), the generator's tensors hash,
the traversal's extra state (JSON, e.g. an orbit's bodies), and a digest of the
configuration that was playing. A capture is a bookmark with the PNG saved beside
it; a batch still likewise. Ratings (curation) refer to an image file and keep its
latent, so a taste can be learnt from them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from passersby.common import state
from passersby.common.errors import UserError

FILE = "passersby.sqlite"
KINDS = ("bookmark", "capture", "still")
SCHEMA = """
CREATE TABLE IF NOT EXISTS bookmarks (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, created REAL NOT NULL,
    seed TEXT NOT NULL, step INTEGER NOT NULL, z BLOB NOT NULL,
    generator_sha256 TEXT NOT NULL, config_digest TEXT NOT NULL,
    traversal TEXT NOT NULL DEFAULT '{}', image TEXT, note TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS ratings (
    image TEXT PRIMARY KEY, rating INTEGER NOT NULL, z BLOB NOT NULL, rated REAL NOT NULL);
"""


class BookmarkError(UserError):
    """A missing bookmark or an unusable bookmark file."""


@dataclass
class Bookmark:
    seed: int
    step: int
    z: np.ndarray                 # [nz] f32
    generator_sha256: str
    config_digest: str
    kind: str = "bookmark"
    name: str = ""                # empty: the store names it
    traversal: dict = dataclasses.field(default_factory=dict)
    image: str | None = None
    note: str = ""
    created: float = 0.0

    def to_state(self) -> state.State:
        """A saved place that resumes the stream exactly here (its first frame is G(z))."""
        return state.State(self.seed, self.step, self.step, self.z.astype(np.float32),
                           self.generator_sha256)


def config_digest(cfg: object) -> str:
    """sha256 of the configuration's values (canonical JSON), first 16 hex digits."""
    from passersby.common.config import to_dict

    body = json.dumps(to_dict(cfg), sort_keys=True, default=str)  # type: ignore[arg-type]
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise BookmarkError(f"cannot open the bookmark file {path} ({e}); check that its "
                                "folder is writable, or pass another --state") from e

    @classmethod
    def in_folder(cls, folder: Path) -> Store:
        return cls(folder / FILE)

    def add(self, bm: Bookmark) -> Bookmark:
        if bm.kind not in KINDS:
            raise ValueError(f"bookmark kind {bm.kind!r} not one of {KINDS}")
        bm = dataclasses.replace(bm, created=bm.created or time.time())
        if not bm.name:
            n = self.db.execute("SELECT COUNT(*) FROM bookmarks WHERE kind = ?",
                                (bm.kind,)).fetchone()[0]
            while True:
                n += 1
                name = f"{bm.kind}-{n:04d}"
                if not self.db.execute("SELECT 1 FROM bookmarks WHERE name = ?",
                                       (name,)).fetchone():
                    break
            bm = dataclasses.replace(bm, name=name)
        try:
            self.db.execute(
                "INSERT INTO bookmarks VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (bm.name, bm.kind, bm.created, f"{bm.seed:032x}", bm.step,
                 np.asarray(bm.z, "<f4").tobytes(), bm.generator_sha256, bm.config_digest,
                 json.dumps(bm.traversal), bm.image, bm.note))
        except sqlite3.IntegrityError as e:
            raise BookmarkError(f"a bookmark named {bm.name!r} exists already in {self.path}; "
                                "choose another name") from e
        return bm

    def get(self, name: str) -> Bookmark:
        row = self.db.execute("SELECT * FROM bookmarks WHERE name = ?", (name,)).fetchone()
        if row is None:
            names = [r[0] for r in self.db.execute(
                "SELECT name FROM bookmarks ORDER BY created DESC LIMIT 8")]
            raise BookmarkError(f"no bookmark {name!r} in {self.path} (recent: "
                                f"{', '.join(names) or 'none'}); `passersby bookmarks` lists them")
        return _row(row)

    def list(self, kind: str | None = None) -> list[Bookmark]:
        q = "SELECT * FROM bookmarks" + (" WHERE kind = ?" if kind else "") + " ORDER BY created"
        return [_row(r) for r in self.db.execute(q, (kind,) if kind else ())]

    def steps(self, kind: str) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT step FROM bookmarks WHERE kind = ?",
                                              (kind,))}

    def rate(self, image: str, rating: int, z: np.ndarray) -> None:
        self.db.execute("INSERT OR REPLACE INTO ratings VALUES (?,?,?,?)",
                        (image, int(rating), np.asarray(z, "<f4").tobytes(), time.time()))

    def worlds_rated(self) -> set[str]:
        """The generators (tensors_sha256) of the rated images whose bookmark is known
        (stills and captures carry one; other images rated from a folder do not)."""
        rows = self.db.execute("SELECT DISTINCT b.generator_sha256 FROM ratings r "
                               "JOIN bookmarks b ON b.image = r.image").fetchall()
        return {r[0] for r in rows}

    def unrate(self, image: str) -> None:
        self.db.execute("DELETE FROM ratings WHERE image = ?", (image,))

    def ratings(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(images, ratings [N] int, latents [N,nz] f32)."""
        rows = self.db.execute("SELECT image, rating, z FROM ratings ORDER BY rated").fetchall()
        if not rows:
            return [], np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return ([r[0] for r in rows], np.array([r[1] for r in rows], np.int64),
                np.stack([np.frombuffer(r[2], "<f4") for r in rows]))

    def close(self) -> None:
        self.db.close()


def _row(r: tuple) -> Bookmark:
    return Bookmark(int(r[3], 16), r[4], np.frombuffer(r[5], "<f4").copy(), r[6], r[7],
                    kind=r[1], name=r[0], traversal=json.loads(r[8]), image=r[9], note=r[10],
                    created=r[2])
