"""The shared engine pieces: the per-request seed, stop strings, the redactor, options models, the registry."""

from __future__ import annotations

import pytest

from molspec.engines import ENGINE_NAMES, ENGINES, EngineError, create, default_window, redact, redact_options
from molspec.engines.common import cut_at_stop, request_seed, seed_of
from molspec.engines.redact import public_url
from tests.engines.helpers import chat


def test_request_seed_is_the_schedulers_seed() -> None:
    # Seeded datasets must not change: the runtime's seed (blake2b of "seed:sample:step") is this one,
    # and an engine deriving a seed from the key "sample:step" lands on the same number.
    from molspec.runtime import scheduler

    for seed, sample, step in [(0, 0, 0), (7, 12, 3), (2**40, 99_999, 31)]:
        expected = scheduler.request_seed(seed, sample, step)
        assert request_seed(seed, sample, step) == expected == request_seed(seed, f"{sample}:{step}")
    assert request_seed(0, 0, 0) == 9044811311333822937  # pinned: changing it changes every seeded dataset
    assert all(0 <= request_seed(s, s) < 2**63 for s in range(100))


def test_seed_of_prefers_the_request_seed() -> None:
    assert seed_of(chat("3:1", "x", seed=5), engine_seed=0) == 5
    assert seed_of(chat("3:1", "x"), 9) == request_seed(9, 3, 1) != seed_of(chat("3:1", "x"), 8)


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [("a. b. c", (". ",), ("a", True)), ("abc", ("x", "c", "b"), ("a", True)), ("abc", (), ("abc", False)),
     ("abc", ("",), ("abc", False))],
)
def test_cut_at_stop(text: str, stop: tuple[str, ...], expected: tuple[str, bool]) -> None:
    assert cut_at_stop(text, stop) == expected


def test_redact_masks_known_secrets_urls_bearers_and_token_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "env-secret-value")
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")  # a placeholder, too short to be a secret
    text = ("key abc123xyz, env-secret-value, http://user:pw@host:8/v1, Authorization: Bearer tok.en "
            "hf_abcdefgh1234 sk-proj-abcdefgh12 EMPTY")
    assert redact(text, ["abc123xyz", None, ""]) == (
        "key ***, ***, http://***@host:8/v1, Authorization: Bearer *** *** *** EMPTY"
    )
    assert public_url("https://u:p@example.com/v1") == "https://example.com/v1"
    assert public_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_redact_options_masks_credential_names_and_cleans_values() -> None:
    options = {"token": "t", "api_key_env": "MY_KEY", "extra_body": {"Authorization": "x", "top_k": 20},
               "base_urls": ["http://a:b@h/v1"], "author": "me", "max_model_len": 4}
    assert redact_options(options) == {"token": "***", "api_key_env": "MY_KEY",
                                       "extra_body": {"Authorization": "***", "top_k": 20},
                                       "base_urls": ["http://***@h/v1"], "author": "me", "max_model_len": 4}


def test_registry_is_the_one_list_of_engines() -> None:
    assert ENGINE_NAMES == ("vllm", "transformers", "openai", "echo")
    assert {name: default_window(name) for name in ENGINE_NAMES} == {
        "echo": 4096, "vllm": 1024, "openai": 256, "transformers": 16}
    assert ENGINES["vllm"].extra == "vllm" and ENGINES["echo"].extra is None
    with pytest.raises(EngineError, match="unknown engine 'vlm'; choose one of: vllm, transformers, openai, echo"):
        create("vlm", None, {}, seed=0)


@pytest.mark.parametrize(
    ("engine", "options", "message"),
    [
        ("openai", {"concurency": 4}, "openai engine: unknown option(s) concurency; known: api_key_env"),
        ("openai", {"concurrency": 0}, "openai engine: option 'concurrency' must be >= 1, got 0"),
        ("openai", {"max_retries": "5"}, "openai engine: option 'max_retries' must be an integer, got '5'"),
        ("openai", {"check_model": 1}, "option 'check_model' must be true or false, got 1"),
        ("openai", {"extra_body": [1]}, "option 'extra_body' must be a table, got [1]"),
        ("openai", {"base_url": "http://a/v1", "base_urls": ["http://b/v1"]}, "option 'base_url' or 'base_urls'"),
        ("transformers", {"batch_size": "big"}, "transformers engine: option 'batch_size' must be an integer"),
        ("vllm", {"max_model_len": 0, "gpu_memory_utilization": 2},
         "vllm engine: option 'max_model_len' must be >= 1, got 0; option 'gpu_memory_utilization' must be <= 1"),
    ],
)
def test_bad_options_are_a_clear_error_before_anything_starts(engine: str, options: dict[str, object],
                                                              message: str) -> None:
    # Refused by the options model: no model is loaded and no server contacted (none is named here).
    with pytest.raises(EngineError) as caught:
        create(engine, "no/such-model", options, seed=0)
    assert message in caught.value.message and "\n" not in caught.value.message


def test_options_models_accept_what_specs_write() -> None:
    openai = ENGINES["openai"].parse_options({"base_url": "http://h:1/v1/", "concurrency": 4.0, "backoff_s": 1})
    assert openai.base_urls == ("http://h:1/v1",) and openai.concurrency == 4 and openai.backoff_s == 1.0
    vllm = ENGINES["vllm"].parse_options({"max_model_len": 4096, "enable_chunked_prefill": False})
    assert vllm.given() == {"max_model_len": 4096, "enable_chunked_prefill": False}  # the rest go to vllm.LLM
    assert ENGINES["echo"].parse_options({"anything": [1, 2]}).given() == {"anything": [1, 2]}
