"""Frame writers for offscreen renders: an MP4 file or a folder of PNGs.

Both take frames as [H,W,3] uint8, top row first (what Offscreen.read returns):
`write(frame)` then `close() -> Path`. Destinations are checked at open time, so a
bad path fails before hours of rendering, not after.
"""
from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from passersby.common import png
from passersby.common.errors import UserError
from passersby.common.folders import writable_folder

log = logging.getLogger(__name__)

MP4_CRF = 17                 # x264 constant quality: visually transparent for art
MP4_PRESET = "medium"
PNG_COMPRESS_LEVEL = 3       # fast enough for overnight renders, still compact


class VideoError(UserError, RuntimeError):
    """A destination cannot be written; the message names the path and the fix."""


class FrameWriter(Protocol):
    def write(self, frame: np.ndarray) -> None: ...
    def close(self) -> Path: ...


def _check_frame(frame: np.ndarray, size: tuple[int, int] | None, dest: Path) -> None:
    ok = (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3
          and frame.shape[2] == 3 and (size is None or frame.shape[:2] == (size[1], size[0])))
    if not ok:
        got = (f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray)
               else type(frame).__name__)
        want = f"({size[1]}, {size[0]}, 3)" if size else "(H, W, 3)"
        raise VideoError(f"{dest}: frame must be uint8 of shape {want}, got {got}")


class _Closing:
    """A writer as a context manager: closed on leaving the block."""

    def close(self) -> Path:
        raise NotImplementedError

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Mp4Writer(_Closing):
    """H.264 (libx264, yuv420p) MP4 through imageio-ffmpeg's bundled ffmpeg."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float) -> None:
        import imageio_ffmpeg  # imported here: importing passersby.player.video stays cheap

        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        if self.size[0] % 2 or self.size[1] % 2 or min(self.size) < 2:
            raise VideoError(f"{self.path}: video size {self.size[0]}x{self.size[1]} cannot "
                             f"be encoded as yuv420p; use an even width and height "
                             f"(e.g. {self.size[0] + self.size[0] % 2}x"
                             f"{self.size[1] + self.size[1] % 2})")
        if not fps > 0:
            raise VideoError(f"{self.path}: fps {fps!r} must be > 0")
        _touch(self.path)
        self.frames = 0
        self._gen: Generator | None = imageio_ffmpeg.write_frames(
            str(self.path), self.size, fps=float(fps), codec="libx264",
            pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=None, macro_block_size=1,
            output_params=["-crf", str(MP4_CRF), "-preset", MP4_PRESET,
                           "-vf", "scale=out_color_matrix=bt709",
                           "-colorspace", "bt709", "-color_primaries", "bt709",
                           "-color_trc", "bt709", "-movflags", "+faststart"])
        try:
            self._gen.send(None)               # starts ffmpeg now, so errors show here
        except Exception as e:
            self._gen = None
            raise VideoError(f"{self.path}: could not start ffmpeg ({e})") from None

    def write(self, frame: np.ndarray) -> None:
        if self._gen is None:
            raise VideoError(f"{self.path}: write() after close()")
        _check_frame(frame, self.size, self.path)
        try:
            self._gen.send(np.ascontiguousarray(frame))
        except (OSError, RuntimeError, StopIteration) as e:
            raise VideoError(f"{self.path}: ffmpeg stopped after {self.frames} frames ({e}); "
                             f"check free disk space") from None
        self.frames += 1

    def close(self) -> Path:
        if self._gen is not None:
            self._gen.close()
            self._gen = None
            log.info("wrote %d frames to %s", self.frames, self.path)
        return self.path


class PngFolderWriter(_Closing):
    """frame_000000.png, frame_000001.png, ... in a folder (made if missing)."""

    def __init__(self, folder: str | Path, size: tuple[int, int] | None = None) -> None:
        self.path = Path(folder)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        writable_folder(self.path, "--out", VideoError, holds="the frames")
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        _check_frame(frame, self.size, self.path)
        target = self.path / f"frame_{self.frames:06d}.png"
        try:  # atomic (no half frame under its name), not fsync'd: the rate matters here
            png.write_png(target, frame, compress_level=PNG_COMPRESS_LEVEL, fsync=False)
        except OSError as e:
            raise VideoError(f"{target}: cannot write ({e}); check free disk space") from None
        self.frames += 1

    def close(self) -> Path:
        log.info("wrote %d PNG frames to %s", self.frames, self.path)
        return self.path


def _touch(path: Path) -> None:
    """Create the file (and its folder) now, so an unwritable path fails at open."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb"):
            pass
    except OSError as e:
        raise VideoError(f"{path}: cannot write the video file ({e.strerror}); choose a "
                         f"writable location") from None


def open_writer(path: str | Path, size: tuple[int, int], fps: float) -> FrameWriter:
    """`.mp4` -> Mp4Writer; an existing folder or a name without suffix -> PNG folder."""
    path = Path(path)
    if path.suffix.lower() == ".mp4":
        return Mp4Writer(path, size, fps)
    if path.is_dir() or path.suffix == "":
        return PngFolderWriter(path, size)
    raise VideoError(f"{path}: unsupported output {path.suffix!r}; give a .mp4 file or a "
                     f"folder (an existing one, or a name without a suffix) for PNG frames")
