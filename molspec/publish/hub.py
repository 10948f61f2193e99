"""Push a build directory to a Hugging Face Hub dataset repo: one commit, one tag, idempotent, schema-safe.

`push()` compares the build with the remote first (sha256 / git oids of every file) and only then writes:
nothing at all when the remote already has these files and the tag, otherwise a single commit with every
changed file (stale shards deleted) followed by the tag. Each attempt re-reads the remote, so a retry after a
lost response converges instead of committing twice. The token never leaves `HfApi`: it is not logged,
printed, written, or put into any error message.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import RepositoryNotFoundError

from molspec.engines.redact import redact
from molspec.publish.hub_local import LocalFile, build_folders, collect_files, collect_group_files, managed
from molspec.publish.hub_net import HubTimeouts, PushError, RetryPolicy, bounded_session, with_retries
from molspec.publish.hub_schema import Change, card_features, check_schema, front_matter
from molspec.records import Manifest, read_manifest
from molspec.structure.group import Group, is_group, open_group

REPO_TYPE = "dataset"
BRANCH = "main"
MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 1.0  # waits 1, 2, 4 s between the 4 attempts
BACKOFF_MAX_S = 30.0
TAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
__all__ = ["HubTimeouts", "LocalFile", "PushError", "PushResult", "collect_files", "push"]


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
    timeouts: HubTimeouts | None = None,
) -> PushResult:
    """Publish `build_dir` (see docs/internals.md) to the dataset repo `repo` and tag it.

    Args:
        build_dir: a `molspec build` output directory; a variant build (variants.json) is one repo with a
            config per variant (docs/publishing.md).
        repo: "namespace/name" of the dataset repo; created (private if asked) when missing.
        revision: the tag to create; default `spec-<first 8 hex of the spec sha256>` (of the group sha256
            for a variant build).
        private: create the repo private; refuse to push into an existing public repo.
        token: Hub token; default `HF_TOKEN`, then the stored `hf auth login` token.
        message: commit title (a token in it is masked); the description always names the spec path,
            sha256 and git commit.
        timeouts: connect and answer timeouts of every Hub request; default from MOLSPEC_HUB_TIMEOUT and
            MOLSPEC_HUB_CONNECT_TIMEOUT (120 s and 10 s).

    Raises:
        PushError: bad build dir, no token, schema change, tag conflict, or the Hub kept failing or never
            answered.
    """
    build_dir = Path(build_dir)
    timeouts = timeouts or HubTimeouts.from_env()
    group = open_group(build_dir) if is_group(build_dir) else None  # MOL701 for a damaged variant build
    if group is not None:
        request = _group_request(group, repo, revision, private, message)
    else:
        manifest = read_manifest(build_dir)  # ManifestError (MOL701) when it is not a build
        request = _request(build_dir, repo, revision, private, manifest, message)
    secret = _resolve_token(token)
    request = replace(request, title=redact(request.title, [secret]), description=redact(request.description, [secret]))
    local = collect_files(build_dir, secret) if group is None else \
        collect_group_files(build_dir, {v.entry.path: v.dir for v in group.variants}, secret)
    api = HfApi(token=secret)
    retry_cmd = _retry_command(build_dir, repo, revision, private)
    policy = RetryPolicy(MAX_ATTEMPTS, BACKOFF_BASE_S, BACKOFF_MAX_S)
    created: list[bool] = []  # survives a failed attempt that already created the repo
    with bounded_session(timeouts):
        result, attempts = with_retries(lambda: _sync(api, request, local, created), policy, timeouts, build_dir,
                                        retry_cmd, [secret, token])
    return replace(result, attempts=attempts, created_repo=any(created))


# --------------------------------------------------------------------------------------------------
# Local side
# --------------------------------------------------------------------------------------------------


def _request(
    build_dir: Path,
    repo: str,
    revision: str | None,
    private: bool,
    manifest: Manifest,
    message: str | None,
) -> Request:
    spec = manifest.spec
    sha, path, commit = spec.sha256, spec.path, spec.git_commit or "unknown"
    tag = _tag(repo, revision, sha, f"{build_dir}/molspec.json has no spec.sha256")
    dirty = " (with uncommitted changes)" if spec.git_dirty else ""
    title = message or f"molspec build of {path} (spec sha256 {sha}, git commit {commit}{dirty})"
    description = (
        f"spec: {path}\nspec sha256: {sha}\ngit commit: {commit}{dirty}\n"
        f"molspec version: {manifest.molspec_version}\ncommand: {manifest.command}\n"
    )
    return Request(build_dir, repo, tag, private, title, description)


def _group_request(group: Group, repo: str, revision: str | None, private: bool, message: str | None) -> Request:
    g, spec = group.manifest, group.variants[0].manifest.spec
    tag = _tag(repo, revision, g.group_sha256, f"{group.dir}/variants.json has no group_sha256")
    commit = spec.git_commit or "unknown"
    dirty = " (with uncommitted changes)" if spec.git_dirty else ""
    names = ", ".join(v.name for v in group.variants)
    title = message or (f"molspec variant build of {g.spec} ({len(group.variants)} variants: {names}; "
                        f"group sha256 {g.group_sha256}, git commit {commit}{dirty})")
    lines = [f"spec: {g.spec}", f"group sha256: {g.group_sha256}", f"git commit: {commit}{dirty}",
             *(f"variant {v.name}: spec sha256 {v.entry.spec_sha256}; changes: {', '.join(v.entry.changes) or '-'}"
               for v in group.variants),
             f"molspec version: {g.molspec_version}", f"command: {g.command}"]
    return Request(group.dir, repo, tag, private, title, "\n".join(lines) + "\n")


def _tag(repo: str, revision: str | None, sha: str, no_sha: str) -> str:
    """The tag a push creates (the given revision, else `spec-<sha[:8]>`), after checking the repo id."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise PushError(f"'{repo}' is not a dataset repo id; use the form NAMESPACE/NAME (e.g. acme/gsm8k-mole).")
    if revision is None and not sha:
        raise PushError(f"{no_sha} to name the tag; pass --revision TAG.")
    tag = revision or f"spec-{sha[:8]}"
    if not TAG_NAME.fullmatch(tag) or tag == BRANCH:
        raise PushError(f"'{tag}' cannot be a tag name; use letters, digits, '.', '_' or '-' (and not '{BRANCH}').")
    return tag


# --------------------------------------------------------------------------------------------------
# Remote side
# --------------------------------------------------------------------------------------------------


def _resolve_token(token: str | None) -> str:
    resolved = token or os.environ.get("HF_TOKEN") or get_token()
    if not resolved:
        raise PushError(
            "no Hugging Face token: set the HF_TOKEN environment variable, or run `hf auth login` once "
            "(`huggingface-cli login` with older huggingface_hub), then push again."
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
    builds = build_folders(local) | build_folders(remote.files)  # variants' folders, here or there
    deletes = sorted(p for p in remote.files if managed(p, builds) and p not in local)
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
        check_schema(api, _change(request, local, remote, uploads, deletes))
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


def _change(request: Request, local: dict[str, LocalFile], remote: Remote, uploads: list[LocalFile],
            deletes: list[str]) -> Change:
    return Change(request.repo, request.build_dir, {p: f.source for p, f in local.items()}, remote.head,
                  tuple(remote.files), remote.card, tuple(f.path for f in uploads) + tuple(deletes))


def _local_card(local: dict[str, LocalFile]) -> dict[str, Any]:
    """The build's card metadata (the schema check reads it through hub_schema.front_matter)."""
    readme = local.get("README.md")
    return front_matter(readme.source) if readme is not None else {}


_card_features = card_features  # tests/publish/test_card.py reads both through this module


# --------------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------------


def _retry_command(build_dir: Path, repo: str, revision: str | None, private: bool) -> str:
    parts = ["molspec", "push", shlex.quote(str(build_dir)), "--repo", shlex.quote(repo)]
    parts += ["--revision", shlex.quote(revision)] if revision else []
    parts += ["--private"] if private else []
    return " ".join(parts)
