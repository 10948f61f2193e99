"""The one way molspec writes a file: to a temporary file beside it, fsynced, then renamed over it.

A reader (or a killed process) sees the old file or the new one, never half of one. The temporary name
is the writer's own (`.NAME.<pid>-<random>.tmp`): two processes writing one file at once each rename a
whole file and the last one wins; temporary files of writers that were killed are swept on the next write.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: Path, replace: bool = True) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to; fsynced and renamed over `path` when the block
    succeeds, removed when it fails (a disk-full write leaves no stray file). With `replace` off it is
    hard-linked to `path` instead, which (unlike a rename) refuses to replace an existing name:
    FileExistsError, also when another writer created `path` first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        fsync_file(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            tmp.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file atomically (text is UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def create_atomic(path: Path, data: bytes | str) -> None:
    """Write a new file atomically, never replacing one: the whole file appears under `path` or nothing does.

    Raises:
        FileExistsError: `path` exists (also when another process created it first).
        NotADirectoryError: a folder above `path` is a file.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir's word for "a file is in the way": not the FileExistsError callers catch
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent)) from None
    with atomic_path(path, replace=False) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a power cut after it then keeps the new name)."""
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsynced
        fsync_file(path)


def _sweep(path: Path) -> None:
    """Remove the temporary files of `path` that killed writers left (their process is gone)."""
    prefix = f".{path.name}."
    for tmp in path.parent.glob(glob.escape(prefix) + "*tmp"):
        pid = tmp.name[len(prefix):].split("-")[0]
        if tmp.name == f"{prefix}tmp" or (pid.isdigit() and not _alive(int(pid))):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, and is another user's
    return True
