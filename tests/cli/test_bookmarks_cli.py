"""`passersby bookmarks`: the state folder's bookmarks, captures and stills, as a table
or JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from passersby.cli import main as cli
from passersby.common import bookmarks, rng
from passersby.common.bookmarks import Bookmark, Store


def add(store: Store, step: int, **kw) -> Bookmark:  # type: ignore[no-untyped-def]
    return store.add(Bookmark(0xFEED, step, rng.normal(0xFEED, step, 100), "ab" * 32,
                              "cd" * 8, **kw))


def test_listing_table_kind_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "state"
    store = Store.in_folder(home)
    add(store, 10, name="the-blue-one", note="hands folded")
    add(store, 20, kind="capture", image="captures/capture-0001.png")
    add(store, 30, kind="still", image="still-0001.png")
    store.close()
    assert cli.main(["bookmarks", "--state", str(home)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "kind", "step", "seed", "created", "image", "note"]
    assert [ln.split()[:4] for ln in lines[1:]] == [
        ["the-blue-one", "bookmark", "10", f"{0xFEED:032x}"],
        ["capture-0001", "capture", "20", f"{0xFEED:032x}"],
        ["still-0001", "still", "30", f"{0xFEED:032x}"]]
    assert lines[1].endswith("hands folded") and "captures/capture-0001.png" in lines[2]
    assert cli.main(["bookmarks", "--state", str(home), "--kind", "capture"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("capture-0001")
    assert cli.main(["bookmarks", "--state", str(home), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["the-blue-one", "capture-0001", "still-0001"]
    assert set(rows[0]) == {"name", "kind", "step", "seed", "created", "image", "note"}
    assert rows[0]["note"] == "hands folded" and rows[0]["image"] == ""
    assert rows[1]["image"] == "captures/capture-0001.png" and rows[2]["step"] == 30
    assert rows[2]["seed"] == f"{0xFEED:032x}" and rows[2]["created"][:2] == "20"


def test_default_state_folder_and_an_empty_one(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "default-state"
    monkeypatch.setenv("STATE_DIRECTORY", str(home))
    assert cli.main(["bookmarks"]) == 0
    assert f"no bookmarks, captures or stills in {home / bookmarks.FILE}" in \
        capsys.readouterr().out
    assert not home.exists()                     # listing creates nothing
    assert cli.main(["bookmarks", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    store = Store.in_folder(home)
    add(store, 5)
    store.close()
    assert cli.main(["bookmarks", "--kind", "still"]) == 0
    assert "no stills in" in capsys.readouterr().out
    assert cli.main(["bookmarks"]) == 0
    assert "bookmark-0001" in capsys.readouterr().out
