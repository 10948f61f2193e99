"""Where a spec comes from: its git commit and whether its files have uncommitted changes."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitInfo:
    """Attributes: commit (None outside a git repository), dirty (spec files differ from HEAD)."""

    commit: str | None
    dirty: bool

    def to_json(self) -> dict[str, object]:
        return {"git_commit": self.commit, "git_dirty": self.dirty}


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(files: Sequence[Path]) -> GitInfo:
    """The commit of the repository holding files[0], and whether any of `files` is modified or untracked."""
    if not files:
        return GitInfo(None, False)
    cwd = files[0].resolve().parent
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit is None:
        return GitInfo(None, False)
    status = _git(cwd, "status", "--porcelain", "--", *(str(f.resolve()) for f in files))
    return GitInfo(commit, bool(status))
