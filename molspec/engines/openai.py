"""The openai engine: any OpenAI-compatible chat server (`vllm serve`, SGLang, llama.cpp `llama-server`).

Requests go to ``POST {base}/chat/completions`` through one `httpx.Client` shared by a thread pool of
``concurrency`` workers, so at most that many requests are in flight (across all `generate` calls).
Several base URLs are used round-robin; a URL that refuses connections is skipped for a while and
its requests fail over to the others. 429, 5xx and dropped connections are retried with exponential
backoff and jitter (honouring ``Retry-After``). A request that still fails becomes an error
`Completion`; only a server that never answers (or a missing model at start) raises `EngineError`.

Options (all optional), as given in the spec's model block or on the command line:
    base_url / base_urls: one URL or a list; default ``$OPENAI_BASE_URL`` or ``http://127.0.0.1:8000/v1``.
    api_key_env: the environment variable holding the API key (default ``OPENAI_API_KEY``; unset = no key).
    concurrency: requests in flight at most (default 32).
    max_retries: retries of one request after the first try (default 5).
    backoff_s / max_backoff_s: first retry delay and the cap on any delay (default 0.5 s / 60 s).
    timeout_s / connect_timeout_s: per-request read and connect timeouts (default 600 s / 10 s).
    cooldown_s: how long a URL that refused a connection is skipped (default 10 s).
    check_model: list ``GET {base}/models`` at start and check the model is served (default true).
    extra_body: extra JSON fields for every request (e.g. ``{"top_k": 20}`` for vLLM).
    continuation: how a started reply (a bond's lead) is continued: ``"fields"`` (default) sends
        ``continue_final_message``, which vLLM and SGLang honour; ``"prompt"`` asks for the continuation in
        words, for servers that would answer a new turn instead (OpenAI's API, most hosted ones; prefill.py).
The API key never appears in `describe()`, `repr()`, logs or error messages.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from molspec.engines.base import Completion, EngineError, FinishReason, Request, starts_reply
from molspec.engines.common import closed_error, describe, failed, seed_of
from molspec.engines.failover import Attempt, UrlPool, one_line, retry_after_s
from molspec.engines.options import OpenAIOptions
from molspec.engines.options import parse_options as _parse
from molspec.engines.prefill import as_instruction, continuation
from molspec.engines.redact import public_url, redact

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "tool_calls": "stop",
    "function_call": "stop",
    "length": "length",
    "max_tokens": "length",
}


def parse_options(options: Mapping[str, Any]) -> OpenAIOptions:
    """Validate engine options (`OpenAIOptions`); unknown names are refused so that typos do not pass silently."""
    validated: OpenAIOptions = _parse("openai", OpenAIOptions, options)
    return validated


def unreachable_message(urls: Sequence[str], reason: str) -> str:
    """The one-paragraph EngineError for a server that cannot be reached at all."""
    where = ", ".join(public_url(u) for u in urls)
    return (
        f"openai engine: cannot reach an OpenAI-compatible server at {where} ({reason}). Start one, e.g. "
        "`vllm serve Qwen/Qwen2.5-0.5B-Instruct --port 8000` (or SGLang, or llama.cpp `llama-server`), "
        "and point molspec at it with the engine option base_url (or base_urls for several servers) or "
        "the OPENAI_BASE_URL environment variable."
    )


class OpenAIEngine:
    """An `Engine` over one or more OpenAI-compatible servers (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        model: str,
        options: OpenAIOptions,
        seed: int,
        api_key: str | None,
        pool: UrlPool | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.model = model
        self.options = options
        self.seed = seed
        self._api_key = api_key
        self._pool = pool or UrlPool(options.base_urls, options.cooldown_s)
        self._client = client or make_client(options, api_key)
        self._executor = ThreadPoolExecutor(options.concurrency, thread_name_prefix="molspec-openai")
        self._answered = False  # set once any chat request got an HTTP response
        self._gave_up_unreached = False  # set when a request gave up on connection failures
        self._closed = False

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """One completion per request, in request order; at most `concurrency` in flight."""
        if self._closed:
            raise closed_error(self.name)
        if not requests:
            return []
        results = list(self._executor.map(self._run_one, requests))
        if not self._answered and self._gave_up_unreached:
            reasons = {c.error for c in results if c.error}
            raise EngineError(unreachable_message(self.options.base_urls, "; ".join(sorted(reasons))[:300]))
        return results

    def describe(self) -> dict[str, Any]:
        """Build metadata: model and options, with URLs stripped of credentials and no API key."""
        options = self.options.model_dump() | {"base_urls": [public_url(u) for u in self.options.base_urls]}
        return describe(self.name, self.model, options, secrets=[self._api_key])

    def close(self) -> None:
        """Stop the worker threads and close connections; safe to call twice."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def __repr__(self) -> str:
        urls = ", ".join(public_url(u) for u in self.options.base_urls)
        return f"OpenAIEngine(model={self.model!r}, base_urls=[{urls}])"

    def _body(self, request: Request) -> dict[str, Any]:
        """The JSON body; without a per-request seed, derive one from the engine seed and the key."""
        p = request.params
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "seed": seed_of(request, self.seed),
        }
        if p.stop:
            body["stop"] = list(p.stop)
        if p.choices:  # vLLM's OpenAI server: constrained decoding to one of the strings
            body["structured_outputs"] = {"choice": list(p.choices)}
        if p.logprobs > 0:
            body["logprobs"], body["top_logprobs"] = True, p.logprobs
        if self._asks_in_words(request):
            body["messages"] = as_instruction(request.messages)
        elif starts_reply(request.messages):
            # A started reply is continued, not answered: vLLM and SGLang need these two fields (llama.cpp's
            # server continues a final assistant message by itself); a server that ignores them answers anew.
            body["continue_final_message"], body["add_generation_prompt"] = True, False
        body.update(self.options.extra_body)
        return body

    def _asks_in_words(self, request: Request) -> bool:
        """A started reply sent as text to continue (`continuation = "prompt"`, engines/prefill.py)."""
        return self.options.continuation == "prompt" and starts_reply(request.messages)

    def _delay(self, attempt: int, asked: float | None) -> float:
        """Exponential backoff with jitter (half fixed, half random), or the server's Retry-After."""
        if asked is not None:
            return min(asked, self.options.max_backoff_s)
        ceiling = min(self.options.backoff_s * 2.0**attempt, self.options.max_backoff_s)
        return ceiling * (0.5 + random.random() / 2)

    def _run_one(self, request: Request) -> Completion:
        """Send one request, retrying and failing over; never raises."""
        try:
            return self._send_with_retries(request)
        except Exception as exc:  # one bad request must not sink the batch
            return self._error(request, f"{type(exc).__name__}: {exc}")

    def _send_with_retries(self, request: Request) -> Completion:
        body, url = self._body(request), None
        retries, failovers = 0, len(self._pool.urls) - 1
        while True:
            url = self._pool.pick(avoid=url)
            attempt = self._attempt(url, body, request)
            if attempt.completion is not None:
                return attempt.completion
            if attempt.failover and failovers > 0 and self._pool.has_live_other(url):
                failovers -= 1  # a lost connection fails over at once, without spending a retry
                continue
            if retries >= self.options.max_retries:
                self._gave_up_unreached |= attempt.failover
                return self._error(request, f"gave up after {retries + 1} attempt(s): {attempt.reason}")
            time.sleep(self._delay(retries, attempt.retry_after))
            retries += 1

    def _attempt(self, url: str, body: dict[str, Any], request: Request) -> Attempt:
        """One POST: a final Completion, or why it should be retried."""
        try:
            response = self._client.post(f"{url}/chat/completions", json=body)
        except httpx.TransportError as exc:
            if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                self._pool.mark_down(url)  # refused or unroutable: skip this URL for a while
            reason = f"{public_url(url)}: {type(exc).__name__}: {one_line(str(exc))}"
            return Attempt(reason=reason, failover=True)
        self._answered = True
        if response.status_code in RETRY_STATUS:
            reason = f"{public_url(url)}: HTTP {response.status_code} {one_line(response.text)}".rstrip()
            return Attempt(reason=reason, retry_after=retry_after_s(response))
        self._pool.mark_up(url)
        if response.status_code != 200:
            reason = f"{public_url(url)}: HTTP {response.status_code} {one_line(response.text)}".rstrip()
            return Attempt(completion=self._error(request, reason))
        return Attempt(completion=self._parse(request, response))

    def _parse(self, request: Request, response: httpx.Response) -> Completion:
        """Map an OpenAI chat response onto a Completion."""
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice.get("message", {}).get("content") or ""
            if self._asks_in_words(request):
                text = continuation(request.messages[-1].get("content", ""), text)
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            reason = f"malformed response ({type(exc).__name__}): {one_line(response.text)}"
            return self._error(request, reason)
        raw_finish = choice.get("finish_reason") or "stop"
        finish = FINISH_REASONS.get(raw_finish)
        if finish is None:
            return self._error(request, f"the server ended the request with finish_reason '{raw_finish}'")
        n_tokens = usage.get("completion_tokens")
        return Completion(
            key=request.key,
            text=text,
            finish_reason=finish,
            n_tokens=int(n_tokens) if n_tokens is not None else len(text.split()),
            prompt_tokens=usage.get("prompt_tokens"),
            top_logprobs=_first_logprobs(choice),
        )

    def _error(self, request: Request, reason: str) -> Completion:
        return failed(request.key, redact(f"openai: {one_line(reason, 400)}", [self._api_key]))


def _first_logprobs(choice: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    """`choices[0].logprobs.content[0].top_logprobs` of a chat response, best first ((), if absent)."""
    try:
        first = (choice.get("logprobs") or {}).get("content") or []
        top = first[0].get("top_logprobs") or [] if first else []
        pairs = [(str(t["token"]), float(t["logprob"])) for t in top]
    except (AttributeError, KeyError, TypeError, ValueError):
        return ()
    return tuple(sorted(pairs, key=lambda p: -p[1]))


def make_client(options: OpenAIOptions, api_key: str | None) -> httpx.Client:
    """One client for all workers; its pool holds one connection per worker."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
    timeout = httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s)
    return httpx.Client(headers=headers, limits=limits, timeout=timeout)


def read_api_key(options: OpenAIOptions, explicit: bool) -> str | None:
    """The key from the named environment variable; an explicitly named but unset variable is an error."""
    key = os.environ.get(options.api_key_env) or None
    if key is None and explicit:
        raise EngineError(
            f"openai engine: option api_key_env names ${options.api_key_env}, but it is not "
            "set; export the API key in that variable (or drop the option for a server without "
            "a key)"
        )
    return key


def list_models(client: httpx.Client, url: str) -> list[str] | None:
    """The model ids a server lists, or None if it has no /models endpoint. Raises EngineError on 401/403."""
    response = client.get(f"{url}/models", timeout=client.timeout.connect or 10.0)
    if response.status_code in (401, 403):
        raise EngineError(
            f"openai engine: the server at {public_url(url)} refused to list models "
            f"(HTTP {response.status_code}); put the right API key in the environment variable "
            "named by the engine option api_key_env (default OPENAI_API_KEY)"
        )
    if response.status_code != 200:
        return None
    return [str(m.get("id")) for m in response.json().get("data", []) if isinstance(m, Mapping)]


def resolve_model(model: str | None, served: dict[str, list[str] | None]) -> str:
    """Check that every reachable server serves `model`; with no model, take the only one served."""
    for url, ids in served.items():
        if ids is None:
            log.warning("openai engine: %s does not list its models; not checking the model", public_url(url))
            continue
        if model is None and len(ids) == 1:
            model = ids[0]
        if model is None or model not in ids:
            wanted = f"model '{model}' is not served" if model else "no model was named and several are"
            raise EngineError(
                f"openai engine: {wanted} by {public_url(url)}; it serves: "
                f"{', '.join(ids) or '(nothing)'}. Name one of those as the model, or start "
                f"the server with the model you want (`vllm serve {model or 'MODEL'}`)."
            )
    if model is None:
        raise EngineError(
            "openai engine: no model was named and the server does not list its models; "
            "name the model (`--model` or `name = ...` in the spec's model block)"
        )
    return model


def check_servers(model: str | None, options: OpenAIOptions, client: httpx.Client, pool: UrlPool) -> str:
    """Ask each server for its models; unreachable ones are marked down, all unreachable is an error."""
    served: dict[str, list[str] | None] = {}
    failures: list[str] = []
    for url in options.base_urls:
        try:
            served[url] = list_models(client, url)
        except httpx.TransportError as exc:
            pool.mark_down(url)
            failures.append(f"{public_url(url)}: {type(exc).__name__}")
        except ValueError as exc:  # a 200 whose body is not JSON
            served[url] = None
            log.warning("openai engine: %s returned an unreadable model list (%s)", public_url(url), exc)
    if not served:
        raise EngineError(unreachable_message(options.base_urls, "; ".join(failures)))
    for failure in failures:
        log.warning("openai engine: %s is unreachable; using the other servers", failure)
    return resolve_model(model, served)


def create(model: str | None, options: Mapping[str, Any], seed: int) -> OpenAIEngine:
    """Factory used by `molspec.engines.create`.

    Raises:
        EngineError: bad options, no server reachable, or the model is not served.
    """
    opts = parse_options(options)
    api_key = read_api_key(opts, explicit="api_key_env" in options)
    pool = UrlPool(opts.base_urls, opts.cooldown_s)
    client = make_client(opts, api_key)
    try:
        if opts.check_model:
            model = check_servers(model, opts, client, pool)
        elif model is None:
            raise EngineError("openai engine: name the model (`--model`, or `name = ...` in the spec's model block)")
    except BaseException:
        client.close()
        raise
    return OpenAIEngine(model=model, options=opts, seed=seed, api_key=api_key, pool=pool, client=client)
