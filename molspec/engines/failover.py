"""The openai engine's HTTP plumbing: the outcome of one POST, the round-robin URL pool with cooldowns, and
reading a server's Retry-After and error bodies. Kept apart from `engines/openai.py` (the engine itself)."""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from molspec.engines.base import Completion


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one POST: a final `completion`, or a retryable `reason`.

    Attributes:
        completion: the answer (possibly an error Completion that is not worth retrying).
        reason: why the attempt failed, for the error if all retries fail.
        retry_after: the server's Retry-After in seconds, if it gave one.
        failover: the connection failed, so another URL may be tried at once.
    """

    completion: Completion | None = None
    reason: str = ""
    retry_after: float | None = None
    failover: bool = False


class UrlPool:
    """Round-robin over base URLs; a URL marked down is skipped until its cooldown ends."""

    def __init__(self, urls: Sequence[str], cooldown_s: float) -> None:
        self.urls = tuple(urls)
        self._cooldown_s = cooldown_s
        self._down_until = [0.0] * len(self.urls)
        self._next = 0
        self._lock = threading.Lock()

    def pick(self, avoid: str | None = None) -> str:
        """The next live URL other than `avoid`; if none, the one that comes back soonest."""
        with self._lock:
            now, n = time.monotonic(), len(self.urls)
            order = [(self._next + i) % n for i in range(n)]
            live = [i for i in order if self._down_until[i] <= now]
            preferred = [i for i in live if self.urls[i] != avoid] or live
            index = preferred[0] if preferred else min(order, key=self._down_until.__getitem__)
            self._next = index + 1
            return self.urls[index]

    def mark_down(self, url: str) -> None:
        with self._lock:
            self._down_until[self.urls.index(url)] = time.monotonic() + self._cooldown_s

    def mark_up(self, url: str) -> None:
        with self._lock:
            self._down_until[self.urls.index(url)] = 0.0

    def has_live_other(self, url: str) -> bool:
        """Whether some URL other than `url` is not in cooldown (so failing over needs no wait)."""
        with self._lock:
            now = time.monotonic()
            return any(u != url and t <= now for u, t in zip(self.urls, self._down_until, strict=True))


def retry_after_s(response: httpx.Response) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def one_line(text: str, limit: int = 200) -> str:
    """Collapse whitespace and cut, so a server's error body fits in Completion.error."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
