"""Persisted state: the edition and its place in the stream, written atomically.

One JSON document, with a schema version and a sha256 of its own payload. A write
goes to a temp file, is fsync'd, replaces the current file (whose previous
generation is kept as state.prev.json) and the directory is fsync'd. A corrupt or
unreadable current file falls back to the previous generation and says so.
The novelty sketches (pictures, sitters) are too big to rewrite every minute: each
has its own append-only file (novelty.py), written before the document; a load keeps
a sketch's records of the steps before the loaded document's step, so they agree.
An unwritable directory never stops the player: it warns once and runs on.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from passersby.common import novelty

log = logging.getLogger(__name__)

SCHEMA = 2
CURRENT, PREVIOUS = "state.json", "state.prev.json"


@dataclass
class State:
    seed: int                   # 128-bit edition seed
    step: int                   # the next step the stream will generate
    skip_to: int                # first step that may be shown after a restart (>= step)
    z: np.ndarray | None        # [nz] f32 latent at `step`
    generator_sha256: str       # tensors hash of the generator that made the stream
    novelty: bytes = b""        # Novelty.to_bytes()
    memory: novelty.Memory | None = None  # the picture sketch: its own file, append-only
    traversal: bytes = b""      # the traversal mode's inner state (Traversal.to_bytes); optional
    sitters: novelty.Memory | None = None  # the sitter sketch: its own file, likewise


def default_dir() -> Path:
    """$STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/passersby, else ~/.local/state/passersby."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "passersby"


def _encode(state: State) -> str:
    payload = {"schema": SCHEMA, "seed": f"{state.seed:032x}", "step": state.step,
               "skip_to": state.skip_to, "generator_sha256": state.generator_sha256,
               "novelty": base64.b64encode(state.novelty).decode(),
               "traversal": base64.b64encode(state.traversal).decode(),
               "z": None if state.z is None else
               base64.b64encode(np.asarray(state.z, "<f4").tobytes()).decode()}
    body = json.dumps(payload, sort_keys=True)
    return json.dumps({"payload": payload,
                       "sha256": hashlib.sha256(body.encode()).hexdigest()}, indent=1)


def _decode(text: str) -> State:
    doc = json.loads(text)
    payload = doc["payload"]
    body = json.dumps(payload, sort_keys=True)
    if hashlib.sha256(body.encode()).hexdigest() != doc["sha256"]:
        raise ValueError("checksum mismatch")
    if payload["schema"] != SCHEMA:
        raise ValueError(f"schema {payload['schema']} (this version reads {SCHEMA})")
    z = payload["z"]
    step, skip_to = _field(payload, "step", int), _field(payload, "skip_to", int)
    if not 0 <= step <= skip_to < 2 ** 62:
        raise ValueError(f"step {str(step)[:20]} / skip_to {str(skip_to)[:20]} out of order")
    seed = int(_field(payload, "seed", str)[:40], 16)
    if not 0 <= seed < 2 ** 128:
        raise ValueError("seed out of range")
    for name in ("generator_sha256", "novelty"):
        _field(payload, name, str)
    if z is not None and not isinstance(z, str):
        raise ValueError(f"z is a {type(z).__name__}, not base64 text")
    return State(seed, step, skip_to,
                 None if z is None else np.frombuffer(base64.b64decode(z), "<f4").copy(),
                 payload["generator_sha256"], base64.b64decode(payload["novelty"]),
                 traversal=base64.b64decode(payload.get("traversal", "")))  # older: none


def _field(payload: dict, name: str, kind: type) -> Any:
    """payload[name] if it has the type the writer gives it (a hand-edited or hostile file
    may hold anything: a bool for a step, a list for the hash)."""
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{name} is a {type(value).__name__}, not {kind.__name__}")
    return value


def load(folder: Path, memory: bool = True) -> State | None:
    """The newest readable generation, or None on a first start; `memory=False` skips
    the novelty sketches (up to 23 MB) for callers that only want the edition or place."""
    for name in (CURRENT, PREVIOUS):
        path = folder / name
        try:
            state = _decode(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
            log.warning("state file %s is unreadable (%s); trying the previous generation",
                        path, e)
            continue
        if name == PREVIOUS and (folder / CURRENT).exists():
            log.warning("resumed from the previous state generation %s", path)
        if memory:
            state.memory = novelty.load_memory(folder, state.step)
            state.sitters = novelty.load_memory(folder, state.step, novelty.SITTERS)
        return state
    return None


class Saver:
    """Writes State to a folder; after a failure it warns once and keeps running."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.failed: str | None = None

    def save(self, state: State) -> bool:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for sketch in (state.memory, state.sitters):  # first: the document must
                if sketch is not None:                     # not claim more than they hold
                    novelty.save_memory(self.folder, sketch)
            tmp = self.folder / (CURRENT + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(_encode(state))
                f.flush()
                os.fsync(f.fileno())
            if (self.folder / CURRENT).exists():
                os.replace(self.folder / CURRENT, self.folder / PREVIOUS)
            os.replace(tmp, self.folder / CURRENT)
            fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            if self.failed is None:
                log.warning("cannot write state to %s (%s); running on in memory: the "
                            "stream's place will not survive a restart until this is fixed",
                            self.folder, e)
            self.failed = str(e)
            return False
        if self.failed:
            log.info("state writes to %s work again", self.folder)
        self.failed = None
        return True
