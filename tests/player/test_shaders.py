"""Shader loading: every pass builds; includes, cycles and driver errors map to file:line."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import moderngl
import pytest

from passersby.player.render.shaders import (
    DEFAULT_SHADER_DIR,
    PASSES,
    ProgramCache,
    ShaderError,
    ShaderSource,
    load_source,
)


@pytest.fixture(scope="module")
def ctx() -> moderngl.Context:
    from passersby.player.display import DisplayError, standalone_context

    try:
        context = standalone_context()
    except DisplayError as e:
        pytest.skip(f"no headless GL here: {e}")
    yield context
    context.release()


@pytest.fixture()
def shader_dir(tmp_path: Path) -> Path:
    """A private copy of the project's shaders/ to break."""
    target = tmp_path / "shaders"
    shutil.copytree(DEFAULT_SHADER_DIR, target)
    return target


def _insert(path: Path, line_no: int, text: str) -> None:
    """Insert `text` so that it becomes line `line_no` (1-based) of `path`."""
    lines = path.read_text().splitlines()
    lines.insert(line_no - 1, text)
    path.write_text("\n".join(lines) + "\n")


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln)


def test_default_dir_is_the_repo_shaders() -> None:
    assert DEFAULT_SHADER_DIR == Path(__file__).resolve().parents[2] / "shaders"
    assert (DEFAULT_SHADER_DIR / "fullscreen.vert").is_file()


def test_every_pass_compiles_and_links(ctx: moderngl.Context) -> None:
    cache = ProgramCache(ctx)
    frags = sorted(p.stem for p in DEFAULT_SHADER_DIR.glob("*.frag"))
    assert set(PASSES) <= set(frags)
    for name in frags:
        assert isinstance(cache.get(name), moderngl.Program), name
    cache.release()


def test_includes_expand_with_line_directives() -> None:
    src = load_source("present.frag")
    assert "#include" not in src.text
    assert src.text.startswith("#version 330 core\n#line 2 0\n")
    names = [p.name for p in src.files]
    assert names[0] == "present.frag" and "noise.glsl" in names and "color.glsl" in names


def test_syntax_error_in_main_file_after_includes(ctx: moderngl.Context, shader_dir: Path) -> None:
    frag = shader_dir / "present.frag"
    line = _line_of(frag, "out vec4 color;") + 1       # below both #include lines
    _insert(frag, line, "float oops = ;")
    with pytest.raises(ShaderError, match=rf"present\.frag:{line}: .*error"):
        ProgramCache(ctx, shader_dir).get("present")


def test_syntax_error_in_included_file(ctx: moderngl.Context, shader_dir: Path) -> None:
    _insert(shader_dir / "lib" / "color.glsl", 4, "vec3 broken( {")
    with pytest.raises(ShaderError, match=r"lib/color\.glsl:4: .*error"):
        ProgramCache(ctx, shader_dir).get("grade")


def test_missing_include_names_the_including_line(ctx: moderngl.Context, shader_dir: Path) -> None:
    _insert(shader_dir / "grade.frag", 3, '#include "lib/nope.glsl"')
    with pytest.raises(ShaderError,
                       match=r"grade\.frag:3: included file 'lib/nope\.glsl' not found"):
        ProgramCache(ctx, shader_dir).get("grade")


def test_include_cycle_is_detected(ctx: moderngl.Context, shader_dir: Path) -> None:
    (shader_dir / "lib" / "a.glsl").write_text('// a\n#include "lib/b.glsl"\n')
    (shader_dir / "lib" / "b.glsl").write_text('#include "lib/a.glsl"\n')
    _insert(shader_dir / "grade.frag", 3, '#include "lib/a.glsl"')
    with pytest.raises(ShaderError, match=r"lib/b\.glsl:1: include cycle .*a\.glsl"):
        ProgramCache(ctx, shader_dir).get("grade")


def test_unknown_pass_lists_the_known_ones(ctx: moderngl.Context) -> None:
    with pytest.raises(ShaderError, match=r"no shader for pass 'sepia'.*present"):
        ProgramCache(ctx).get("sepia")


def test_missing_shader_dir_is_reported(ctx: moderngl.Context, tmp_path: Path) -> None:
    with pytest.raises(ShaderError, match="does not exist"):
        ProgramCache(ctx, tmp_path / "nowhere")


@pytest.mark.parametrize("message,expected", [
    ("1:12(3): error: `x' undeclared", "b.glsl:12: error: `x' undeclared"),              # Mesa
    ("0(7) : error C0000: syntax error, unexpected ';'", "a.frag:7: error C0000: syntax"),  # NVIDIA
    ("ERROR: 1:5: 'foo' : undeclared identifier", "b.glsl:5: 'foo' : undeclared"),         # AMD
    ("some linker message", "some linker message"),
])
def test_driver_message_formats_map_to_files(message: str, expected: str, tmp_path: Path) -> None:
    src = ShaderSource(tmp_path / "a.frag", "", (tmp_path / "a.frag", tmp_path / "lib" / "b.glsl"))
    assert expected in src.map_message(message)


def test_reload_keeps_the_last_good_program(ctx: moderngl.Context, shader_dir: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    cache = ProgramCache(ctx, shader_dir)
    good = cache.get("grade")
    assert cache.reload() == [] and cache.get("grade") is good      # unchanged: no rebuild
    frag = shader_dir / "grade.frag"
    original = frag.read_text()
    frag.write_text(original.replace("color = vec4(c, 1.0);", "color = vec4(c, 1.0)"))
    with caplog.at_level(logging.ERROR):
        errors = cache.reload()
        again = cache.reload()
    assert len(errors) == 1 and "grade.frag:" in errors[0]
    assert again == errors                                           # still broken, still said
    assert sum("failed to reload" in r.message for r in caplog.records) == 1   # logged once
    assert cache.get("grade") is good                                # last good kept
    frag.write_text(original.replace("1.0 / gamma", "1.0 / max(gamma, 0.2)"))
    assert cache.reload() == []
    assert cache.get("grade") is not good and "grade" not in cache.errors
    cache.release()


@pytest.mark.parametrize("content", [bytes(range(256)) * 40, b"\x7fELF\x02\x01\x01\x00" * 100,
                                     b"void main() {}\x00\x00", b"//" + b"x" * (1 << 21)])
def test_an_unreadable_shader_keeps_the_last_good_program(ctx: moderngl.Context,
                                                          shader_dir: Path,
                                                          content: bytes) -> None:
    """Issue 16, class 8: a binary (or NUL-holding, or huge) file saved over a shader, or
    over an included one, while tuning: one ShaderError naming the file, last good kept."""
    cache = ProgramCache(ctx, shader_dir)
    good = cache.get("grade")
    for name in ("grade.frag", "lib/color.glsl"):
        path = shader_dir / name
        if not path.exists():
            continue
        original = path.read_bytes()
        path.write_bytes(content)
        errors = cache.reload()
        assert len(errors) == 1 and name.split("/")[-1] in errors[0], errors
        assert cache.get("grade") is good
        path.write_bytes(original)
        assert cache.reload() == [] and cache.get("grade") is good
    cache.release()
