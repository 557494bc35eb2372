"""The one output-folder check (common/folders.py): made, or an error naming the folder,
where it came from and the fix, of the caller's own error type."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from passersby.common.errors import UserError
from passersby.common.folders import writable_folder


class MyError(UserError):
    pass


def test_a_missing_folder_is_made_with_its_parents(tmp_path: Path) -> None:
    got = writable_folder(tmp_path / "a" / "b", "--out")
    assert got == tmp_path / "a" / "b" and got.is_dir()
    assert writable_folder(got, "--out") == got          # an existing folder is fine


def test_a_file_or_an_unmakeable_folder_is_the_callers_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(MyError, match="--out .*afile is a file, not a folder; give a folder "
                                      "for the stills"):
        writable_folder(afile, "--out", MyError, holds="the stills")
    with pytest.raises(MyError, match="cannot create the folder .*; check weights.dir"):
        writable_folder(afile / "sub", "--out", MyError, fix="check weights.dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_folder_says_so(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(UserError, match="is not writable; choose another folder"):
        writable_folder(ro, "--out")
