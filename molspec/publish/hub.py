"""Push a build directory to a Hugging Face Hub dataset repo: one commit, one tag, idempotent, schema-safe.

`push()` compares the build with the remote first (sha256 / git oids of every file) and only then writes:
nothing at all when the remote already has these files and the tag, otherwise a single commit with every
changed file (stale shards deleted) followed by the tag. Each attempt re-reads the remote, so a retry after a
lost response converges instead of committing twice. The token never leaves `HfApi`: it is not logged,
printed, written, or put into any error message.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, HfFileSystem, get_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

log = logging.getLogger(__name__)

REPO_TYPE = "dataset"
BRANCH = "main"
MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 1.0  # waits 1, 2, 4 s between the 4 attempts
BACKOFF_MAX_S = 30.0
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# 412: someone committed between our read and our commit; re-reading the remote and retrying is the fix.
RETRY_STATUS = TRANSIENT_STATUS | {412}
SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}(-[0-9a-f]{8})?\.parquet$")  # optional content digest
TAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
T = TypeVar("T")
Columns = dict[str, str]  # column name -> type (arrow type string or card feature JSON)


class PushError(Exception):
    """Publishing failed or was refused; the message says why and what to do next (never the token)."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level exception types of the HTTP stack huggingface_hub uses (httpx2, httpx, requests)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "ConnectionError"),
    ):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()


@dataclass(frozen=True, slots=True)
class PushResult:
    """What a push did.

    Attributes:
        repo: the dataset repo id.
        tag: the tag that names this build on the Hub.
        commit: the commit the tag points at.
        url: where to browse it.
        up_to_date: True when the remote already had these files and the tag (nothing was written).
        uploaded: paths added or replaced by the commit; deleted: stale paths removed by it.
        created_repo: True when this push created the repo.
        attempts: how many tries it took (more than 1 after transient failures).
    """

    repo: str
    tag: str
    commit: str
    url: str
    up_to_date: bool
    uploaded: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    created_repo: bool = False
    attempts: int = 1

    def summary(self) -> str:
        if self.up_to_date:
            return f"{self.repo} is up to date at {self.tag} (commit {self.commit[:8]})"
        return (
            f"pushed {len(self.uploaded)} file(s), deleted {len(self.deleted)} from {self.repo}: "
            f"{self.tag} -> commit {self.commit[:8]}"
        )


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: str  # path in the repo, "/"-separated
    source: Path
    sha256: str
    git_oid: str


@dataclass(frozen=True, slots=True)
class RemoteFile:
    path: str
    sha256: str | None  # LFS files
    git_oid: str | None  # regular files

    def same_as(self, local: LocalFile) -> bool:
        return local.sha256 == self.sha256 if self.sha256 else local.git_oid == self.git_oid


@dataclass(frozen=True, slots=True)
class Remote:
    """The part of the remote repo a push decides on (a missing repo has head None)."""

    head: str | None
    private: bool
    files: dict[str, RemoteFile]
    tags: dict[str, str]
    card: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Request:
    build_dir: Path
    repo: str
    tag: str
    private: bool
    title: str
    description: str


# --------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------


def push(
    build_dir: Path,
    repo: str,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    message: str | None = None,
) -> PushResult:
    """Publish `build_dir` (see docs/internals.md) to the dataset repo `repo` and tag it.

    Args:
        build_dir: a `molspec build` output directory.
        repo: "namespace/name" of the dataset repo; created (private if asked) when missing.
        revision: the tag to create; default `spec-<first 8 hex of the spec sha256>`.
        private: create the repo private; refuse to push into an existing public repo.
        token: Hub token; default `HF_TOKEN`, then the stored `hf auth login` token.
        message: commit title; the description always names the spec path, sha256 and git commit.

    Raises:
        PushError: bad build dir, no token, schema change, tag conflict, or the Hub kept failing.
    """
    build_dir = Path(build_dir)
    manifest = _read_manifest(build_dir)
    request = _request(build_dir, repo, revision, private, manifest, message)
    secret = _resolve_token(token)
    local = collect_files(build_dir, secret)
    api = HfApi(token=secret)
    retry_cmd = _retry_command(build_dir, repo, revision, private)
    created: list[bool] = []  # survives a failed attempt that already created the repo
    result, attempts = _with_retries(lambda: _sync(api, request, local, created), build_dir, retry_cmd, token)
    return replace(result, attempts=attempts, created_repo=any(created))


# --------------------------------------------------------------------------------------------------
# Local side
# --------------------------------------------------------------------------------------------------


def _read_manifest(build_dir: Path) -> dict[str, Any]:
    from molspec.runtime.store import StoreError, read_manifest

    try:
        return read_manifest(build_dir)
    except StoreError as err:
        raise PushError(err.message) from None


def _request(
    build_dir: Path,
    repo: str,
    revision: str | None,
    private: bool,
    manifest: dict[str, Any],
    message: str | None,
) -> Request:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise PushError(f"'{repo}' is not a dataset repo id; use the form NAMESPACE/NAME (e.g. acme/gsm8k-mole).")
    spec = manifest.get("spec") or {}
    sha, path, commit = spec.get("sha256") or "", spec.get("path") or "?", spec.get("git_commit") or "unknown"
    if revision is None and not sha:
        raise PushError(f"{build_dir}/molspec.json has no spec.sha256 to name the tag; pass --revision TAG.")
    tag = revision or f"spec-{sha[:8]}"
    if not TAG_NAME.fullmatch(tag) or tag == BRANCH:
        raise PushError(f"'{tag}' cannot be a tag name; use letters, digits, '.', '_' or '-' (and not '{BRANCH}').")
    dirty = " (with uncommitted changes)" if spec.get("git_dirty") else ""
    title = message or f"molspec build of {path} (spec sha256 {sha}, git commit {commit}{dirty})"
    description = (
        f"spec: {path}\nspec sha256: {sha}\ngit commit: {commit}{dirty}\n"
        f"molspec version: {manifest.get('molspec_version', '?')}\ncommand: {manifest.get('command', '?')}\n"
    )
    return Request(build_dir, repo, tag, private, title, description)


def _hash_file(path: Path, secret: bytes) -> tuple[str, str, bool]:
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


def _publishable(build_dir: Path) -> Iterable[Path]:
    """data/**, spec/**, README.md, *.png and molspec.json; never .molspec/ or hidden files."""
    for folder in ("data", "spec"):
        root = build_dir / folder
        if root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file() and not _hidden(p.relative_to(build_dir)))
    yield from (p for p in build_dir.glob("*.png") if p.is_file())
    for name in ("README.md", "molspec.json"):
        if (build_dir / name).is_file():
            yield build_dir / name


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def collect_files(build_dir: Path, secret: str) -> dict[str, LocalFile]:
    """The files a push publishes, keyed by their path in the repo; refuses any that contains `secret`."""
    files = {}
    for source in sorted(set(_publishable(build_dir))):
        repo_path = source.relative_to(build_dir).as_posix()
        sha256, git_oid, leaks = _hash_file(source, secret.encode())
        if leaks:
            raise PushError(
                f"{source} contains the Hub token this push would use, so nothing was pushed. "
                "Remove the token from the spec or engine options (read it from the environment instead), "
                "rebuild, and push again; consider revoking the token."
            )
        files[repo_path] = LocalFile(repo_path, source, sha256, git_oid)
    if not any(p.startswith("data/") and p.endswith(".parquet") for p in files):
        raise PushError(
            f"{build_dir}/data holds no parquet shards, so there is nothing to publish. "
            f"Finish the build (`molspec build SPEC --out {build_dir}` resumes it) and push again."
        )
    return files


def _managed(path: str) -> bool:
    """Remote paths a push owns: it deletes them when the build no longer has them."""
    return (
        path.startswith(("data/", "spec/"))
        or path in ("README.md", "molspec.json")
        or ("/" not in path and path.endswith(".png"))
    )


# --------------------------------------------------------------------------------------------------
# Remote side
# --------------------------------------------------------------------------------------------------


def _resolve_token(token: str | None) -> str:
    resolved = token or os.environ.get("HF_TOKEN") or get_token()
    if not resolved:
        raise PushError(
            "no Hugging Face token: pass one with --token, set HF_TOKEN, or run `hf auth login` once, then push again."
        )
    return resolved


def _read_remote(api: HfApi, repo: str, revision: str = BRANCH) -> Remote | None:
    try:
        info = api.dataset_info(repo, revision=revision, files_metadata=True)
    except RepositoryNotFoundError:
        return None
    files = {}
    for sibling in info.siblings or []:
        sha256 = sibling.lfs.sha256 if sibling.lfs else None
        files[sibling.rfilename] = RemoteFile(sibling.rfilename, sha256, None if sha256 else sibling.blob_id)
    card: dict[str, Any] = info.card_data.to_dict() if info.card_data is not None else {}  # type: ignore[no-untyped-call]
    tags = {ref.name: ref.target_commit for ref in api.list_repo_refs(repo, repo_type=REPO_TYPE).tags}
    return Remote(info.sha, bool(info.private), files, tags, card)


def _diff(local: dict[str, LocalFile], remote: Remote) -> tuple[list[LocalFile], list[str]]:
    """(files to upload, remote paths to delete) that turn `remote` into the build."""
    uploads = [f for p, f in local.items() if p not in remote.files or not remote.files[p].same_as(f)]
    deletes = sorted(p for p in remote.files if _managed(p) and p not in local)
    return uploads, deletes


def _ensure_repo(api: HfApi, request: Request) -> tuple[Remote, bool]:
    remote = _read_remote(api, request.repo)
    if remote is not None:
        return remote, False
    api.create_repo(request.repo, repo_type=REPO_TYPE, private=request.private, exist_ok=True)
    remote = _read_remote(api, request.repo)
    if remote is None:
        raise PushError(
            f"{request.repo} exists on the Hub but this token cannot see it (a private repo of another "
            "account?). Push with a token that has write access to it, or choose another --repo."
        )
    return remote, True


# --------------------------------------------------------------------------------------------------
# One attempt
# --------------------------------------------------------------------------------------------------


def _sync(api: HfApi, request: Request, local: dict[str, LocalFile], created: list[bool]) -> PushResult:
    """Read the remote, refuse what is unsafe, then commit what differs and tag it."""
    remote, fresh = _ensure_repo(api, request)
    created.append(fresh)
    if request.private and not remote.private:
        raise PushError(
            f"{request.repo} already exists and is public, but --private was asked for; nothing was pushed. "
            "Make the repo private in its settings on the Hub first, or push to a new repo id."
        )
    uploads, deletes = _diff(local, remote)
    tagged = _tag_matches(api, request, local, remote)
    if not uploads and not deletes and tagged:
        return _result(api, request, remote.tags[request.tag], up_to_date=True)
    commit = remote.head or ""
    if uploads or deletes:
        check_schema(api, request, local, remote, uploads, deletes)
        commit = _commit(api, request, remote, uploads, deletes)
    if not tagged:
        api.create_tag(request.repo, tag=request.tag, revision=commit, repo_type=REPO_TYPE, tag_message=request.title)
    else:
        commit = remote.tags[request.tag]
    result = _result(api, request, commit, up_to_date=False)
    return replace(result, uploaded=tuple(f.path for f in uploads), deleted=tuple(deletes))


def _tag_matches(api: HfApi, request: Request, local: dict[str, LocalFile], remote: Remote) -> bool:
    """True when the tag exists and names exactly these files; refuses a tag that names other files."""
    target = remote.tags.get(request.tag)
    if target is None:
        return False
    tagged = _read_remote(api, request.repo, revision=target)
    if tagged is not None and _diff(local, tagged) == ([], []):
        return True
    raise PushError(
        f"tag {request.tag} already exists on {request.repo} (commit {target[:8]}) and names different files "
        f"than {request.build_dir}; tags are never moved, so nothing was pushed. This happens when the "
        "same spec was rebuilt with different results (another model, engine or seed): push it under a "
        "new tag with --revision NAME."
    )


def _commit(api: HfApi, request: Request, remote: Remote, uploads: list[LocalFile], deletes: list[str]) -> str:
    operations: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(f.source)) for f in uploads
    ]
    operations += [CommitOperationDelete(path_in_repo=p) for p in deletes]
    info = api.create_commit(
        request.repo,
        operations,
        commit_message=request.title,
        commit_description=request.description,
        repo_type=REPO_TYPE,
        revision=BRANCH,
        parent_commit=remote.head,  # a concurrent push turns into a 412, then a fresh attempt
    )
    return str(info.oid)


def _result(api: HfApi, request: Request, commit: str, up_to_date: bool) -> PushResult:
    url = f"{api.endpoint}/datasets/{request.repo}/tree/{request.tag}"
    return PushResult(request.repo, request.tag, commit, url, up_to_date)


# --------------------------------------------------------------------------------------------------
# Schema safety
# --------------------------------------------------------------------------------------------------


def _split_of(path: str) -> str | None:
    """The split a shard belongs to: data/train-00000-of-00001.parquet -> train (data/cfg/x-... -> cfg/x)."""
    if not path.startswith("data/"):
        return None
    folder, _, name = path[len("data/") :].rpartition("/")
    match = SHARD.match(name)
    return None if match is None else (f"{folder}/" if folder else "") + match["split"]


def _first_shards(paths: Iterable[str]) -> dict[str, str]:
    shards: dict[str, str] = {}
    for path in sorted(paths):
        split = _split_of(path)
        if split is not None:
            shards.setdefault(split, path)
    return shards


def check_schema(
    api: HfApi,
    request: Request,
    local: dict[str, LocalFile],
    remote: Remote,
    uploads: list[LocalFile],
    deletes: list[str],
) -> None:
    """Refuse to replace a remote split with one whose columns differ (parquet schema or card features)."""
    touched = {_split_of(f.path) for f in uploads} | {_split_of(p) for p in deletes}
    local_shards, remote_shards = _first_shards(local), _first_shards(remote.files)
    fs = HfFileSystem(endpoint=api.endpoint, token=api.token, skip_instance_cache=True)
    differ: dict[str, tuple[Columns, Columns]] = {}
    for split in sorted(s for s in touched if s in local_shards and s in remote_shards):
        mine = _columns(pq.read_schema(local[local_shards[split]].source))
        # Only the footer is read (ranged requests), not the whole shard.
        with fs.open(f"datasets/{request.repo}@{remote.head}/{remote_shards[split]}", "rb") as handle:
            theirs = _columns(pq.ParquetFile(handle).schema_arrow)
        if mine != theirs:
            differ[split] = (theirs, mine)
    if differ:
        raise _schema_error(request, "split", "parquet", differ)
    _check_card(request, local, remote)


def _columns(schema: pa.Schema) -> Columns:
    return {field.name: str(field.type) for field in schema}


def _card_features(card: dict[str, Any]) -> dict[str, Columns]:
    """config name -> {column: feature JSON} from a card's `dataset_info`."""
    infos = card.get("dataset_info") or []
    out = {}
    for info in infos if isinstance(infos, list) else [infos]:
        if isinstance(info, dict) and isinstance(info.get("features"), list):
            out[info.get("config_name", "default")] = {
                str(f.get("name")): json.dumps({k: v for k, v in f.items() if k != "name"}, sort_keys=True)
                for f in info["features"]
                if isinstance(f, dict)
            }
    return out


def _local_card(local: dict[str, LocalFile]) -> dict[str, Any]:
    readme = local.get("README.md")
    if readme is None:
        return {}
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme.source.read_text(encoding="utf-8"), re.S)
    data = yaml.safe_load(match.group(1)) if match else None
    return data if isinstance(data, dict) else {}


def _check_card(request: Request, local: dict[str, LocalFile], remote: Remote) -> None:
    mine, theirs = _card_features(_local_card(local)), _card_features(remote.card)
    differ = {c: (theirs[c], mine[c]) for c in sorted(set(mine) & set(theirs)) if mine[c] != theirs[c]}
    if differ:
        raise _schema_error(request, "config", "dataset card", differ)


def _describe(theirs: Columns, mine: Columns) -> list[str]:
    added = sorted(set(mine) - set(theirs))
    removed = sorted(set(theirs) - set(mine))
    changed = sorted(c for c in set(mine) & set(theirs) if mine[c] != theirs[c])
    parts = [
        f"new columns {', '.join(added)}" if added else "",
        f"missing columns {', '.join(removed)}" if removed else "",
        f"changed types of {', '.join(changed)}" if changed else "",
    ]
    return [p for p in parts if p] or ["the same columns in another order"]


def _schema_error(request: Request, kind: str, source: str, differ: dict[str, tuple[Columns, Columns]]) -> PushError:
    names = ", ".join(f"'{name}'" for name in differ)
    changes = "; ".join(dict.fromkeys(part for pair in differ.values() for part in _describe(*pair)))
    return PushError(
        f"refusing to push: {kind} {names} on {request.repo} has different {source} features than "
        f"{request.build_dir} ({changes}). Replacing a split with differently shaped rows breaks "
        "`datasets.load_dataset` for everyone reading the repo, so nothing was pushed. Publish this build "
        f"to a new repo (`molspec push {shlex.quote(str(request.build_dir))} --repo {request.repo}-v2`) "
        "or under a new config/split name in the spec (`output { hub = ... }`), or delete the old split on "
        "the Hub first."
    )


# --------------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------------


def _retry_command(build_dir: Path, repo: str, revision: str | None, private: bool) -> str:
    parts = ["molspec", "push", shlex.quote(str(build_dir)), "--repo", shlex.quote(repo)]
    parts += ["--revision", shlex.quote(revision)] if revision else []
    parts += ["--private"] if private else []
    return " ".join(parts)


def _redact(text: str, token: str | None) -> str:
    secrets = {token, os.environ.get("HF_TOKEN")} - {None, ""}
    for secret in secrets:
        text = text.replace(str(secret), "***")
    return re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, HfHubHTTPError):
        response = getattr(err, "response", None)
        return getattr(response, "status_code", None) in RETRY_STATUS
    return isinstance(err, TRANSPORT_ERRORS)


def _with_retries(attempt: Callable[[], T], build_dir: Path, retry_cmd: str, token: str | None) -> tuple[T, int]:
    """Run `attempt` until it succeeds, retrying transient Hub/network failures with exponential backoff."""
    for number in range(1, MAX_ATTEMPTS + 1):
        try:
            return attempt(), number
        except PushError:
            raise
        except Exception as err:  # noqa: BLE001 - every failure becomes a PushError below
            reason = _redact(f"{type(err).__name__}: {err}", token)
            if not _is_transient(err):
                raise PushError(
                    f"the Hub refused the push ({reason}). The local dataset is intact at {build_dir}; "
                    f"fix the cause and retry with: {retry_cmd}"
                ) from None
            if number == MAX_ATTEMPTS:
                raise PushError(
                    f"could not reach the Hub after {MAX_ATTEMPTS} attempts (last error: {reason}). "
                    f"The local dataset is intact at {build_dir}; retry with: {retry_cmd}"
                ) from None
            delay = min(BACKOFF_BASE_S * 2 ** (number - 1), BACKOFF_MAX_S)
            log.warning("push attempt %d/%d failed (%s); retrying in %.1f s", number, MAX_ATTEMPTS, reason, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
