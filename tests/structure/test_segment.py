"""Segmentation: offsets round-trip, the merge/split rule, and the configuration checks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molspec.structure.segment import SegmentConfig, segment, segment_spans, step_texts

SMALL = SegmentConfig(min_chars=20, max_chars=120)


def assert_well_formed(text: str, config: SegmentConfig | None = None) -> None:
    steps = segment(text, config)
    previous_end = 0
    for step in steps:
        assert text[step.start : step.end] == step.text
        assert step.start >= previous_end and step.start < step.end
        assert not step.text[0].isspace() and not step.text[-1].isspace()
        previous_end = step.end
    # Every non-space character belongs to exactly one step.
    covered = "".join(s.text for s in steps)
    assert re.sub(r"\s", "", covered) == re.sub(r"\s", "", text)


_words = st.sampled_from(["Wait,", "But", "so", "x = 2.", "Alternatively", "Hmm.", "the", "value", "is", "3!", "ok?"])
_paragraph = st.lists(_words, min_size=1, max_size=60).map(" ".join)
_text = st.lists(_paragraph, min_size=0, max_size=12).map(lambda ps: "\n\n".join(ps))


@settings(max_examples=200, deadline=None)
@given(text=_text, min_chars=st.integers(0, 80), extra=st.integers(1, 300))
def test_offsets_round_trip(text: str, min_chars: int, extra: int) -> None:
    assert_well_formed(text, SegmentConfig(min_chars=min_chars, max_chars=min_chars + extra))


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab .?!\n\t:W"), max_size=400))
def test_offsets_round_trip_on_odd_whitespace(text: str) -> None:
    assert_well_formed(text, SMALL)


def test_empty_and_blank_text() -> None:
    assert segment("") == []
    assert segment(" \n\n \t\n") == []


def test_blank_lines_split_and_short_tails_merge() -> None:
    text = "First paragraph that is long enough to stand alone.\n\nx = 2\n\nSecond paragraph, also long enough."
    assert step_texts(text, SMALL) == [
        "First paragraph that is long enough to stand alone.\n\nx = 2",
        "Second paragraph, also long enough.",
    ]


def test_a_cue_starts_a_new_step_even_when_short() -> None:
    text = "We found that the value is seven here.\n\nWait, is it?\n\nYes: seven is right, as computed."
    texts = step_texts(text, SMALL)
    assert texts[0] == "We found that the value is seven here."
    assert texts[1].startswith("Wait, is it?")


def test_a_short_step_before_a_cue_folds_back() -> None:
    text = "A long opening paragraph with plenty of words.\n\nSo x = 4.\n\nBut let me check that again, carefully."
    texts = step_texts(text, SMALL)
    assert texts == [
        "A long opening paragraph with plenty of words.\n\nSo x = 4.",
        "But let me check that again, carefully.",
    ]


def test_colon_introduces_what_follows() -> None:
    text = "Now the key equations are these ones:\n\n" + "a + b = 10 and a - b = 4, a long enough line."
    assert len(step_texts(text, SMALL)) == 1


def test_long_paragraph_is_cut_at_sentences_preferring_cues() -> None:
    sentence = "This sentence adds a little more detail. "
    text = sentence * 2 + "Wait, that breaks the pattern. " + sentence * 2
    spans = segment_spans(text, SegmentConfig(min_chars=20, max_chars=110))
    assert len(spans) >= 2
    starts = [text[a:b] for a, b in spans]
    assert any(s.startswith("Wait,") for s in starts)
    assert all(b - a <= 110 for a, b in spans)


def test_unsplittable_long_paragraph_stays_whole() -> None:
    text = "x" * 500
    assert segment_spans(text, SMALL) == [(0, 500)]


def test_cue_matching_needs_a_word_boundary() -> None:
    cfg = SegmentConfig()
    assert cfg.opens_with_cue("Wait, no.")
    assert cfg.opens_with_cue("**But** then")
    assert not cfg.opens_with_cue("Butter is yellow.")
    assert cfg.opens_with_cue("Let me re-examine it.")
    assert cfg.opens_with_soft("Now, substitute.")


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"min_chars": -1}, "min_chars"), ({"max_chars": 50, "min_chars": 50}, "max_chars")]
)
def test_config_is_validated(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SegmentConfig(**kwargs)


def test_real_traces_round_trip(shared_traces: dict[str, object]) -> None:
    from molspec.structure.traces import read_traces

    for path in shared_traces.values():
        for trace in read_traces(path):  # type: ignore[arg-type]
            assert_well_formed(trace.thinking)
