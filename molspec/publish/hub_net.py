"""Talking to the Hub without hanging: timeouts on every request, retries of transient failures, clear errors.

huggingface_hub's shared HTTP client has no timeout, and several `HfApi` calls even pass ``timeout=None``
per request, so a server that accepts the connection and never answers hangs `molspec push` forever.
`bounded_session` installs, for the length of a push, a client whose request hook fills in every timeout
a request leaves unset (connect, read, write, pool). `with_retries` retries what is transient (timeouts,
dropped connections, 408/412/429/5xx) with exponential backoff, then raises one `PushError` that says
what happened, that the local build is intact, and the command that retries it.

Timeouts: ``MOLSPEC_HUB_TIMEOUT`` (seconds without an answer, default 120) and
``MOLSPEC_HUB_CONNECT_TIMEOUT`` (default 10), or `HubTimeouts` passed to `push()`.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from huggingface_hub import constants, set_client_factory
from huggingface_hub.errors import HfHubHTTPError

from molspec.diagnostics import PlainError
from molspec.engines.redact import redact

log = logging.getLogger(__name__)

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# 412: someone committed between our read and our commit; re-reading the remote and retrying is the fix.
RETRY_STATUS = TRANSIENT_STATUS | {412}
AUTH_STATUS = frozenset({401, 403})
TIMEOUT_ENV, CONNECT_TIMEOUT_ENV = "MOLSPEC_HUB_TIMEOUT", "MOLSPEC_HUB_CONNECT_TIMEOUT"
DEFAULT_READ_S, DEFAULT_CONNECT_S = 120.0, 10.0  # a big commit can take the Hub a minute to answer


class PushError(PlainError):
    """Publishing failed or was refused; the message says why and what to do next (never the token)."""

    code = "MOL720"


@dataclass(frozen=True, slots=True)
class HubTimeouts:
    """Seconds a Hub request may take to connect, and to get each answer (or send each chunk)."""

    read_s: float = DEFAULT_READ_S
    connect_s: float = DEFAULT_CONNECT_S

    @staticmethod
    def from_env() -> HubTimeouts:
        """From MOLSPEC_HUB_TIMEOUT / MOLSPEC_HUB_CONNECT_TIMEOUT, else the defaults.

        Raises:
            PushError: a variable that is not a positive number of seconds.
        """
        return HubTimeouts(_seconds(TIMEOUT_ENV, DEFAULT_READ_S), _seconds(CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_S))

    def as_extension(self) -> dict[str, float]:
        """The per-request timeout extension of httpx."""
        return {"connect": self.connect_s, "read": self.read_s, "write": self.read_s, "pool": self.connect_s}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often to try and how long to wait between tries (1, 2, 4 s ... capped)."""

    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float

    def delay(self, attempt: int) -> float:
        return min(self.backoff_base_s * 2.0 ** (attempt - 1), self.backoff_max_s)


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise PushError(f"{name} must be a positive number of seconds, got {raw!r}")
    return float(value)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level exception types of the HTTP stack huggingface_hub uses (httpx2, httpx, requests)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "ConnectionError")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _timeout_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [TimeoutError]
    for module, name in (("httpx2", "TimeoutException"), ("httpx", "TimeoutException"), ("requests", "Timeout")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()
TIMEOUT_ERRORS = _timeout_errors()


# --------------------------------------------------------------------------------------------------
# Timeouts
# --------------------------------------------------------------------------------------------------


def _fill_timeouts(limits: dict[str, float]) -> Callable[[Any], None]:
    """A request hook that sets every timeout the request left unset (None means "wait forever")."""

    def hook(request: Any) -> None:
        current = request.extensions.get("timeout") or {}
        filled = {key: current.get(key) if current.get(key) is not None else limit for key, limit in limits.items()}
        request.extensions = {**request.extensions, "timeout": filled}

    return hook


def _current_factory() -> Callable[[], Any]:
    # huggingface_hub has a setter for the client factory but no getter; read it to restore it afterwards.
    from huggingface_hub.utils import _http

    factory: Callable[[], Any] = getattr(_http, "_GLOBAL_CLIENT_FACTORY", _http.default_client_factory)
    return factory


@contextmanager
def bounded_session(timeouts: HubTimeouts) -> Iterator[None]:
    """Every huggingface_hub request in the block gets `timeouts` where it has none (restored afterwards).

    A factory, not a patch of the current client: huggingface_hub closes and recreates its client after a
    connection error, and the new one must be bounded too.
    """
    previous = _current_factory()
    hook = _fill_timeouts(timeouts.as_extension())

    def factory() -> Any:
        client = previous()
        client.event_hooks = {**client.event_hooks, "request": [*client.event_hooks.get("request", []), hook]}
        return client

    set_client_factory(factory)
    try:
        yield
    finally:
        set_client_factory(previous)


# --------------------------------------------------------------------------------------------------
# Retries and the final error
# --------------------------------------------------------------------------------------------------


def status_of(err: BaseException) -> int | None:
    response = getattr(err, "response", None) if isinstance(err, HfHubHTTPError) else None
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(err: BaseException) -> bool:
    if isinstance(err, HfHubHTTPError):
        return status_of(err) in RETRY_STATUS
    return isinstance(err, TRANSPORT_ERRORS)


def with_retries(attempt: Callable[[], T], policy: RetryPolicy, timeouts: HubTimeouts, build_dir: Path,
                 retry_cmd: str, secrets: Iterable[str | None]) -> tuple[T, int]:
    """Run `attempt` until it succeeds, retrying transient Hub/network failures with exponential backoff.

    Raises:
        PushError: a refusal (at once), or the last transient failure once `policy` is spent.
    """
    hidden = tuple(secrets)
    for number in range(1, policy.max_attempts + 1):
        try:
            return attempt(), number
        except PushError:
            raise
        except Exception as err:  # noqa: BLE001 - every failure becomes a PushError below
            reason = redact(f"{type(err).__name__}: {err}", hidden)
            if not is_transient(err):
                raise PushError(refused_message(err, reason, build_dir, retry_cmd)) from None
            if number == policy.max_attempts:
                raise PushError(*gave_up_message(err, reason, policy, timeouts, build_dir, retry_cmd)) from None
            delay = policy.delay(number)
            log.warning("push attempt %d/%d failed (%s); retrying in %.1f s", number, policy.max_attempts, reason,
                        delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def refused_message(err: BaseException, reason: str, build_dir: Path, retry_cmd: str) -> str:
    hint = ""
    if status_of(err) in AUTH_STATUS:
        hint = (" The token was not accepted for this repo: set HF_TOKEN to a token with write access, "
                "or run `hf auth login` again.")
    return (f"the Hub refused the push ({reason}).{hint} The local dataset is intact at {build_dir}; "
            f"fix the cause and retry with: {retry_cmd}")


def gave_up_message(err: BaseException, reason: str, policy: RetryPolicy, timeouts: HubTimeouts, build_dir: Path,
                    retry_cmd: str) -> tuple[str, str]:
    """(what happened, what to do): the error's message and its help line."""
    if isinstance(err, TIMEOUT_ERRORS):
        what = (f"the Hub at {constants.ENDPOINT} did not answer within the timeout ({timeouts.connect_s:g} s to "
                f"connect, {timeouts.read_s:g} s to answer) in {policy.max_attempts} attempts (last error: "
                f"{reason}). If the Hub is only slow, raise {TIMEOUT_ENV} (seconds).")
    else:
        what = f"could not reach the Hub after {policy.max_attempts} attempts (last error: {reason})."
    return what, f"the local dataset is intact at {build_dir}; retry with: {retry_cmd}"
