"""Shader sources: load, expand `#include`, map driver errors back to file:line.

A pass is named like its fragment shader (`present` -> shaders/present.frag) and
drawn with shaders/fullscreen.vert. `#include "lib/x.glsl"` is expanded
recursively, relative to the shaders directory; every file gets a source-string
number and `#line` directives, so a driver message such as Mesa's
`1:12(3): error: ...` or NVIDIA's `1(12) : error ...` is re-raised as a
ShaderError naming `shaders/lib/x.glsl:12`.

`ProgramCache` builds programs by pass name and, on `reload()`, keeps the last
good program of a pass whose new source fails (the error is returned and logged
once), so a broken edit during live tuning never takes the picture away.

No GL work happens at import time; only `ProgramCache` methods touch the context.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import moderngl

from passersby.common.errors import NotUtf8, UserError, utf8

log = logging.getLogger(__name__)

DEFAULT_SHADER_DIR = Path(__file__).resolve().parents[3] / "shaders"
VERTEX_SHADER = "fullscreen.vert"
PASSES = ("upsample", "painterly", "grade", "present", "structure", "detail", "craquelure")

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*(//.*)?$')
_INCLUDE_ANY = re.compile(r"^\s*#\s*include\b")
_VERSION = re.compile(r"^\s*#\s*version\b")
# Driver message formats: (source string, line) and the rest of the message.
_DRIVER_LINE = (
    re.compile(r"^\s*(?P<src>\d+):(?P<line>\d+)\(\d+\):\s*(?P<msg>.*)$"),       # Mesa
    re.compile(r"^\s*(?P<src>\d+)\((?P<line>\d+)\)\s*:\s*(?P<msg>.*)$"),         # NVIDIA
    re.compile(r"^\s*(?:ERROR|WARNING):\s*(?P<src>\d+):(?P<line>\d+):\s*(?P<msg>.*)$"),  # AMD/Intel
)


class ShaderError(UserError, RuntimeError):
    """A shader failed to load, compile or link; the message names file:line."""


@dataclass(frozen=True)
class ShaderSource:
    """An expanded shader: the text sent to the driver and the files it came from.

    `files[i]` is the file whose lines carry source-string number i in `#line`.
    """
    path: Path
    text: str
    files: tuple[Path, ...]

    def map_message(self, message: str) -> str:
        """Rewrite driver error lines to `file:line: message`; others pass through."""
        return "\n".join(self._map_line(line) for line in message.splitlines())

    def _map_line(self, line: str) -> str:
        for pattern in _DRIVER_LINE:
            m = pattern.match(line)
            if m and int(m["src"]) < len(self.files):
                where = _display_path(self.files[int(m["src"])])
                return f"{where}:{m['line']}: {m['msg'].strip()}"
        return line


def _display_path(path: Path) -> str:
    """Relative to the working directory when below it (e.g. shaders/present.frag)."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def load_source(path: Path, shader_dir: Path | None = None) -> ShaderSource:
    """Read `path`, expand includes (relative to `shader_dir`), add `#line` directives."""
    shader_dir = Path(shader_dir or DEFAULT_SHADER_DIR).resolve()
    path = Path(path)
    if not path.is_absolute():
        path = shader_dir / path
    files: list[Path] = []
    out: list[str] = []
    _expand(path.resolve(), shader_dir, files, out, stack=(), origin=None)
    return ShaderSource(path=path.resolve(), text="\n".join(out) + "\n", files=tuple(files))


MAX_SHADER_BYTES = 1 << 20   # a pass is a few KB


def _read(path: Path, origin: str | None) -> str:
    """The text of a shader file; anything that is not a readable, bounded UTF-8 text
    without NUL (a binary saved over it, a half-written file) is a ShaderError."""
    where = f"{origin}: " if origin else ""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SHADER_BYTES + 1)
    except OSError as e:
        raise ShaderError(f"{where}cannot read shader file {_display_path(path)} "
                          f"({e.strerror}); check the name and the shaders directory") from None
    try:
        text = utf8(raw)
    except NotUtf8 as e:
        raise ShaderError(f"{where}{_display_path(path)}:{e.line}: not UTF-8 text (byte "
                          f"{e.byte:#04x}); is a binary file saved in its place?") from None
    if len(raw) > MAX_SHADER_BYTES or "\x00" in text:
        raise ShaderError(f"{where}{_display_path(path)}: "
                          + ("larger than 1 MiB" if len(raw) > MAX_SHADER_BYTES
                             else "holds NUL bytes")
                          + "; a shader is GLSL text")
    return text


def _expand(path: Path, shader_dir: Path, files: list[Path], out: list[str],
            stack: tuple[Path, ...], origin: str | None) -> None:
    if path in stack:
        chain = " -> ".join(_display_path(p) for p in (*stack, path))
        raise ShaderError(f"{origin}: include cycle {chain}; remove one of these #includes")
    text = _read(path, origin)
    index = len(files)
    files.append(path)
    lines = text.splitlines()
    if not stack:
        # `#version` must come first: keep it (and anything before it) then number.
        for i, line in enumerate(lines):
            if _VERSION.match(line):
                out.extend(lines[: i + 1])
                lines, first = lines[i + 1:], i + 2
                break
        else:
            first = 1
    else:
        first = 1
    out.append(f"#line {first} {index}")
    for number, line in enumerate(lines, start=first):
        here = f"{_display_path(path)}:{number}"
        m = _INCLUDE.match(line)
        if m is None and _INCLUDE_ANY.match(line):
            raise ShaderError(f'{here}: malformed include {line.strip()!r}; '
                              f'write #include "lib/name.glsl"')
        if m is None:
            out.append(line)
            continue
        target = (shader_dir / m[1]).resolve()
        if not target.is_file():
            raise ShaderError(f"{here}: included file {m[1]!r} not found "
                              f"(looked for {_display_path(target)}); includes are "
                              f"relative to the shaders directory {_display_path(shader_dir)}")
        _expand(target, shader_dir, files, out, (*stack, path), here)
        out.append(f"#line {number + 1} {index}")


@dataclass
class _Built:
    program: moderngl.Program
    key: tuple[str, str]    # expanded (vertex, fragment) text it was built from


class ProgramCache:
    """Programs by pass name; `reload()` keeps the last good one when an edit fails."""

    def __init__(self, ctx: moderngl.Context, shader_dir: Path | None = None) -> None:
        self.ctx = ctx
        self.shader_dir = Path(shader_dir or DEFAULT_SHADER_DIR).resolve()
        if not self.shader_dir.is_dir():
            raise ShaderError(f"shaders directory {self.shader_dir} does not exist; "
                              f"pass shader_dir= or restore the project's shaders/ folder")
        self._built: dict[str, _Built] = {}
        self.errors: dict[str, str] = {}   # pass -> latest error (kept program in use)

    def __contains__(self, name: str) -> bool:
        return name in self._built

    def get(self, name: str) -> moderngl.Program:
        """The program of pass `name`, built on first use (raises ShaderError)."""
        built = self._built.get(name)
        if built is None:
            built = self._build(name)
            self._built[name] = built
        return built.program

    def _sources(self, name: str) -> tuple[ShaderSource, ShaderSource]:
        frag = self.shader_dir / f"{name}.frag"
        if not frag.is_file():
            known = sorted(p.stem for p in self.shader_dir.glob("*.frag"))
            raise ShaderError(f"no shader for pass {name!r}: {_display_path(frag)} is "
                              f"missing (passes found: {known})")
        return (load_source(self.shader_dir / VERTEX_SHADER, self.shader_dir),
                load_source(frag, self.shader_dir))

    def _build(self, name: str) -> _Built:
        vert, frag = self._sources(name)
        try:
            program = self.ctx.program(vertex_shader=vert.text, fragment_shader=frag.text)
        except (moderngl.Error, ValueError, TypeError) as e:
            raise ShaderError(_explain(name, str(e), vert, frag)) from None
        return _Built(program, (vert.text, frag.text))

    def reload(self) -> list[str]:
        """Rebuild every built pass whose sources changed. Returns the error messages.

        A pass that fails keeps its last good program; its error is logged once
        (until the source changes again) and returned on every call while it lasts.
        """
        errors: list[str] = []
        for name, old in list(self._built.items()):
            try:
                vert, frag = self._sources(name)
                if (vert.text, frag.text) == old.key:  # unchanged, or back to the good text
                    if self.errors.pop(name, None) is not None:
                        log.info("shader pass %s is back to its good program", name)
                    continue
                self._built[name] = self._build(name)
                old.program.release()
                if self.errors.pop(name, None) is not None:
                    log.info("shader pass %s fixed and reloaded", name)
                else:
                    log.info("shader pass %s reloaded", name)
            except ShaderError as e:
                message = str(e)
                if self.errors.get(name) != message:
                    log.error("shader pass %s failed to reload, keeping the last good "
                              "program:\n%s", name, message)
                self.errors[name] = message
                errors.append(message)
        return errors

    def release(self) -> None:
        for built in self._built.values():
            built.program.release()
        self._built.clear()


def _explain(name: str, message: str, vert: ShaderSource, frag: ShaderSource) -> str:
    """Map a moderngl compile/link message to file:line using the stage it names."""
    stage = frag
    mapped: list[str] = []
    for line in message.splitlines():
        low = line.strip().lower()
        if low in ("vertex_shader", "fragment_shader"):
            stage = vert if low == "vertex_shader" else frag
        elif low and low != "glsl compiler failed" and set(low) != {"="}:
            mapped.append(stage.map_message(line))
    return f"shader pass {name!r} failed to build:\n" + "\n".join(mapped)
