"""The openai engine against a real HTTP server on loopback: order, concurrency, retries, failover,
secrets, and the start-up checks."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import molspec.engines
from molspec.engines import Completion, EngineError, Request, SamplingParams
from molspec.engines.openai import OpenAIEngine, parse_options
from tests.engines_http.conftest import FAST, EngineFactory, requests
from tests.support.openai_server import DEFAULT_MODEL, LoopbackOpenAIServer, dead_url

SECRET = "sk-molspec-test-9f8e7d6c5b4a"


def assert_ok(completions: list[Completion], n: int) -> None:
    assert len(completions) == n
    assert [c.finish_reason for c in completions] == ["stop"] * n, [c.error for c in completions]


# --- the happy path -------------------------------------------------------------------------------


def test_batch_comes_back_in_request_order(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    server.set(jitter_s=0.02)  # replies finish out of order
    engine = make_engine(base_url=server.base_url, concurrency=8)
    out = engine.generate(requests(40))
    assert_ok(out, 40)
    for i, completion in enumerate(out):
        assert completion.key == f"{i}:0"
        assert completion.text.endswith(f"question number {i}")


def test_completion_fields_come_from_the_response(server: LoopbackOpenAIServer,
                                                  make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url)
    [full] = engine.generate(requests(1))
    assert full.n_tokens == len(full.text.split()) and full.prompt_tokens == 3
    [cut] = engine.generate(requests(1, max_tokens=2))
    assert (cut.finish_reason, cut.n_tokens, cut.text) == ("length", 2, " ".join(full.text.split()[:2]))


def test_sampling_params_seed_and_extra_body_are_sent(server: LoopbackOpenAIServer,
                                                      make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url, seed=7, extra_body={"top_k": 20}, concurrency=1)
    [with_seed] = requests(1, temperature=0.3, top_p=0.9, seed=1234, stop=("number",))
    engine.generate([with_seed, *requests(2)])
    first, derived_a, derived_b = server.bodies
    assert first["model"] == DEFAULT_MODEL and first["messages"] == [dict(with_seed.messages[0])]
    assert (first["temperature"], first["top_p"], first["seed"]) == (0.3, 0.9, 1234)
    assert first["stop"] == ["number"]
    assert first["top_k"] == 20 and first["max_tokens"] == 64
    # without a per-request seed, one is derived from the engine seed and the key: stable, and per request
    assert isinstance(derived_a["seed"], int) and derived_a["seed"] != derived_b["seed"]
    again = make_engine(base_url=server.base_url, seed=7)
    again.generate(requests(1))
    assert server.bodies[-1]["seed"] == derived_a["seed"]


def test_a_started_reply_is_sent_to_be_continued(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url, concurrency=1)
    user = {"role": "user", "content": "What is 2 + 2?"}
    started = Request("s", (user, {"role": "assistant", "content": "Next,"}), SamplingParams(stop=("\n\n",)))
    engine.generate([started, Request("a", (user,), SamplingParams())])
    continued, asked = server.bodies
    assert continued["messages"][-1] == {"role": "assistant", "content": "Next,"}
    assert (continued["continue_final_message"], continued["add_generation_prompt"]) == (True, False)
    assert "continue_final_message" not in asked and "add_generation_prompt" not in asked


def answers_anew(body: dict[str, Any]) -> str:
    """A server without prefill: whatever the messages end with, a new turn that repeats the lead first."""
    return "Next, we add 2 and 2 to get 4."


def test_a_started_reply_can_be_asked_for_in_words(server: LoopbackOpenAIServer,
                                                    make_engine: EngineFactory) -> None:
    server.set(reply=answers_anew)
    engine = make_engine(base_url=server.base_url, concurrency=1, continuation="prompt")
    user = {"role": "user", "content": "What is 2 + 2?"}
    started = Request("s", (user, {"role": "assistant", "content": "The sum is small.\n\nNext,"}),
                      SamplingParams(stop=("\n\n",)))
    [step, answer] = engine.generate([started, Request("a", (user,), SamplingParams())])
    sent, asked = server.bodies
    # one user turn: the question, the request to continue, and the started text; no prefill fields
    assert [m["role"] for m in sent["messages"]] == ["user"]
    content = sent["messages"][0]["content"]
    assert content.startswith("What is 2 + 2?\n\nContinue the text below") and content.endswith("small.\n\nNext,")
    assert "continue_final_message" not in sent and "add_generation_prompt" not in sent
    # the lead the server repeated is dropped, and the step reads on from it
    assert step.text == " we add 2 and 2 to get 4."
    assert answer.text == "Next, we add 2 and 2 to get 4." and asked["messages"] == [user]


def test_a_server_that_ignores_the_prefill_fields_answers_anew(server: LoopbackOpenAIServer,
                                                               make_engine: EngineFactory) -> None:
    """What `continuation = "prompt"` is for: with the default, such a server's reply repeats the lead."""
    server.set(reply=answers_anew)
    engine = make_engine(base_url=server.base_url)
    user = {"role": "user", "content": "What is 2 + 2?"}
    [step] = engine.generate([Request("s", (user, {"role": "assistant", "content": "Next,"}), SamplingParams())])
    assert step.text == "Next, we add 2 and 2 to get 4."


def test_continuation_must_be_fields_or_prompt() -> None:
    with pytest.raises(EngineError, match="continuation"):
        parse_options({"continuation": "guess"})


def test_empty_batch(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    assert make_engine(base_url=server.base_url).generate([]) == []


def test_created_through_the_registry(server: LoopbackOpenAIServer) -> None:
    engine = molspec.engines.create("openai", DEFAULT_MODEL, {"base_url": server.base_url}, seed=0)
    try:
        assert isinstance(engine, molspec.engines.Engine) and engine.name == "openai"
        assert_ok(engine.generate(requests(3)), 3)
    finally:
        engine.close()


def test_no_model_named_takes_the_only_one_served(server: LoopbackOpenAIServer,
                                                  make_engine: EngineFactory) -> None:
    assert make_engine(model=None, base_url=server.base_url).model == DEFAULT_MODEL


# --- concurrency -------------------------------------------------------------------------------


def test_concurrency_bound_is_honoured(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    server.set(delay_s=0.03)
    engine = make_engine(base_url=server.base_url, concurrency=4)
    # two callers at once: the bound is per engine, not per generate() call
    threads = [threading.Thread(target=engine.generate, args=(requests(16),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.chat_requests == 32
    assert server.max_in_flight == 4


def test_requests_run_concurrently(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    server.set(delay_s=0.1)
    engine = make_engine(base_url=server.base_url, concurrency=32)
    start = time.perf_counter()
    assert_ok(engine.generate(requests(32)), 32)
    assert time.perf_counter() - start < 2.5  # one at a time would take 3.2 s
    assert server.max_in_flight > 8


# --- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_status_is_retried_then_succeeds(status: int, server: LoopbackOpenAIServer,
                                                   make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url, concurrency=1)
    server.fail_next(3, status)
    out = engine.generate(requests(4))
    assert_ok(out, 4)
    assert server.chat_requests == 7


def test_dropped_connection_is_retried(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url, concurrency=1)
    server.fail_next(2, status=0)
    assert_ok(engine.generate(requests(3)), 3)
    assert server.chat_requests == 5


def test_retry_after_is_honoured(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url, backoff_s=0.0, max_backoff_s=5.0)
    server.fail_next(1, 429, retry_after=0.4)
    start = time.perf_counter()
    assert_ok(engine.generate(requests(1)), 1)
    assert time.perf_counter() - start >= 0.4


def test_retry_after_is_capped_by_max_backoff(server: LoopbackOpenAIServer,
                                              make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url, max_backoff_s=0.05)
    server.fail_next(1, 503, retry_after=30)
    start = time.perf_counter()
    assert_ok(engine.generate(requests(1)), 1)
    assert time.perf_counter() - start < 5


def test_gives_up_with_an_error_completion(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url, concurrency=1, max_retries=2)
    server.fail_next(3, 503)
    failed, ok = engine.generate(requests(2))
    assert failed.finish_reason == "error" and failed.text == "" and failed.n_tokens == 0
    assert failed.error is not None and "\n" not in failed.error
    assert "gave up after 3 attempt(s)" in failed.error and "HTTP 503" in failed.error
    assert ok.finish_reason == "stop"
    assert server.chat_requests == 4


def test_client_error_is_not_retried(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url)
    server.set(models=["something-else"])  # the model was checked at start; now the server drops it
    [out] = engine.generate(requests(1))
    assert out.finish_reason == "error" and "HTTP 404" in (out.error or "")
    assert server.chat_requests == 1


# --- several servers ---------------------------------------------------------------------------


def test_two_base_urls_share_the_load(make_engine: EngineFactory) -> None:
    with LoopbackOpenAIServer() as a, LoopbackOpenAIServer() as b:
        engine = make_engine(base_urls=[a.base_url, b.base_url], concurrency=1)
        assert_ok(engine.generate(requests(20)), 20)
        assert (a.chat_requests, b.chat_requests) == (10, 10)


def test_dead_url_at_start_is_skipped(server: LoopbackOpenAIServer, make_engine: EngineFactory,
                                      caplog: pytest.LogCaptureFixture) -> None:
    dead = dead_url()
    engine = make_engine(base_urls=[dead, server.base_url], concurrency=4)
    assert "unreachable" in caplog.text and dead in caplog.text
    assert_ok(engine.generate(requests(12)), 12)
    assert server.chat_requests == 12


def test_url_that_dies_fails_over_without_spending_retries(server: LoopbackOpenAIServer,
                                                           make_engine: EngineFactory) -> None:
    # check_model off: the dead URL is only discovered by chat requests
    engine = make_engine(base_urls=[dead_url(), server.base_url], check_model=False, max_retries=0)
    assert_ok(engine.generate(requests(10)), 10)
    assert server.chat_requests == 10


def test_server_that_goes_away_mid_run_fails_over(make_engine: EngineFactory) -> None:
    with LoopbackOpenAIServer() as survivor:
        doomed = LoopbackOpenAIServer().start()
        engine = make_engine(base_urls=[doomed.base_url, survivor.base_url], concurrency=2)
        assert_ok(engine.generate(requests(4)), 4)
        doomed.stop()
        before = survivor.chat_requests
        assert_ok(engine.generate(requests(10)), 10)
        assert survivor.chat_requests - before == 10


# --- unreachable servers and start-up checks -----------------------------------------------------


def test_unreachable_at_start_is_an_engine_error(make_engine: EngineFactory) -> None:
    dead = dead_url()
    with pytest.raises(EngineError) as info:
        make_engine(base_url=dead)
    assert dead in info.value.message and "vllm serve" in info.value.message


def test_unreachable_for_the_whole_first_batch_is_an_engine_error(make_engine: EngineFactory) -> None:
    dead = dead_url()
    engine = make_engine(base_url=dead, check_model=False, max_retries=1)
    with pytest.raises(EngineError) as info:
        engine.generate(requests(3))
    assert dead in info.value.message and "vllm serve" in info.value.message


def test_missing_model_is_an_engine_error_listing_what_is_served(make_engine: EngineFactory) -> None:
    with LoopbackOpenAIServer(models=("Qwen/Qwen2.5-0.5B-Instruct", "tiny")) as srv:
        with pytest.raises(EngineError) as info:
            make_engine(model="Qwen/Qwen3-8B", base_url=srv.base_url)
        assert "'Qwen/Qwen3-8B' is not served" in info.value.message
        assert "Qwen/Qwen2.5-0.5B-Instruct, tiny" in info.value.message
        with pytest.raises(EngineError, match="no model was named"):
            make_engine(model=None, base_url=srv.base_url)


def test_options_are_validated_by_name() -> None:
    with pytest.raises(EngineError, match="unknown option.*concurency"):
        parse_options({"concurency": 4})
    with pytest.raises(EngineError, match="'concurrency' must be >= 1"):
        parse_options({"concurrency": 0})
    with pytest.raises(EngineError, match="'max_retries' must be an integer"):
        parse_options({"max_retries": "5"})
    with pytest.raises(EngineError, match="either option 'base_url' or 'base_urls'"):
        parse_options({"base_url": "http://a/v1", "base_urls": ["http://b/v1"]})


def test_default_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert parse_options({}).base_urls == ("http://127.0.0.1:8000/v1",)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gpu-box:9000/v1/")
    assert parse_options({}).base_urls == ("http://gpu-box:9000/v1",)


# --- the API key -------------------------------------------------------------------------------


def test_api_key_is_sent_but_never_shown(make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLSPEC_TEST_KEY", SECRET)
    with LoopbackOpenAIServer(api_key=SECRET) as srv:
        engine = make_engine(base_url=srv.base_url, api_key_env="MOLSPEC_TEST_KEY", max_retries=0)
        assert_ok(engine.generate(requests(2)), 2)
        assert set(srv.authorizations) == {f"Bearer {SECRET}"}
        srv.set(error_echoes_auth=True)
        srv.fail_next(1, 500)
        [failed] = engine.generate(requests(1))
        assert failed.finish_reason == "error" and "auth: Bearer ***" in (failed.error or "")
        shown = [repr(engine), str(engine.describe()), failed.error or ""]
        assert not any(SECRET in text for text in shown)
        assert engine.describe()["options"]["api_key_env"] == "MOLSPEC_TEST_KEY"


def test_wrong_api_key_is_an_engine_error_without_the_key(make_engine: EngineFactory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with LoopbackOpenAIServer(api_key="sk-the-right-one") as srv:
        with pytest.raises(EngineError) as info:
            make_engine(base_url=srv.base_url)
    assert "HTTP 401" in info.value.message and "OPENAI_API_KEY" in info.value.message
    assert SECRET not in info.value.message and SECRET not in str(info.value)


def test_named_key_variable_that_is_unset_is_an_engine_error(server: LoopbackOpenAIServer,
                                                             make_engine: EngineFactory,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOLSPEC_TEST_KEY", raising=False)
    with pytest.raises(EngineError, match=r"\$MOLSPEC_TEST_KEY"):
        make_engine(base_url=server.base_url, api_key_env="MOLSPEC_TEST_KEY")


def test_no_key_sends_no_authorization(server: LoopbackOpenAIServer, make_engine: EngineFactory,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    make_engine(base_url=server.base_url).generate(requests(1))
    assert set(server.authorizations) == {None}


def test_credentials_in_a_base_url_are_not_shown(server: LoopbackOpenAIServer,
                                                 make_engine: EngineFactory) -> None:
    url = server.base_url.replace("http://", f"http://user:{SECRET}@")
    engine = make_engine(base_url=url)
    assert_ok(engine.generate(requests(1)), 1)
    assert SECRET not in repr(engine) and SECRET not in str(engine.describe())


def test_describe_names_engine_model_and_options(server: LoopbackOpenAIServer,
                                                 make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url, concurrency=3)
    described = engine.describe()
    assert described["engine"] == "openai" and described["model"] == DEFAULT_MODEL
    assert described["options"]["base_urls"] == [server.base_url]
    assert described["options"]["concurrency"] == 3
    assert described["options"]["backoff_s"] == FAST["backoff_s"]


def test_a_failing_request_never_raises(server: LoopbackOpenAIServer, make_engine: EngineFactory) -> None:
    engine = make_engine(base_url=server.base_url)
    # not JSON-serialisable content: the request itself cannot be built
    bad = Request(key="bad", messages=({"role": "user", "content": object()},),  # type: ignore[dict-item]
                  params=SamplingParams())
    out = engine.generate([bad, *requests(1)])
    assert out[0].finish_reason == "error" and out[1].finish_reason == "stop"
    assert isinstance(engine, OpenAIEngine)
