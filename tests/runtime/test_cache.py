"""The step cache (runtime/cache.py): keys, the file and its damage, the engine wrapper, and builds that use it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from molspec.api import load
from molspec.engines import Completion, Request, SamplingParams, StreamingEngine, create
from molspec.pipeline import build
from molspec.runtime.build import BuildOptions
from molspec.runtime.cache import CACHE_DIR, CACHE_FILE, CachedEngine, StepCache, cached, engine_identity, request_key
from tests.runtime.buildtools import OneAtATime, cli, rows
from tests.runtime.varianttools import Counting, write_variant_spec

ID = engine_identity("echo", "none", {}, 3)
CHANGES: list[dict[str, Any]] = [{"max_tokens": 9}, {"temperature": 0.1}, {"top_p": 0.5}, {"stop": ("\n",)},
                                 {"choices": ("a", "b")}, {"logprobs": 3}]  # every SamplingParams field but seed


def _req(key: str, text: str = "What is 2 + 2?", bond: str = "deep", **params: Any) -> Request:
    return Request(key=key, messages=({"role": "user", "content": text},), params=SamplingParams(**params),
                   meta={"sample": 0, "step": 0, "bond": bond, "kind": "covalent"})


def _done(key: str, text: str = "four") -> Completion:
    return Completion(key=key, text=text, n_tokens=1, finish_reason="stop", prompt_tokens=9,
                      top_logprobs=(("four", -0.1),))


# ---------------------------------------------------------------- keys


def test_the_key_covers_messages_every_sampling_field_meta_and_the_engine() -> None:
    base = _req("a", seed=1)
    variants = [
        _req("a", text="What is 2 + 3?", seed=1),
        *(_req("a", seed=1, **change) for change in CHANGES),
        _req("a", seed=2),
        _req("a", bond="answer", seed=1),
    ]
    keys = {request_key(ID, r) for r in [base, *variants]}
    assert len(keys) == len(variants) + 1
    assert request_key(ID, replace(base, key="other")) == request_key(ID, base)  # the caller's id is no part of it
    others = [engine_identity("vllm", "none", {}, 3), engine_identity("echo", "m2", {}, 3),
              engine_identity("echo", "none", {"max_model_len": 512}, 3), engine_identity("echo", "none", {}, 4)]
    assert len({request_key(i, base) for i in [ID, *others]}) == 5


def test_a_secret_in_the_engine_options_is_no_part_of_the_key() -> None:
    a = engine_identity("openai", "m", {"api_key": "sk-one-0123456789abcdef"}, 3)
    b = engine_identity("openai", "m", {"api_key": "sk-two-0123456789abcdef"}, 3)
    assert request_key(a, _req("x")) == request_key(b, _req("x"))
    assert "sk-one" not in str(a)


# ---------------------------------------------------------------- the file


def _filled(path: Path, n: int = 3) -> list[str]:
    cache = StepCache.open(path)
    keys = [request_key(ID, _req(str(i), text=f"q{i}")) for i in range(n)]
    for i, k in enumerate(keys):
        cache.put(k, _done(str(i), f"text {i}"))
    cache.close()
    return keys


def test_stored_completions_come_back_after_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    keys = _filled(path)
    cache = StepCache.open(path)
    assert cache.entries == 3
    got = cache.get(keys[1])
    assert got is not None
    assert (got.text, got.n_tokens, got.finish_reason, got.prompt_tokens) == ("text 1", 1, "stop", 9)
    assert got.top_logprobs == [("four", -0.1)]
    assert cache.get(request_key(ID, _req("z", text="never asked"))) is None


def test_errors_are_never_stored_and_a_key_is_stored_once(tmp_path: Path) -> None:
    cache = StepCache.open(tmp_path / CACHE_FILE)
    k = request_key(ID, _req("a"))
    cache.put(k, Completion(key="a", text="", n_tokens=0, finish_reason="error", error="boom"))
    cache.flush()
    assert cache.get(k) is None and not (tmp_path / CACHE_FILE).exists()
    cache.put(k, _done("a", "first"))
    cache.put(k, _done("a", "second"))
    cache.flush()
    cache.put(k, _done("a", "third"))
    cache.close()
    assert (tmp_path / CACHE_FILE).read_bytes().count(b"\n") == 1
    assert StepCache.open(tmp_path / CACHE_FILE).get(k).text == "first"  # type: ignore[union-attr]


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    keys = _filled(path, 2)
    whole = path.read_bytes()
    torn = _filled(tmp_path / "other.jsonl", 3)[2]
    last = (tmp_path / "other.jsonl").read_bytes().splitlines(keepends=True)[2]
    path.write_bytes(whole + last[: len(last) // 2])  # a process killed in the middle of its write
    cache = StepCache.open(path)
    assert cache.entries == 2 and cache.get(torn) is None and path.read_bytes() == whole
    fresh = request_key(ID, _req("n", text="new"))
    cache.put(fresh, _done("n", "new text"))
    cache.close()
    again = StepCache.open(path)
    assert again.entries == 3 and all(again.get(k) is not None for k in [*keys, fresh])


def test_damaged_and_foreign_lines_are_ignored_and_their_steps_generated_again(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    keys = _filled(path, 3)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"text 1", b"text X")  # an edited byte: the checksum no longer matches
    foreign = [b"hello\n", b"\n", b'{"k": "not a key"}\n', b"0123456789abcdef " + lines[0].partition(b" ")[2],
               b"\xff\xfe garbage\n"]
    path.write_bytes(lines[0] + foreign[0] + lines[1] + b"".join(foreign[1:]) + lines[2])
    cache = StepCache.open(path)
    assert cache.entries == 2
    assert cache.get(keys[0]) is not None and cache.get(keys[1]) is None and cache.get(keys[2]) is not None


def test_a_folder_in_place_of_the_cache_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / CACHE_FILE / "x").mkdir(parents=True)
    cache = StepCache.open(tmp_path / CACHE_FILE)
    key = request_key(ID, _req("a"))
    cache.put(key, _done("a"))
    cache.close()
    assert StepCache.open(tmp_path / CACHE_FILE).get(key) is not None


def test_each_writer_appends_to_its_own_file_and_every_file_is_read(tmp_path: Path) -> None:
    """A Ray build's replicas write `.molspec/cache/<writer>.jsonl`; every cache opened there reads them all."""
    main = tmp_path / CACHE_FILE
    mine = _filled(main, 2)
    replica = StepCache.open(main, writer="replica-0-0")
    assert replica.entries == 2 and replica.get(mine[1]) is not None  # it reads the main file
    theirs = request_key(ID, _req("r", text="a replica's step"))
    replica.put(theirs, _done("r", "the replica's text"))
    replica.put(mine[0], _done("0", "not stored twice"))
    replica.close()
    assert main.read_bytes().count(b"\n") == 2  # the main file is never written by a replica
    assert (tmp_path / CACHE_DIR / "replica-0-0.jsonl").read_bytes().count(b"\n") == 1
    local = StepCache.open(main)
    assert local.entries == 3 and local.get(theirs).text == "the replica's text"  # type: ignore[union-attr]
    assert local.get(mine[0]).text == "text 0"  # type: ignore[union-attr]


def test_a_torn_line_in_another_writers_file_is_skipped_and_left_alone(tmp_path: Path) -> None:
    """Another writer may still be appending: its file is read, never cut; only the own file is repaired."""
    main = tmp_path / CACHE_FILE
    own = StepCache.open(main)
    own.put(request_key(ID, _req("m", text="the main file's step")), _done("m"))
    own.close()
    other = tmp_path / CACHE_DIR / "replica-1-0.jsonl"
    keys = _filled(tmp_path / "whole.jsonl", 2)
    lines = (tmp_path / "whole.jsonl").read_bytes().splitlines(keepends=True)
    other.parent.mkdir()
    other.write_bytes(lines[0] + lines[1][:20])  # a line being written right now
    cache = StepCache.open(main, writer="replica-0-0")
    assert cache.get(keys[0]) is not None and cache.get(keys[1]) is None and cache.entries == 2
    assert other.read_bytes() == lines[0] + lines[1][:20]


def test_a_file_in_place_of_the_writers_folder_is_replaced(tmp_path: Path) -> None:
    (tmp_path / CACHE_DIR).write_text("not a folder")
    cache = StepCache.open(tmp_path / CACHE_FILE, writer="replica-0-0")
    key = request_key(ID, _req("a"))
    cache.put(key, _done("a"))
    cache.close()
    assert StepCache.open(tmp_path / CACHE_FILE).get(key) is not None


def test_a_line_damaged_after_it_was_indexed_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    keys = _filled(path, 2)
    cache = StepCache.open(path)
    data = bytearray(path.read_bytes())
    data[data.index(b"text 0") + 5] = ord("Z")
    path.write_bytes(bytes(data))  # same length, so the index still points at the line
    assert cache.get(keys[0]) is None and cache.get(keys[1]) is not None


def test_what_generate_returns_is_already_on_disk(tmp_path: Path) -> None:
    cache = StepCache.open(tmp_path / CACHE_FILE)
    front = cached(create("echo", "none", {}, 3), cache, ID)
    front.generate([_req("a", text="one"), _req("b", text="two")])
    # No close: a process killed now keeps what was returned (written and fsynced per batch).
    assert StepCache.open(tmp_path / CACHE_FILE).entries == 2


# ---------------------------------------------------------------- the engine wrapper


def test_hits_and_misses_in_request_order_with_the_callers_keys(tmp_path: Path) -> None:
    echo = Counting()
    front = cached(echo, StepCache.open(tmp_path / CACHE_FILE), ID)
    assert isinstance(front, CachedEngine) and not isinstance(front, StreamingEngine)
    first = front.generate([_req("a", text="one"), _req("b", text="two")])
    again = front.generate([_req("x", text="three"), _req("y", text="one"), _req("z", text="two", seed=5)])
    assert [c.key for c in again] == ["x", "y", "z"]
    assert again[1] == replace(first[0], key="y")
    assert again == echo.inner.generate([_req("x", text="three"), _req("y", text="one"),
                                         _req("z", text="two", seed=5)])
    assert (front.hits, front.misses, len(echo.requests)) == (1, 4, 4)
    assert [r.key for r in echo.requests] == ["a", "b", "x", "z"]


def test_a_streaming_engine_stays_streaming_and_hits_do_not_wait_for_it(tmp_path: Path) -> None:
    counting = Counting()
    front = cached(OneAtATime(counting), StepCache.open(tmp_path / CACHE_FILE), ID)
    assert isinstance(front, StreamingEngine)
    front.submit([_req("a", text="one"), _req("b", text="two")])
    got = front.poll() + front.poll()
    assert [c.key for c in got] == ["a", "b"] and front.poll() == []
    front.submit([_req("c", text="three"), _req("d", text="one")])
    assert [c.key for c in front.poll()] == ["d"]  # the hit, before the engine ran
    assert [c.key for c in front.poll()] == ["c"]
    assert (front.hits, front.misses, len(counting.requests)) == (1, 3, 3)
    front.close()
    assert StepCache.open(tmp_path / CACHE_FILE).entries == 3


# ---------------------------------------------------------------- builds


def _opts(out: Path, **kw: object) -> BuildOptions:
    return BuildOptions(out=out, engine="echo", **kw)  # type: ignore[arg-type]


def test_a_rebuild_with_fresh_takes_every_step_from_the_cache(tmp_path: Path) -> None:
    spec = write_variant_spec(tmp_path / "spec", variants=False)
    out = tmp_path / "out"
    first = build(load(spec), _opts(out), engine=Counting())
    assert first.cache is not None and first.cache.hits == 0 and first.cache.misses > first.done
    cache_bytes = (out / ".molspec" / CACHE_FILE).read_bytes()
    before = rows(out)
    echo = Counting()
    again = build(load(spec), _opts(out, fresh=True), engine=echo)
    assert echo.requests == [] and again.cache is not None
    assert (again.cache.hits, again.cache.misses, again.cache.entries) == (first.cache.misses, 0, first.cache.misses)
    assert (out / ".molspec" / CACHE_FILE).read_bytes() == cache_bytes
    assert rows(out) == before
    ran = cli("build", spec, "--out", out, "--fresh", "--engine", "echo")
    assert ran.rc == 0 and f"{first.cache.misses:,} steps from the cache, 0 generated" in ran.err


def test_an_edited_answer_instruction_generates_only_the_answers(tmp_path: Path) -> None:
    spec = write_variant_spec(tmp_path / "spec", variants=False)
    out = tmp_path / "out"
    build(load(spec), _opts(out), engine=Counting())
    before = rows(out)
    spec.write_text(spec.read_text().replace('answer { verify = "math" }',
                                             'answer { verify = "math"  instruct = "Just the number." }'))
    echo = Counting()
    res = build(load(spec), _opts(out, fresh=True), engine=echo)
    assert echo.bonds() == ["answer"] * res.done == ["answer"] * 24
    after = rows(out)
    assert [r["steps"] for r in after] == [r["steps"] for r in before]
    assert [r["answer"] for r in after] != [r["answer"] for r in before]


def test_an_edited_bond_reuses_the_steps_before_it(tmp_path: Path) -> None:
    spec = write_variant_spec(tmp_path / "spec", variants=False)
    out = tmp_path / "out"
    build(load(spec), _opts(out), engine=Counting())
    before = {r["id"]: r for r in rows(out)}
    spec.write_text(spec.read_text().replace('"Do the next routine step."', '"Do the next small step."'))
    echo = Counting()
    res = build(load(spec), _opts(out, fresh=True), engine=echo)
    assert res.cache is not None and res.cache.hits > 0
    for r in rows(out):
        first = r["bonds"].index("normal") if "normal" in r["bonds"] else len(r["bonds"])
        assert r["steps"][:first] == before[r["id"]]["steps"][:first]  # the prefix before `normal` is kept
    asked = {(int(r.meta["sample"]), int(r.meta["step"])) for r in echo.requests}
    for r in rows(out):
        first = r["bonds"].index("normal") if "normal" in r["bonds"] else len(r["bonds"])
        assert not any((r["sample_index"], step) in asked for step in range(first))


def test_no_cache_asks_the_engine_for_everything_and_writes_no_cache(tmp_path: Path) -> None:
    spec = write_variant_spec(tmp_path / "spec", variants=False)
    out = tmp_path / "out"
    build(load(spec), _opts(out), engine=Counting())
    cache_bytes = (out / ".molspec" / CACHE_FILE).read_bytes()
    echo = Counting()
    res = build(load(spec), _opts(out, fresh=True, cache=False), engine=echo)
    assert res.cache is None and len(echo.requests) == len(cache_bytes.splitlines())
    assert (out / ".molspec" / CACHE_FILE).read_bytes() == cache_bytes
    ran = cli("build", spec, "--out", tmp_path / "other", "--no-cache", "-q", "--engine", "echo")
    assert ran.rc == 0 and not (tmp_path / "other" / ".molspec" / CACHE_FILE).exists()
    assert "from the cache" not in ran.err


def test_a_damaged_cache_line_is_generated_again_in_a_build(tmp_path: Path) -> None:
    spec = write_variant_spec(tmp_path / "spec", variants=False)
    out = tmp_path / "out"
    build(load(spec), _opts(out), engine=Counting())
    before = rows(out)
    path = out / ".molspec" / CACHE_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b"echo ", b"ECHO ", 1)
    path.write_bytes(b"".join(lines) + b"deadbeef torn")
    echo = Counting()
    build(load(spec), _opts(out, fresh=True), engine=echo)
    assert len(echo.requests) == 1 and rows(out) == before


@pytest.mark.parametrize("gate", [True, False])
def test_the_manifest_records_this_runs_cache_use(tmp_path: Path, gate: bool) -> None:
    from molspec.records import read_manifest

    spec = write_variant_spec(tmp_path / "spec", variants=False)
    out = tmp_path / "out"
    res = build(load(spec), _opts(out, gate=gate), engine=Counting())
    m = read_manifest(out)
    assert m.cache == res.cache and m.cache is not None and m.cache.hits == 0
    assert m.cache.misses == len((out / ".molspec" / CACHE_FILE).read_bytes().splitlines())
    assert m.variant is None
    assert os.path.getsize(out / ".molspec" / CACHE_FILE) > 0
