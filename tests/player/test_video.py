"""Frame writers: MP4 through imageio-ffmpeg, PNG folders, and their errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from passersby.player.video import Mp4Writer, PngFolderWriter, VideoError, open_writer

SIZE = (64, 48)   # W, H


def frames(n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        f[..., 0] = i * 20
        f[:, : SIZE[0] // 2, 1] = 200
        out.append(f)
    return out


def test_mp4_round_trip(tmp_path: Path) -> None:
    import imageio_ffmpeg

    path = tmp_path / "out" / "clip.mp4"
    writer = open_writer(path, SIZE, 30.0)
    assert isinstance(writer, Mp4Writer)
    for f in frames(10):
        writer.write(f)
    assert writer.close() == path
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert tuple(meta["size"]) == SIZE
    decoded = [np.frombuffer(b, np.uint8).reshape(SIZE[1], SIZE[0], 3) for b in reader]
    assert len(decoded) == 10
    assert abs(int(decoded[9][20, 48, 0]) - 180) < 12        # red ramps with the frame index
    assert decoded[0][20, 10, 1] > 180 and decoded[0][20, 50, 1] < 30   # left half green


def test_mp4_needs_even_size(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"65x48 .*even width and height"):
        Mp4Writer(tmp_path / "odd.mp4", (65, 48), 30.0)


def test_mp4_rejects_wrong_frame(tmp_path: Path) -> None:
    with Mp4Writer(tmp_path / "a.mp4", SIZE, 30.0) as writer:
        with pytest.raises(VideoError, match=r"\(48, 64, 3\).*\(10, 10, 3\)"):
            writer.write(np.zeros((10, 10, 3), np.uint8))


def test_png_folder(tmp_path: Path) -> None:
    folder = tmp_path / "stills"
    writer = open_writer(folder, SIZE, 30.0)
    assert isinstance(writer, PngFolderWriter)
    data = frames(3)
    for f in data:
        writer.write(f)
    assert writer.close() == folder
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    assert np.array_equal(np.asarray(Image.open(folder / names[2])), data[2])


def test_existing_folder_with_dot_is_a_png_folder(tmp_path: Path) -> None:
    folder = tmp_path / "night.2024"
    folder.mkdir()
    assert isinstance(open_writer(folder, SIZE, 30.0), PngFolderWriter)


def test_unknown_suffix_names_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"out\.gif: unsupported output '\.gif'.*\.mp4.*folder"):
        open_writer(tmp_path / "out.gif", SIZE, 30.0)


def test_unwritable_destination_fails_at_open(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(VideoError, match=r"a_file/clip\.mp4: cannot write"):
        open_writer(blocker / "clip.mp4", SIZE, 30.0)
    with pytest.raises(VideoError, match=r"a_file/frames: cannot create"):
        open_writer(blocker / "frames", SIZE, 30.0)
