"""The local side of a push: which files a build publishes, their hashes, and which remote paths a push owns.

A single build publishes the files molspec wrote in it (its owned.json). A variant build publishes one repo:
the group card (README.md, structure.png) and variants.json at the top, and under `<variant>/` each variant's own files
except its README.md (the repo has one card, the group's; its `configs` point into the variants' folders).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from molspec.publish.hub_net import PushError
from molspec.records import MANIFEST, VARIANTS_MANIFEST

README = "README.md"
GROUP_FILES = (README, VARIANTS_MANIFEST, "structure.png")  # what a variant build publishes at its top


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: str  # path in the repo, "/"-separated
    source: Path
    sha256: str
    git_oid: str


def hash_file(path: Path, secret: bytes) -> tuple[str, str, bool]:
    """(sha256, git blob oid, holds the secret): LFS files are compared by sha256, regular ones by oid."""
    size = path.stat().st_size
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    tail, found = b"", False
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(chunk)
            sha1.update(chunk)
            found = found or secret in tail + chunk  # the tail catches a token split across chunks
            tail = chunk[-len(secret) :]
    return sha256.hexdigest(), sha1.hexdigest(), found


def publishable(build_dir: Path) -> Iterable[Path]:
    """The files molspec wrote in the build (its owned.json): data/**, spec/**, README.md, *.png and
    molspec.json among them; never .molspec/, hidden files, or a file of the user's that sits beside them."""
    from molspec.runtime.store import Store

    for rel in Store(build_dir).owned():
        path = build_dir / rel
        if rel.endswith("/") and path.is_dir():
            yield from (p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(build_dir)))
        elif path.is_file() and not _hidden(Path(rel)):
            yield path


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def collect_files(build_dir: Path, secret: str) -> dict[str, LocalFile]:
    """The files a push of one build publishes, keyed by their path in the repo; refuses any that holds `secret`.

    Raises:
        PushError: a file holds the token, or the build has no parquet shard.
    """
    files = _hashed(((s, s.relative_to(build_dir).as_posix()) for s in publishable(build_dir)), secret)
    if not any(p.startswith("data/") and p.endswith(".parquet") for p in files):
        raise PushError(
            f"{build_dir}/data holds no parquet shards, so there is nothing to publish. "
            f"Finish the build (`molspec build SPEC --out {build_dir}` resumes it) and push again."
        )
    return files


def collect_group_files(group_dir: Path, variants: dict[str, Path], secret: str) -> dict[str, LocalFile]:
    """The files a push of a variant build publishes: README.md and variants.json, then each variant's
    publishable files but its own card under `<its path>/`.

    Args:
        variants: each variant's path in the group (its config's folder) -> its build directory.

    Raises:
        PushError: no group card, a variant without parquet shards, or a file that holds the token.
    """
    if not (group_dir / README).is_file():
        raise PushError(f"{group_dir} has no README.md, the card that names each variant's config, so nothing was "
                        f"pushed. `molspec push {group_dir}` writes it (or `molspec build` of the spec again).")
    pairs = [(group_dir / name, name) for name in GROUP_FILES if (group_dir / name).is_file()]
    for folder, build_dir in variants.items():
        pairs += [(s, f"{folder}/{s.relative_to(build_dir).as_posix()}") for s in publishable(build_dir)
                  if s.relative_to(build_dir).as_posix() != README]
    files = _hashed(iter(pairs), secret)
    for folder in variants:
        if not any(p.startswith(f"{folder}/data/") and p.endswith(".parquet") for p in files):
            raise PushError(
                f"{group_dir / folder}/data holds no parquet shards, so variant '{folder}' has nothing to publish "
                "and nothing was pushed. Finish the build (`molspec build SPEC` resumes it) and push again."
            )
    return files


def _hashed(pairs: Iterable[tuple[Path, str]], secret: str) -> dict[str, LocalFile]:
    files = {}
    for source, repo_path in sorted(set(pairs), key=lambda pair: pair[1]):
        sha256, git_oid, leaks = hash_file(source, secret.encode())
        if leaks:
            raise PushError(
                f"{source} contains the Hub token this push would use, so nothing was pushed. "
                "Remove the token from the spec or engine options (read it from the environment instead), "
                "rebuild, and push again; consider revoking the token."
            )
        files[repo_path] = LocalFile(repo_path, source, sha256, git_oid)
    return files


def build_folders(paths: Iterable[str]) -> frozenset[str]:
    """Top-level folders that hold a build (a `<folder>/molspec.json`): the variants of a variant build."""
    return frozenset(p.split("/")[0] for p in paths if p.count("/") == 1 and p.endswith("/" + MANIFEST))


def managed(path: str, builds: frozenset[str] = frozenset()) -> bool:
    """Remote paths a push owns (it deletes them when the build no longer has them): a build's own files at the
    top, variants.json, and the same files inside each folder of `builds`."""
    folder, _, rest = path.partition("/")
    if rest and folder in builds:
        return managed(rest)
    return (
        path.startswith(("data/", "spec/"))
        or path in (README, MANIFEST, VARIANTS_MANIFEST)
        or ("/" not in path and path.endswith(".png"))
    )
