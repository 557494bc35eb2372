"""End to end: `passersby render` through EGL to MP4 and to PNGs."""
from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from passersby.cli import main as cli
from passersby.common import config


def read_mp4(path: Path) -> np.ndarray:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])


def test_render_mp4_is_a_moving_framed_portrait(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "clip.mp4"
    rc = cli.main(["render", "--seconds", "2", "--fps", "12", "--size", "160x128",
                   "--out", str(out), "--seed", "0x1234"])
    assert rc == 0 and out.exists()
    assert str(out) in capsys.readouterr().out
    frames = read_mp4(out)
    assert frames.shape == (24, 128, 160, 3)
    centre = frames[:, 40:88, 60:100].astype(np.float32)
    assert centre.std() > 12  # a picture, not a flat field
    assert all(np.abs(centre[k + 1] - centre[k]).mean() > 0.2 for k in range(len(frames) - 1)), \
        "every frame moves"
    mat = np.array(config.LookConfig().mat_color) * 255
    corner = frames[:, :4, :4].reshape(-1, 3).mean(axis=0)
    assert np.abs(corner - mat).max() < 12  # the mat around the portrait (codec tolerance)


def test_render_png_folder_matches_state_resume(tmp_path: Path) -> None:
    out, st = tmp_path / "pngs", tmp_path / "state"
    assert cli.main(["render", "--seconds", "1", "--fps", "4", "--size", "64x64",
                     "--out", str(out), "--state", str(st), "--seed", "77"]) == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 4
    img = np.asarray(Image.open(files[-1]))
    assert img.shape == (64, 64, 3) and img.std() > 5
    from passersby.common import state

    saved = state.load(st)
    assert saved is not None and saved.seed == 77 and saved.step >= 3
    assert cli.main(["render", "--seconds", "1", "--fps", "4", "--size", "64x64",
                     "--out", str(tmp_path / "more"), "--state", str(st)]) == 0
    again = state.load(st)
    assert again.seed == 77 and again.step > saved.step
