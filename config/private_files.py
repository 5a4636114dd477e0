"""``DATA_DIR`` is private: the folder 0700, every file in it 0600.

It holds the generated secret key, the demo user's password and the SQLite
database (API tokens, sessions), plus SQLite's ``-wal`` and ``-shm`` files.
SQLite creates those two with the mode of the database file, so creating the
database file 0600 before SQLite opens it is enough; files left by older
versions (created world-readable) are tightened at start-up::

    secure_data_dir(DATA_DIR)                       # settings, before anything is opened
    write_private(DATA_DIR / "secret_key", key)     # created 0600, never readable by others

No Django imports: settings use this module before Django is set up.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def secure_data_dir(path: Path) -> None:
    """Tighten ``path`` to 0700 and the files directly in it to 0600, if it exists.

    It is created (0700) only when something is written into it: a deployment
    with its own SECRET_KEY and database never needs it, and may run on a
    read-only file system."""
    if not path.is_dir():
        return
    _tighten(path, DIRECTORY_MODE)
    for entry in path.iterdir():
        if entry.is_file() and not entry.is_symlink():
            _tighten(entry, FILE_MODE)


def _private_directory(path: Path) -> None:
    if not path.is_dir():
        path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        _tighten(path, DIRECTORY_MODE)  # mkdir's mode passes through the umask


def precreate_private(path: Path) -> None:
    """An empty file at ``path`` with mode 0600, unless one exists (then only tightened)."""
    _private_directory(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        _tighten(path, FILE_MODE)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new or existing file that only its owner can read."""
    _private_directory(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    _tighten(path, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) & ~mode:
            path.chmod(mode)
    except PermissionError:  # not ours (a shared folder): leave it, Django still runs
        pass
