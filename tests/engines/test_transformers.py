"""The transformers engine on a tiny random Llama: batching, per-row budgets, seeds, stop strings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from molspec.engines import Engine, EngineError, create
from molspec.engines.common import cut_at_stop
from tests.engines.conftest import TINY_MAX_LEN, TINY_TRANSFORMERS_OPTIONS
from tests.engines.helpers import chat, long_text


def test_batch_keeps_order_and_per_row_budgets(transformers_tiny: Engine) -> None:
    # Six requests with different prompt lengths and budgets span two chunks (batch_size 4).
    requests = [chat(f"s{i}", "word " * (i * 3) + "?", max_tokens=2 + i, temperature=0) for i in range(6)]
    out = transformers_tiny.generate(requests)
    assert [c.key for c in out] == [r.key for r in requests]
    assert [c.n_tokens for c in out] == [2 + i for i in range(6)]
    assert all(c.finish_reason == "length" and c.text for c in out)
    assert [c.prompt_tokens for c in out] == sorted(c.prompt_tokens or 0 for c in out)


def test_greedy_does_not_depend_on_batch(transformers_tiny: Engine) -> None:
    alone = transformers_tiny.generate([chat("a", "Think step by step.", max_tokens=8, temperature=0)])
    mixed = transformers_tiny.generate(
        [
            chat("x", long_text(30), max_tokens=3, temperature=1.0),
            chat("a", "Think step by step.", max_tokens=8, temperature=0),
        ]
    )
    assert mixed[1].text == alone[0].text


def test_sampling_follows_the_seed(transformers_tiny: Engine) -> None:
    def sample(seed: int | None, key: str = "k") -> str:
        [done] = transformers_tiny.generate([chat(key, "Explore.", max_tokens=12, temperature=1.0, seed=seed)])
        return done.text

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    assert sample(None, "k1") == sample(None, "k1")  # derived from the engine seed and the key
    assert sample(None, "k1") != sample(None, "k2")


def test_stop_string_ends_generation_and_is_not_in_text(transformers_tiny: Engine) -> None:
    [free] = transformers_tiny.generate([chat("a", "Explore another way.", max_tokens=24, temperature=0)])
    stop = free.text[5:8]
    [stopped] = transformers_tiny.generate(
        [chat("a", "Explore another way.", max_tokens=24, temperature=0, stop=(stop,))]
    )
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(stop)]
    assert stopped.n_tokens < free.n_tokens


def test_over_long_prompt_fails_only_its_request(transformers_tiny: Engine) -> None:
    ok1, long, ok2 = transformers_tiny.generate(
        [chat("ok1", "hello", max_tokens=3), chat("long", long_text(400)), chat("ok2", "bye", max_tokens=3)]
    )
    assert (ok1.n_tokens, ok2.n_tokens) == (3, 3)
    assert long.finish_reason == "error" and long.error is not None and str(TINY_MAX_LEN) in long.error


def test_budget_is_capped_by_the_context(transformers_tiny: Engine) -> None:
    [done] = transformers_tiny.generate([chat("a", long_text(60), max_tokens=10_000, temperature=0)])
    assert done.finish_reason == "length"
    assert done.prompt_tokens is not None and done.prompt_tokens + done.n_tokens == TINY_MAX_LEN


def test_describe(transformers_tiny: Engine, tiny_model: Path) -> None:
    info = transformers_tiny.describe()
    assert (info["engine"], info["model"], info["options"]) == (
        "transformers",
        str(tiny_model),
        TINY_TRANSFORMERS_OPTIONS,
    )


def test_missing_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(EngineError, match=r"molspec\[transformers\]"):
        create("transformers", "builtin:smollm2-135m-instruct", {}, seed=0)


def test_unknown_dtype_is_an_engine_error(tiny_model: Path) -> None:
    with pytest.raises(EngineError, match="dtype"):
        create("transformers", str(tiny_model), {"dtype": "float7"}, seed=0)


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [("a. b. c", (". ",), ("a", True)), ("abc", ("x", "c", "b"), ("a", True)), ("abc", (), ("abc", False))],
)
def test_cut_at_stop(text: str, stop: tuple[str, ...], expected: tuple[str, bool]) -> None:
    assert cut_at_stop(text, stop) == expected


def test_a_final_assistant_message_is_continued(transformers_tiny: Engine, tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    from molspec.engines.base import Request, SamplingParams
    from molspec.engines.common import render_prompt

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    user = {"role": "user", "content": "Think step by step."}
    started = {"role": "assistant", "content": "Another way to see it is"}
    asked, continued = render_prompt(tokenizer, [user]), render_prompt(tokenizer, [user, started])
    # the reply is not closed: the prompt ends with its words, where the new tokens go on
    assert tokenizer.decode(continued).endswith("Another way to see it is")
    assert tokenizer.decode(continued).startswith(tokenizer.decode(asked)[: len(tokenizer.decode(asked)) // 2])
    [out] = transformers_tiny.generate([Request("c", (user, started), SamplingParams(max_tokens=4, temperature=0))])
    assert out.finish_reason == "length" and out.prompt_tokens == len(continued)
