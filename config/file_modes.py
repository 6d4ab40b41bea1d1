"""Files that hold keys or personal data are created owner-only: files 0600, their directories 0700.

Used for ``.env`` (``python -m config.keygen --write .env``), the SQLite database file and subject-request
export files. Modes are set at creation (``os.open`` with the mode, so there is no window in which the file
is readable by others) and tightened again with ``chmod`` in case the file or directory already existed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    directory = Path(path)
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # not ours (a mounted volume): leave its owner's choice
        os.chmod(directory, DIR_MODE)
    return directory


def open_private(path: str | os.PathLike[str], flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` that creates the file 0600 (and tightens an existing one); returns the descriptor."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    with contextlib.suppress(PermissionError):
        os.fchmod(fd, FILE_MODE)
    return fd


def ensure_private_file(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty and 0600 if it is missing, else tighten it to 0600 (best effort)."""
    target = Path(path)
    if not target.parent.exists():
        private_dir(target.parent)
    os.close(open_private(target, os.O_RDONLY))
