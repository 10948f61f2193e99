"""Reading the files a spec names (the spec, its imports, its sources) without trusting them.

A path may be too long, hold a NUL, loop through symlinks, or name a directory, a device or a FIFO
(`/dev/zero` never ends; opening a FIFO waits for a writer). Each case becomes a `FileProblem` of a
known kind, which the caller turns into its own diagnostic; nothing here raises an OSError.
"""

from __future__ import annotations

import enum
import errno
import os
import re
import stat
from pathlib import Path

MAX_SPEC_BYTES = 4 << 20  # a spec or an imported file
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux
MAX_NAME_BYTES = 255  # NAME_MAX: one component of a path
BOM = "\ufeff"


class Problem(enum.Enum):
    MISSING = "missing"
    DIRECTORY = "directory"
    SPECIAL = "special"  # a device, FIFO or socket
    TOO_LARGE = "too large"
    BAD_PATH = "bad path"  # too long, a NUL, a symlink loop
    UNREADABLE = "unreadable"  # permissions and other OS errors


class FileProblem(Exception):
    """Why a file cannot be read: `kind`, and a one-line `message` that names the path as shown."""

    def __init__(self, kind: Problem, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.help = kind, message, help


def check_path(path: str, shown: str) -> None:
    """Refuse a path the OS cannot take, before touching the file system."""
    if "\x00" in path:
        raise FileProblem(Problem.BAD_PATH, f"the path {shown!r} contains a NUL character",
                          help="a path cannot contain NUL; check how it was written or generated")
    raw = os.fsencode(path) if _encodable(path) else path.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_PATH_BYTES:
        raise FileProblem(Problem.BAD_PATH, f"a path of {len(raw):,} bytes is too long (the limit is "
                          f"{MAX_PATH_BYTES:,})", help="use a shorter path")
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > MAX_NAME_BYTES:
        raise FileProblem(Problem.BAD_PATH, f"a file or folder name of {len(longest):,} bytes is too long "
                          f"(the limit is {MAX_NAME_BYTES})", help="use a shorter file name")


def _encodable(path: str) -> bool:
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        return False
    return True


def resolved(path: Path) -> Path:
    """The absolute path with symlinks followed, or just made absolute when that fails (a symlink
    loop, a NUL): opening it then reports the problem."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(path))


def open_regular(path: Path, shown: str) -> int:
    """A read-only descriptor of a regular file (the caller closes it).

    Raises:
        FileProblem: any reason it cannot be opened, or it is not a regular file.
    """
    check_path(str(path), shown)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _os_problem(exc, shown) from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        os.set_blocking(fd, True)
        return fd
    os.close(fd)
    if stat.S_ISDIR(mode):
        raise FileProblem(Problem.DIRECTORY, f"{shown} is a directory, not a file")
    raise FileProblem(Problem.SPECIAL, f"{shown} is {_special_kind(mode)}, not a regular file",
                      help="molspec reads regular files only; copy the data into a file first")


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "a special file"


def _os_problem(exc: OSError, shown: str) -> FileProblem:
    if exc.errno == errno.ENOENT:
        return FileProblem(Problem.MISSING, f"no such file: {shown}")
    if exc.errno == errno.EISDIR:
        return FileProblem(Problem.DIRECTORY, f"{shown} is a directory, not a file")
    if exc.errno == errno.ELOOP:
        return FileProblem(Problem.BAD_PATH, f"{shown}: too many levels of symbolic links (a symlink loop?)",
                           help="point the path at the real file")
    if exc.errno == errno.ENAMETOOLONG:
        return FileProblem(Problem.BAD_PATH, f"{shown}: the path is too long", help="use a shorter path")
    if exc.errno == errno.ENOTDIR:
        return FileProblem(Problem.MISSING, f"no such file: {shown} (a part of the path is a file, not a folder)")
    return FileProblem(Problem.UNREADABLE, f"cannot read {shown}: {exc.strerror or type(exc).__name__}")


def read_capped(path: Path, shown: str, limit: int = MAX_SPEC_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    Raises:
        FileProblem: as `open_regular`, or the file is larger than `limit`.
    """
    fd = open_regular(path, shown)
    try:
        with os.fdopen(fd, "rb", closefd=True) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise _os_problem(exc, shown) from None
    if len(data) > limit:
        raise FileProblem(Problem.TOO_LARGE, f"{shown} is larger than {limit:,} bytes",
                          help="a spec this large is not a spec; check the path")
    return data


def strip_bom(text: str) -> str:
    """Text without a leading UTF-8 byte order mark (some Windows editors write one)."""
    return text[1:] if text.startswith(BOM) else text


def spec_text(text: str) -> str:
    """Text as the parser and the diagnostics see it: no byte order mark, and a lone CR (old Mac line
    ends) read as a line end, since lines end at "\\n" everywhere in molspec."""
    text = strip_bom(text)
    return _LONE_CR.sub("\n", text) if "\r" in text else text


_LONE_CR = re.compile(r"\r(?!\n)")


def is_spec_path(path: str) -> bool:
    return path.lower().endswith(".mol")
