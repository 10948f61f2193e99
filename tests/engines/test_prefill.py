"""Started replies asked for in words (`engines/prefill.py`): the request, and the reply joined back on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from molspec.engines.prefill import INSTRUCTION, as_instruction, continuation

QUESTION = {"role": "user", "content": "Problem: 3 + 4?"}


@pytest.mark.parametrize(("started", "reply", "step"), [
    ("So far.\n\nThis means that", "This means that the sum is 7.", " the sum is 7."),  # the lead repeated
    ("So far.\n\nThis means that", "the sum is 7.", " the sum is 7."),  # carried on, as asked
    ("So far.\n\nThis means that", "means that the sum is 7.", " the sum is 7."),  # its last words repeated
    ("So far.\n\nNext,", "next, add them.", " add them."),  # a one-word lead, in other case
    ("So far.\n\nNext,", ", add them.", ", add them."),  # punctuation follows without a space
    ("So far.\n\nNext, ", "add them.", "add them."),  # the started text already ends with a space
    ("So far.\n\nThis means that", "that is 7.", " that is 7."),  # one repeated word of a longer lead stays
    ("So far.\n\nNext,", "Next,", ""),  # nothing but the lead: an empty step
    ("So far.\n\nNext,", "   ", ""),
])
def test_the_reply_is_joined_onto_the_started_text(started: str, reply: str, step: str) -> None:
    assert continuation(started, reply) == step


def test_the_request_merges_into_the_user_turn_before_it() -> None:
    messages = [QUESTION, {"role": "assistant", "content": "Add.\n\nNext,"}]
    content = f"Problem: 3 + 4?\n\n{INSTRUCTION}\n\nAdd.\n\nNext,"
    assert as_instruction(messages) == [{"role": "user", "content": content}]
    assert messages[0] == QUESTION  # the request's own messages are not changed


def test_without_a_user_turn_before_it_one_is_added() -> None:
    system = {"role": "system", "content": "Be brief."}
    assert as_instruction([system, {"role": "assistant", "content": "Next,"}]) == [
        system, {"role": "user", "content": f"{INSTRUCTION}\n\nNext,"}]


@given(st.text(max_size=80), st.text(max_size=80))
def test_a_continuation_is_an_end_of_the_reply(started: str, reply: str) -> None:
    """Nothing is invented: the step is the reply with some of its opening cut, and a space at most added."""
    step = continuation(started, reply)
    assert reply.endswith(step.removeprefix(" ")) or reply.endswith(step)
    if step[:1].isspace():  # the one space a tokenizer would have written, only where the text stops mid-line
        assert step[0] == " " and not step[1:2].isspace() and not started[-1:].isspace()
