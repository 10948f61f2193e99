"""A loopback Hugging Face Hub for tests: the real `huggingface_hub` and `datasets` clients talk to it.

`FakeHub` runs a stdlib `ThreadingHTTPServer` on 127.0.0.1 (a free port) and implements the part of the Hub
API those clients use to create repos, upload (preupload, git-LFS batch/upload/verify, ndjson commit), tag,
list and download. Every commit is a full snapshot (commit oid -> file map), so branches, tags and commit ids
all keep serving the files they pointed at. State lives in memory behind one lock.

Test knobs: `token`/`require_token` (auth), `fail_next()` / `disconnect_next()` / `stall_next()` (failure
injection per route: an error status, a dropped connection, a request accepted and never answered) and
`requests` (every request with its Authorization header). Clients must run with `HF_HUB_DISABLE_XET=1`:
with Xet on, huggingface_hub uploads through a Xet CAS, which this server does not implement.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# What the Hub's default .gitattributes routes through LFS (shortened); others are LFS when big or binary.
LFS_SUFFIXES = (".parquet", ".arrow", ".png", ".jpg", ".jpeg", ".bin", ".safetensors", ".gz", ".zip", ".npy")
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
GITATTRIBUTES = b"".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n".encode() for s in LFS_SUFFIXES)
_JSON = dict[str, Any]
DISCONNECT, LOSE_RESPONSE, STALL = 0, -1, -2  # pseudo statuses for injected faults
STALL_LIMIT_S = 60.0  # a stalled request is released by stop(), or after this long


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's `oid`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-LFS pointer file that stands in the git tree for an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file of a snapshot. `oid` is the git blob id (of the pointer, for LFS files)."""

    path: str
    size: int
    sha256: str
    oid: str
    lfs: bool

    @classmethod
    def make(cls, path: str, data: bytes, lfs: bool) -> StoredFile:
        sha = hashlib.sha256(data).hexdigest()
        oid = git_blob_oid(lfs_pointer(sha, len(data)) if lfs else data)
        return cls(path=path, size=len(data), sha256=sha, oid=oid, lfs=lfs)

    def entry(self) -> _JSON:
        """The tree / paths-info JSON for this file."""
        out: _JSON = {"type": "file", "oid": self.oid, "size": self.size, "path": self.path}
        if self.lfs:
            pointer = len(lfs_pointer(self.sha256, self.size))
            out["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": pointer}
        return out


@dataclass(frozen=True, slots=True)
class Commit:
    """A snapshot: the whole file map as of this commit, plus its parent."""

    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    author: str
    files: Mapping[str, StoredFile]


@dataclass(slots=True)
class Repo:
    """A repository: its commits (by oid) and refs (branch/tag name -> commit oid)."""

    repo_type: str
    repo_id: str
    private: bool
    created: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit | None:
        """A branch, a tag, a full commit oid or an unambiguous prefix of at least 7 characters."""
        oid = self.branches.get(rev) or self.tags.get(rev)
        if oid is None and rev in self.commits:
            oid = rev
        if oid is None and len(rev) >= 7:
            found = [c for c in self.commits if c.startswith(rev)]
            oid = found[0] if len(found) == 1 else None
        return self.commits.get(oid) if oid else None

    def history(self, head: Commit) -> Iterator[Commit]:
        commit: Commit | None = head
        while commit is not None:
            yield commit
            commit = self.commits.get(commit.parent) if commit.parent else None

    @property
    def url_path(self) -> str:
        return URL_PREFIXES[self.repo_type] + self.repo_id


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server saw it (for assertions on auth and call sequences)."""

    method: str
    path: str
    route: str
    authorization: str | None
    status: int


class HubHTTPError(Exception):
    """Ends a request with an error status; `code` becomes the X-Error-Code header clients map to errors."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def _not_found(what: str, code: str) -> HubHTTPError:
    return HubHTTPError(404, what, code)


# --------------------------------------------------------------------------------------------------
# The hub: state and the operations routes call
# --------------------------------------------------------------------------------------------------


class FakeHub:
    """An in-memory Hub served on 127.0.0.1. Use as a context manager, or call start()/stop().

    Args:
        token: if set, the only accepted bearer token (others get 401). If None, any token is accepted.
        require_token: when True, every request without a token gets 401 (uploads to LFS hrefs excepted).
        user: the user name tokens authenticate as (also the namespace of repo ids given without one).
    """

    def __init__(self, token: str | None = None, require_token: bool = False, user: str = "tester") -> None:
        self.token, self.require_token, self.user = token, require_token, user
        self.requests: list[RecordedRequest] = []
        self._repos: dict[tuple[str, str], Repo] = {}
        self._objects: dict[str, bytes] = {}  # sha256 -> content, for regular and LFS files alike
        self._faults: dict[str, list[int]] = {}  # route -> queued statuses or DISCONNECT/LOSE_RESPONSE
        self._lock = threading.RLock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()  # releases stalled requests

    # -- lifecycle ---
    def start(self) -> FakeHub:
        handler = type("BoundHandler", (_Handler,), {"hub": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        # A short poll interval keeps stop() (which waits for the serving loop to notice) quick.
        kwargs = {"poll_interval": 0.02}
        threading.Thread(target=server.serve_forever, kwargs=kwargs, name="fakehub", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "FakeHub is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- test knobs and inspection ---
    def fail_next(self, route: str, times: int = 1, status: int = 503) -> None:
        """Make the next `times` requests of `route` ("commit", "create", ...) answer `status`."""
        with self._lock:
            self._faults.setdefault(route, []).extend([status] * times)

    def disconnect_next(self, route: str, times: int = 1) -> None:
        """Make the next `times` requests of `route` close the connection without any response."""
        self.fail_next(route, times, status=DISCONNECT)

    def lose_response_next(self, route: str, times: int = 1) -> None:
        """Process the next `times` requests of `route`, then drop the connection instead of answering."""
        self.fail_next(route, times, status=LOSE_RESPONSE)

    def stall_next(self, route: str, times: int = 1) -> None:
        """Read the next `times` requests of `route`, then never answer them (until stop())."""
        self.fail_next(route, times, status=STALL)

    def stall(self) -> None:
        """Hold the calling handler without answering, as a server that hangs does."""
        self._stopping.wait(STALL_LIMIT_S)

    def take_fault(self, route: str) -> int | None:
        with self._lock:
            queue = self._faults.get(route)
            return queue.pop(0) if queue else None

    def record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def repo(self, repo_id: str, repo_type: str = "dataset") -> Repo:
        """The stored repository (raises KeyError if absent)."""
        with self._lock:
            return self._repos[(repo_type, repo_id)]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        """Every file of a revision with its content."""
        with self._lock:
            commit = self.repo(repo_id, repo_type).resolve(revision)
            if commit is None:
                raise KeyError(revision)
            return {p: self._objects[f.sha256] for p, f in commit.files.items()}

    def stored_objects(self) -> list[bytes]:
        """Every blob the hub holds (all repos, all revisions): for "no secret leaked" assertions."""
        with self._lock:
            return list(self._objects.values())

    # -- auth ---
    def authenticate(self, authorization: str | None) -> str | None:
        """The user a request acts as, or None when anonymous. Raises 401 for bad/missing tokens."""
        token = authorization[7:].strip() if authorization and authorization.startswith("Bearer ") else None
        if token is None:
            if self.require_token:
                raise HubHTTPError(401, "Invalid credentials in Authorization header")
            return None
        if self.token is not None and token != self.token:
            raise HubHTTPError(401, "Invalid credentials in Authorization header")
        return self.user

    def visible_repo(self, repo_type: str, repo_id: str, user: str | None) -> Repo:
        """Like the Hub, private repos look absent to anonymous callers."""
        repo = self._repos.get((repo_type, repo_id))
        if repo is None or (repo.private and user is None):
            raise _not_found(f"Repository Not Found for url: {repo_type}s/{repo_id}", "RepoNotFound")
        return repo

    def commit_at(self, repo: Repo, rev: str) -> Commit:
        commit = repo.resolve(rev)
        if commit is None:
            raise _not_found(f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    # -- writes ---
    def create_repo(self, repo_type: str, repo_id: str, private: bool, user: str) -> Repo:
        key = (repo_type, repo_id)
        if key in self._repos:
            raise HubHTTPError(409, "You already created this repo")
        repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private, created=_now())
        self._repos[key] = repo
        attrs = self.store(".gitattributes", GITATTRIBUTES, lfs=False)
        self.add_commit(repo, "main", {attrs.path: attrs}, "initial commit", "", user)
        return repo

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        if self._repos.pop((repo_type, repo_id), None) is None:
            raise _not_found(f"Repository Not Found: {repo_id}", "RepoNotFound")

    def store(self, path: str, data: bytes, lfs: bool) -> StoredFile:
        stored = StoredFile.make(path, data, lfs)
        self._objects[stored.sha256] = data
        return stored

    def add_commit(
        self, repo: Repo, branch: str, files: dict[str, StoredFile], title: str, message: str, user: str
    ) -> Commit:
        parent = repo.branches.get(branch)
        self._counter += 1
        # The oid only has to be unique and stable; hashing the counter in makes identical snapshots distinct.
        seed = json.dumps([repo.repo_id, parent, sorted(f.oid for f in files.values()), title, self._counter])
        commit = Commit(
            oid=hashlib.sha1(seed.encode()).hexdigest(),
            parent=parent,
            title=title,
            message=message,
            date=_now(),
            author=user,
            files=dict(files),
        )
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    # -- reads ---
    def read(self, stored: StoredFile) -> bytes:
        return self._objects[stored.sha256]

    def has_object(self, sha256: str) -> bool:
        return sha256 in self._objects

    def put_object(self, sha256: str, data: bytes) -> None:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise HubHTTPError(400, "LFS upload: content does not match its sha256")
        with self._lock:
            self._objects[sha256] = data


# --------------------------------------------------------------------------------------------------
# Tree helpers (pure functions of a snapshot)
# --------------------------------------------------------------------------------------------------


def _under(path: str, folder: str) -> bool:
    return not folder or path.startswith(folder + "/")


def _folder_oid(files: Mapping[str, StoredFile], folder: str) -> str:
    listing = sorted((p, f.oid) for p, f in files.items() if _under(p, folder))
    return hashlib.sha1(json.dumps(listing).encode()).hexdigest()


def _folders(files: Mapping[str, StoredFile]) -> set[str]:
    out: set[str] = set()
    for path in files:
        parts = path.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def _folder_entry(files: Mapping[str, StoredFile], folder: str) -> _JSON:
    return {"type": "directory", "oid": _folder_oid(files, folder), "size": 0, "path": folder}


def tree_entries(files: Mapping[str, StoredFile], folder: str, recursive: bool) -> list[_JSON]:
    """Children of `folder` ("" = root), or all descendants when recursive; folders first like the Hub."""
    depth = folder.count("/") + 1 if folder else 0

    def wanted(path: str) -> bool:
        return _under(path, folder) and (recursive or path.count("/") == depth)

    dirs = [_folder_entry(files, d) for d in sorted(_folders(files)) if wanted(d)]
    return dirs + [files[p].entry() for p in sorted(files) if wanted(p)]


def _view(files: Mapping[str, StoredFile], path: str) -> object:
    if path in files:
        return files[path].oid
    return _folder_oid(files, path)


def last_commit(repo: Repo, head: Commit, path: str) -> _JSON:
    """The newest commit in head's history that changed `path` (a file or a folder)."""
    found = head
    for commit in repo.history(head):
        parent = repo.commits.get(commit.parent) if commit.parent else None
        found = commit
        if parent is None or _view(parent.files, path) != _view(commit.files, path):
            break
    return {"id": found.oid, "title": found.title, "date": found.date}


def card_data(files: Mapping[str, StoredFile], read: Callable[[StoredFile], bytes]) -> _JSON | None:
    """The README's YAML front matter, as the Hub returns it in `cardData`."""
    readme = files.get("README.md")
    if readme is None:
        return None
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", read(readme).decode("utf-8", "replace"), re.S)
    data = yaml.safe_load(match.group(1)) if match else None
    return data if isinstance(data, dict) else None


def _is_lfs(path: str, size: int, sample: bytes) -> bool:
    return path.endswith(LFS_SUFFIXES) or size >= LFS_SIZE_THRESHOLD or b"\0" in sample


# --------------------------------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------------------------------

_REPO = r"/api/(models|datasets|spaces)/([^/]+)/([^/]+)"
_GIT = r"/(?:(datasets|spaces)/)?([^/]+)/([^/]+)"
# (method, pattern on the raw path, route name, handler method name); first match wins.
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/api/repos/create"), "create"),
    ("DELETE", re.compile(r"/api/repos/delete"), "delete"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("GET", re.compile(r"/api/whoami-v2"), "whoami"),
    ("GET", re.compile(_REPO), "info"),
    ("GET", re.compile(_REPO + r"/revision/([^/]+)"), "info"),
    ("PUT", re.compile(_REPO + r"/settings"), "settings"),
    ("GET", re.compile(_REPO + r"/tree/([^/]+)(?:/(.*))?"), "tree"),
    ("POST", re.compile(_REPO + r"/paths-info/([^/]+)"), "paths_info"),
    ("POST", re.compile(_REPO + r"/preupload/([^/]+)"), "preupload"),
    ("POST", re.compile(_REPO + r"/commit/([^/]+)"), "commit"),
    ("GET", re.compile(_REPO + r"/refs"), "refs"),
    ("GET", re.compile(_REPO + r"/commits/([^/]+)"), "commits"),
    ("POST", re.compile(_REPO + r"/tag/([^/]+)"), "tag"),
    ("DELETE", re.compile(_REPO + r"/tag/([^/]+)"), "delete_tag"),
    ("POST", re.compile(_REPO + r"/branch/([^/]+)"), "branch"),
    ("POST", re.compile(_GIT + r"\.git/info/lfs/objects/batch"), "lfs_batch"),
    ("PUT", re.compile(r"/_lfs/([0-9a-f]{64})"), "lfs_upload"),
    ("POST", re.compile(r"/_lfs/([0-9a-f]{64})/verify"), "lfs_verify"),
    ("HEAD", re.compile(_GIT + r"/resolve/([^/]+)/(.+)"), "resolve"),
    ("GET", re.compile(_GIT + r"/resolve/([^/]+)/(.+)"), "resolve"),
]
# Presigned-style LFS hrefs carry no token on the real Hub either.
ANONYMOUS_ROUTES = {"lfs_upload", "lfs_verify"}


class _Handler(BaseHTTPRequestHandler):
    """Parses a request, finds its route, runs it under the hub lock and writes the reply."""

    hub: FakeHub
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each keep-alive reply waits ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean; `hub.requests` is the log

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # -- plumbing ---
    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        self.body = self._read_body()
        route, args = _match(method, split.path)
        fault = self.hub.take_fault(route) if route else None
        if fault == DISCONNECT:
            self._drop(method, route)
            return
        if fault == STALL:
            self.hub.record(RecordedRequest(method, self.path, route, self.headers.get("Authorization"), STALL))
            self.hub.stall()
            self.close_connection = True
            return
        reply = self._dispatch(method, route, args, None if fault == LOSE_RESPONSE else fault)
        if fault == LOSE_RESPONSE:
            self._drop(method, route)  # the change happened, but the client never learns it
            return
        self.hub.record(RecordedRequest(method, self.path, route, self.headers.get("Authorization"), reply.status))
        self._write(method, reply)

    def _drop(self, method: str, route: str) -> None:
        self.close_connection = True
        self.hub.record(RecordedRequest(method, self.path, route, self.headers.get("Authorization"), 0))

    def _dispatch(self, method: str, route: str, args: list[str], fault: int | None) -> Reply:
        try:
            if not route:
                raise HubHTTPError(404, f"no route for {method} {self.path}")
            if fault:
                raise HubHTTPError(fault, f"injected failure ({fault}) on {route}")
            user = None if route in ANONYMOUS_ROUTES else self.hub.authenticate(self.headers.get("Authorization"))
            handler: Callable[..., Reply] = getattr(self, "route_" + route)
            with self.hub._lock:
                return handler(user, *args)
        except HubHTTPError as err:
            reply = Reply.json({"error": err.message}, err.status)
            if err.code:
                reply.headers["X-Error-Code"] = err.code
            reply.headers["X-Error-Message"] = err.message
            return reply

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, method: str, reply: Reply) -> None:
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        if "Content-Length" not in reply.headers:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(reply.body)

    def _json(self) -> _JSON:
        try:
            data = json.loads(self.body or b"{}")
        except json.JSONDecodeError as err:
            raise HubHTTPError(400, f"invalid JSON body: {err}") from err
        return data if isinstance(data, dict) else {}

    def _repo(self, user: str | None, plural: str, ns: str, name: str) -> Repo:
        return self.hub.visible_repo(REPO_TYPES[plural], f"{ns}/{name}", user)

    def _writer(self, user: str | None) -> str:
        if user is None:
            raise HubHTTPError(401, "You must be authenticated to do this")
        return user

    # -- account & repos ---
    def route_whoami(self, user: str | None) -> Reply:
        name = self._writer(user)
        return Reply.json(
            {
                "type": "user",
                "name": name,
                "fullname": name,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "fakehub", "role": "write"}},
            }
        )

    def route_create(self, user: str | None) -> Reply:
        owner = self._writer(user)
        data = self._json()
        repo_type = data.get("type") or "model"
        repo_id = f"{data.get('organization') or owner}/{data['name']}"
        private = bool(data.get("private")) or data.get("visibility") == "private"
        url = f"{self.hub.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}"
        try:
            self.hub.create_repo(repo_type, repo_id, private, owner)
        except HubHTTPError as err:
            # create_repo(exist_ok=True) swallows the 409 and then reads "url" from the same body.
            return Reply.json({"error": err.message, "url": url}, err.status)
        return Reply.json({"url": url, "name": repo_id, "id": repo_id})

    def route_delete(self, user: str | None) -> Reply:
        owner = self._writer(user)
        data = self._json()
        self.hub.delete_repo(data.get("type") or "model", f"{data.get('organization') or owner}/{data['name']}")
        return Reply.json({})

    def route_settings(self, user: str | None, plural: str, ns: str, name: str) -> Reply:
        self._writer(user)
        repo = self._repo(user, plural, ns, name)
        data = self._json()
        if "private" in data or "visibility" in data:
            repo.private = bool(data.get("private")) or data.get("visibility") == "private"
        return Reply.json({})

    def route_validate_yaml(self, user: str | None) -> Reply:
        return Reply.json({"errors": [], "warnings": []})

    def route_info(self, user: str | None, plural: str, ns: str, name: str, rev: str = "main") -> Reply:
        repo = self._repo(user, plural, ns, name)
        commit = self.hub.commit_at(repo, unquote(rev))
        blobs = self.query.get("blobs", ["false"])[0].lower() in ("1", "true")
        return Reply.json(self._info(repo, commit, blobs))

    def _info(self, repo: Repo, commit: Commit, blobs: bool) -> _JSON:
        siblings = []
        for stored in sorted(commit.files.values(), key=lambda f: f.path):
            sibling: _JSON = {"rfilename": stored.path}
            if blobs:
                entry = stored.entry()
                sibling.update(size=stored.size, blobId=stored.oid)
                if "lfs" in entry:
                    lfs = entry["lfs"]
                    sibling["lfs"] = {
                        "size": lfs["size"],
                        "sha256": lfs["oid"],
                        "pointerSize": lfs["pointerSize"],
                    }
            siblings.append(sibling)
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "createdAt": repo.created,
            "lastModified": commit.date,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "cardData": card_data(commit.files, self.hub.read),
            "siblings": siblings,
        }

    # -- listing ---
    def route_tree(self, user: str | None, plural: str, ns: str, name: str, rev: str, path: str | None = None) -> Reply:
        repo = self._repo(user, plural, ns, name)
        commit = self.hub.commit_at(repo, unquote(rev))
        folder = unquote(path or "").strip("/")
        if folder and folder not in _folders(commit.files):
            raise _not_found(f"{folder} does not exist on {rev}", "EntryNotFound")
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries = tree_entries(commit.files, folder, recursive)
        if self.query.get("expand", ["false"])[0].lower() in ("1", "true"):
            for entry in entries:
                entry["lastCommit"] = last_commit(repo, commit, entry["path"])
        return Reply.json(entries)

    def route_paths_info(self, user: str | None, plural: str, ns: str, name: str, rev: str) -> Reply:
        repo = self._repo(user, plural, ns, name)
        commit = self.hub.commit_at(repo, unquote(rev))
        form = parse_qs(self.body.decode())  # the client posts form data: paths=a&paths=b&expand=False
        paths = form.get("paths", []) or self._json().get("paths", [])
        folders = _folders(commit.files)
        out = []
        for path in (p.strip("/") for p in paths):
            if path in commit.files:
                out.append(commit.files[path].entry())
            elif path in folders:
                out.append(_folder_entry(commit.files, path))
        return Reply.json(out)

    def route_refs(self, user: str | None, plural: str, ns: str, name: str) -> Reply:
        repo = self._repo(user, plural, ns, name)

        def refs(kind: str, names: dict[str, str]) -> list[_JSON]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in sorted(names.items())]

        return Reply.json(
            {
                "branches": refs("heads", repo.branches),
                "tags": refs("tags", repo.tags),
                "converts": [],
                "pullRequests": [],
            }
        )

    def route_commits(self, user: str | None, plural: str, ns: str, name: str, rev: str) -> Reply:
        repo = self._repo(user, plural, ns, name)
        head = self.hub.commit_at(repo, unquote(rev))
        return Reply.json(
            [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": c.message,
                    "date": c.date,
                    "authors": [{"user": c.author}],
                }
                for c in repo.history(head)
            ]
        )

    # -- refs ---
    def route_tag(self, user: str | None, plural: str, ns: str, name: str, rev: str) -> Reply:
        self._writer(user)
        repo = self._repo(user, plural, ns, name)
        commit = self.hub.commit_at(repo, unquote(rev))
        tag = str(self._json().get("tag") or "")
        if not tag:
            raise HubHTTPError(400, "missing tag name")
        if tag in repo.tags:
            raise HubHTTPError(409, f"Tag {tag} already exists")
        repo.tags[tag] = commit.oid
        return Reply.json({"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": commit.oid})

    def route_delete_tag(self, user: str | None, plural: str, ns: str, name: str, tag: str) -> Reply:
        self._writer(user)
        repo = self._repo(user, plural, ns, name)
        if repo.tags.pop(unquote(tag), None) is None:
            raise _not_found(f"Invalid rev id: {tag}", "RevisionNotFound")
        return Reply.json({})

    def route_branch(self, user: str | None, plural: str, ns: str, name: str, branch: str) -> Reply:
        self._writer(user)
        repo = self._repo(user, plural, ns, name)
        branch = unquote(branch)
        start = self.hub.commit_at(repo, str(self._json().get("startingPoint") or "main"))
        if branch in repo.branches:
            raise HubHTTPError(409, f"Branch {branch} already exists")
        repo.branches[branch] = start.oid
        return Reply.json({})

    # -- uploads ---
    def route_preupload(self, user: str | None, plural: str, ns: str, name: str, rev: str) -> Reply:
        self._writer(user)
        repo = self._repo(user, plural, ns, name)
        current = repo.resolve(unquote(rev))
        files = []
        for item in self._json().get("files", []):
            sample = base64.b64decode(item.get("sample", ""))
            lfs = _is_lfs(item["path"], int(item["size"]), sample)
            existing = current.files.get(item["path"]) if current else None
            oid = None
            if existing is not None:
                # The client compares this with its own oid: sha256 for LFS files, git sha1 for regular ones.
                oid = existing.sha256 if lfs else git_blob_oid(self.hub.read(existing))
            mode = "lfs" if lfs else "regular"
            files.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return Reply.json({"files": files, "commitOid": current.oid if current else None})

    def route_lfs_batch(self, user: str | None, prefix: str | None, ns: str, name: str) -> Reply:
        self._writer(user)
        self._repo(user, (prefix or "models"), ns, name)
        objects = []
        for obj in self._json().get("objects", []):
            out: _JSON = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not self.hub.has_object(obj["oid"]):
                base = f"{self.hub.endpoint}/_lfs/{obj['oid']}"
                out["actions"] = {"upload": {"href": base}, "verify": {"href": base + "/verify"}}
            objects.append(out)
        return Reply.json({"transfer": "basic", "objects": objects})

    def route_lfs_upload(self, user: str | None, oid: str) -> Reply:
        self.hub.put_object(oid, self.body)
        return Reply()

    def route_lfs_verify(self, user: str | None, oid: str) -> Reply:
        if not self.hub.has_object(oid):
            raise HubHTTPError(404, f"LFS object {oid} was never uploaded")
        return Reply.json({"success": True})

    def route_commit(self, user: str | None, plural: str, ns: str, name: str, rev: str) -> Reply:
        author = self._writer(user)
        repo = self._repo(user, plural, ns, name)
        branch = unquote(rev)
        if "create_pr" in self.query:
            raise HubHTTPError(400, "pull requests are not supported by the fake hub")
        if branch not in repo.branches:
            raise _not_found(f"Invalid rev id: {branch} (commits go to branches)", "RevisionNotFound")
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        header: _JSON = next((ln["value"] for ln in lines if ln["key"] == "header"), {})
        head = repo.commits[repo.branches[branch]]
        parent = header.get("parentCommit")
        if parent and parent != head.oid:
            raise HubHTTPError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(head.files)
        for line in lines:
            self._apply(files, line["key"], line["value"])
        commit = self.hub.add_commit(
            repo, branch, files, header.get("summary", ""), header.get("description", ""), author
        )
        url = f"{self.hub.endpoint}/{repo.url_path}/commit/{commit.oid}"
        return Reply.json({"commitUrl": url, "commitOid": commit.oid, "pullRequestUrl": None, "success": True})

    def _apply(self, files: dict[str, StoredFile], key: str, value: _JSON) -> None:
        """Apply one ndjson commit operation to a file map."""
        if key == "file":
            files[value["path"]] = self.hub.store(value["path"], base64.b64decode(value["content"]), lfs=False)
        elif key == "lfsFile":
            oid = value["oid"]
            if not self.hub.has_object(oid):
                raise HubHTTPError(422, f"LFS object {oid} for {value['path']} was never uploaded")
            files[value["path"]] = StoredFile.make(value["path"], self.hub._objects[oid], lfs=True)
        elif key == "deletedFile":
            if files.pop(value["path"], None) is None:
                raise _not_found(f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
        elif key == "deletedFolder":
            folder = value["path"].strip("/")
            for path in [p for p in files if _under(p, folder)]:
                del files[path]

    # -- downloads ---
    def route_resolve(self, user: str | None, prefix: str | None, ns: str, name: str, rev: str, path: str) -> Reply:
        repo = self._repo(user, prefix or "models", ns, name)
        commit = self.hub.commit_at(repo, unquote(rev))
        stored = commit.files.get(unquote(path))
        if stored is None:
            raise _not_found(f"Entry not found: {unquote(path)}", "EntryNotFound")
        etag = stored.sha256 if stored.lfs else stored.oid
        headers = {
            "ETag": f'"{etag}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if stored.lfs:
            headers.update({"X-Linked-Etag": f'"{stored.sha256}"', "X-Linked-Size": str(stored.size)})
        return _ranged(self.hub.read(stored), self.headers.get("Range"), headers)


def _ranged(data: bytes, range_header: str | None, headers: dict[str, str]) -> Reply:
    """A 200, or a 206 for a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (range_header or "").strip())
    if not match or not any(match.groups()):
        return Reply(200, data, headers)
    first, last = match.groups()
    total = len(data)
    start = int(first) if first else max(total - int(last), 0)
    end = min(int(last), total - 1) if first and last else total - 1
    if start >= total:
        return Reply(416, b"", {**headers, "Content-Range": f"bytes */{total}"})
    return Reply(206, data[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{total}"})


def _match(method: str, path: str) -> tuple[str, list[str]]:
    for route_method, pattern, route in ROUTES:
        if route_method != method:
            continue
        found = pattern.fullmatch(path)
        if found:
            return route, [g for g in found.groups()]
    return "", []
