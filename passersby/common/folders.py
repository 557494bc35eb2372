"""The one check of an output folder: made if missing, writable, or a UserError naming
the folder, where it came from (a flag, a config key) and the fix; and what a plain file
name is (a manifest's file inside its own package folder)."""
from __future__ import annotations

import os
from pathlib import Path

from passersby.common.errors import UserError


def writable_folder(path: Path, where: str, error: type[UserError] = UserError,
                    holds: str = "the output",
                    fix: str = "choose a writable location") -> Path:
    """`path` made (with its parents) and writable by this process, or `error`.

    `where`: what named it (e.g. "--out"); `holds`: what the folder is for, said when
    `path` is a file; `fix`: what to do when it cannot be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise error(f"{where} {path} is a file, not a folder; give a folder for {holds}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise error(f"{where} {path}: cannot create the folder ({e.strerror}); {fix}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise error(f"{where} {path} is not writable; choose another folder or fix its "
                    f"permissions")
    return path


def is_file_name(name: str) -> bool:
    """True for a plain file name (no folder, no "." or "..", no backslash): what a
    manifest may name inside its own package folder."""
    return name not in ("", ".", "..") and Path(name).name == name and "\\" not in name
