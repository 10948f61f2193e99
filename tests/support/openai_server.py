"""A loopback OpenAI-compatible HTTP server for tests (stdlib only, 127.0.0.1 on a free port).

It serves ``GET /v1/models`` and ``POST /v1/chat/completions`` with deterministic text made from the
prompt, and records what the engine under test did: request counts, the most requests in flight at
once, Authorization headers and request bodies. Knobs inject failures (the next N chat requests
answer 429/503/... or drop the connection), delays, an API key to enforce, and a context length
(``max_context``, in words) past which a prompt gets vLLM's 400 answer.

    with LoopbackOpenAIServer(models=("tiny",)) as server:
        engine = create(model="tiny", options={"base_url": server.base_url}, seed=0)
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

DEFAULT_MODEL = "molspec-test-model"


def reply_text(body: dict[str, Any]) -> str:
    """The full reply for a chat body: a CRC of the messages, then the last message's words."""
    messages = body.get("messages") or [{}]
    crc = zlib.crc32(json.dumps(messages, sort_keys=True).encode())
    last = str(messages[-1].get("content", ""))
    return f"reply {crc:08x} seed {body.get('seed')}: {last}"


def cut(text: str, body: dict[str, Any]) -> tuple[str, str]:
    """Apply the body's stop strings, then max_tokens (one token = one word); return text and finish."""
    for stop in body.get("stop") or []:
        if stop and stop in text:
            text = text[: text.index(stop)]
    words = text.split()
    limit = int(body.get("max_tokens") or 1 << 30)
    if len(words) > limit:
        return " ".join(words[:limit]), "length"
    return text, "stop"


def dead_url() -> str:
    """A base URL on which nothing listens (a port just released), so connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class _State:
    """What the handlers share: knobs (set by tests) and records (read by tests), under one lock."""

    def __init__(self, models: Sequence[str], api_key: str | None, delay_s: float, jitter_s: float) -> None:
        self.lock = threading.Lock()
        self.models = list(models)
        self.api_key = api_key
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.failures: list[tuple[int, float | None]] = []  # (status, retry_after); status 0 = drop
        self.error_echoes_auth = False
        self.max_context: int | None = None  # prompt words a request may hold (None: no limit)
        self.reply: Callable[[dict[str, Any]], str] | None = None  # the reply's text (None: `reply_text`)
        self.chat_requests = 0
        self.model_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.authorizations: list[str | None] = []
        self.bodies: list[dict[str, Any]] = []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would hold the body
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        state = self.server.state
        with state.lock:
            state.model_requests += 1
            state.authorizations.append(self.headers.get("Authorization"))
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/v1/models":
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        data = [{"id": m, "object": "model", "owned_by": "molspec-tests"} for m in state.models]
        self._json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        state = self.server.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with state.lock:
            state.chat_requests += 1
            state.authorizations.append(self.headers.get("Authorization"))
            state.bodies.append(body)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            failure = state.failures.pop(0) if state.failures else None
        try:
            self._chat(body, failure)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _chat(self, body: dict[str, Any], failure: tuple[int, float | None] | None) -> None:
        state = self.server.state
        time.sleep(state.delay_s + (random.uniform(0, state.jitter_s) if state.jitter_s else 0.0))
        if failure is not None:
            self._fail(*failure)
            return
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if body.get("model") not in state.models:
            self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
            return
        words = prompt_words(body)
        if state.max_context is not None and words > state.max_context:
            message = (f"This model's maximum context length is {state.max_context} tokens. However, your "
                       f"request has {words} input tokens. Please reduce the length of the input messages.")
            self._json(400, {"error": {"message": message, "type": "BadRequestError", "code": 400}})
            return
        self._json(200, completion_json(body, state.reply))

    def _fail(self, status: int, retry_after: float | None) -> None:
        if status == 0:
            self.close_connection = True  # hang up without a response
            return
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        message = "injected failure"
        if self.server.state.error_echoes_auth:  # a careless server that echoes the key back
            message += f" (auth: {self.headers.get('Authorization')})"
        self._json(status, {"error": {"message": message}}, headers)

    def _authorised(self) -> bool:
        key = self.server.state.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, {"error": {"message": "invalid API key"}})
        return False

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def prompt_words(body: dict[str, Any]) -> int:
    """The prompt's length as this server counts tokens: words of every message."""
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))


def completion_json(body: dict[str, Any], reply: Callable[[dict[str, Any]], str] | None = None) -> dict[str, Any]:
    """An OpenAI chat.completion object answering `body` (with `reply`'s text, if given)."""
    text, finish = cut((reply or reply_text)(body), body)
    prompt_tokens = prompt_words(body)
    completion_tokens = len(text.split())
    return {
        "id": f"chatcmpl-{zlib.crc32(text.encode()):08x}", "object": "chat.completion",
        "created": int(time.time()), "model": body.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connect at once; the default backlog of 5 drops SYNs

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.state.lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.state.lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def hang_up_all(self) -> None:
        """Close kept-alive connections too, so a stopped server looks dead to its clients."""
        with self.state.lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class LoopbackOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 for the length of a `with` block (or start()/stop()).

    Args:
        models: the model ids it serves (and accepts in chat requests).
        api_key: if set, requests without ``Authorization: Bearer <api_key>`` get 401.
        delay_s: seconds each chat request takes; jitter_s adds a uniform random extra.
    """

    def __init__(self, models: Sequence[str] = (DEFAULT_MODEL,), api_key: str | None = None,
                 delay_s: float = 0.0, jitter_s: float = 0.0) -> None:
        self.state = _State(models, api_key, delay_s, jitter_s)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> LoopbackOpenAIServer:
        self._server = _Server(self.state)
        # a short poll interval makes stop() quick (serve_forever checks for shutdown between polls)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        name="loopback-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.hang_up_all()
            self._server = None

    def fail_next(self, n: int, status: int = 503, retry_after: float | None = None) -> None:
        """The next `n` chat requests answer `status` (0: close the connection without answering)."""
        with self.state.lock:
            self.state.failures.extend([(status, retry_after)] * n)

    def set(self, **knobs: Any) -> None:
        """Change knobs while running: delay_s, jitter_s, api_key, models, error_echoes_auth, max_context, reply."""
        with self.state.lock:
            for name, value in knobs.items():
                if not hasattr(self.state, name):
                    raise AttributeError(f"unknown knob {name}")
                setattr(self.state, name, value)

    @property
    def chat_requests(self) -> int:
        return self.state.chat_requests

    @property
    def max_in_flight(self) -> int:
        return self.state.max_in_flight

    @property
    def authorizations(self) -> list[str | None]:
        return list(self.state.authorizations)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return list(self.state.bodies)

    def __enter__(self) -> LoopbackOpenAIServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
