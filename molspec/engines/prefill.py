"""Started replies on servers that cannot continue one.

A step with a lead ends its messages with an assistant message that the model should carry on. vLLM and
SGLang servers continue it when asked (`continue_final_message`), llama.cpp's server does by itself, but
OpenAI's own API and many hosted servers answer a new turn instead: the step would be the lead followed by
a fresh reply ("Sure! Here is..."). With the openai engine's ``continuation = "prompt"`` the started reply
is sent as text to continue, in a user turn, and the reply is joined back onto it: words that repeat the
end of the started text are dropped, and a space is put back where the text stops mid-phrase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

INSTRUCTION = (
    "Continue the text below from exactly where it stops. Write only the words that come next: do not repeat "
    "any of it, do not add a preface, and stop at the end of the paragraph."
)
# How many of the started text's last words a reply may repeat before it goes on (the lead is a few words).
MAX_OVERLAP_WORDS = 40
NO_SPACE_BEFORE = frozenset(",.;:!?)]}'\"%")


def as_instruction(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The messages with the final assistant message turned into a user turn asking for its continuation;
    a user turn just before it takes the request in the same message (some templates refuse two in a row)."""
    *head, started = (dict(m) for m in messages)
    ask = f"{INSTRUCTION}\n\n{started.get('content', '')}"
    if head and head[-1].get("role") == "user":
        head[-1] = head[-1] | {"content": f"{head[-1].get('content', '')}\n\n{ask}"}
        return head
    return [*head, {"role": "user", "content": ask}]


def continuation(started: str, reply: str) -> str:
    """`reply` as the words that follow `started`: any leading repeat of its last words cut, and the space a
    tokenizer would have written between them put back (none before punctuation or after whitespace)."""
    text = _without_repeat(started, reply.lstrip())
    if not text:
        return ""
    if started[-1:].isspace() or text[0] in NO_SPACE_BEFORE:
        return text
    return f" {text}"


def _without_repeat(started: str, reply: str) -> str:
    """Cut the longest run of the last words of `started`'s last paragraph (the lead) that `reply` opens
    with: at least two words, or the whole of a one-word lead; words compare without case or punctuation."""
    tail = started.rsplit("\n\n", 1)[-1].split()[-MAX_OVERLAP_WORDS:]
    words = reply.split()
    for n in range(min(len(tail), len(words)), 0, -1):
        if n < 2 and len(tail) > 1:
            break
        if [_norm(w) for w in words[:n]] == [_norm(w) for w in tail[-n:]]:
            return reply.split(None, n)[n] if len(words) > n else ""
    return reply


def _norm(word: str) -> str:
    return word.strip(".,;:!?\"'()").casefold()
