"""The filesystem as a build sees it: writes that are atomic or appended and fsynced, removal, and the OS's
refusals (disk full, read-only, a bad path) turned into a StoreError that says what to do.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

from molspec import atomic
from molspec.diagnostics import PlainError


class StoreError(PlainError):
    """The output directory cannot be used (not ours, another build's, locked, unwritable)."""

    code = "MOL702"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file atomically (text is UTF-8).

    Raises:
        StoreError: the OS refused (disk full, read-only, bad path), with what to do; the old file is kept.
    """
    with _os_errors(path):
        atomic.write_atomic(path, data)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


class _os_errors:
    """Turn the OS's refusals (disk full, read-only, bad path) into a StoreError that says what to do."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, OSError) and not isinstance(exc, BlockingIOError):
            raise StoreError(_os_message(self.root, exc)) from None


def _os_message(root: Path, exc: OSError) -> str:
    where = exc.filename or root
    if exc.errno == errno.ENOSPC:
        return (f"the disk is full while writing {where}. Nothing journalled is lost: free some space and run "
                "the same command again to resume")
    if exc.errno in (errno.ENAMETOOLONG,):
        return f"--out {root}: the path is too long for the filesystem; choose a shorter --out"
    if exc.errno == errno.ELOOP:
        return f"--out {root}: a symbolic link loop in the path; choose another --out"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"--out {root}: a part of the path is a file, not a folder; choose another --out"
    if exc.errno == errno.ENOENT:
        return f"cannot create {where}: {exc.strerror}; choose a folder you can create files in as --out"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {where}: {exc.strerror}; choose a folder you can write to as --out"
    return f"cannot write {where}: {exc.strerror or exc}; choose another --out"
