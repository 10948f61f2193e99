"""SmolLM2's reading of a walk one new step at a time: what `learned-lm-causal` gives the fidelity gate.

`lm_probe.Reader.features` reads a whole trace in windows. The gate asks for one new step after the walk it has
kept, again for every attempt, so re-reading the walk would cost O(walk) per attempt. An `LmWalk` keeps the
model's key/value cache of what it has read; an attempt is then read alone, with that cache in view. The result
equals the whole trace's reading (`Reader.features` of the walk with the step last; tested): the same tokens,
the same windows (a token at position t sits in window t // STRIDE, which starts CARRY tokens earlier).

The cache is kept as a chain of chunks, one per kept step, shared by the attempts that follow it: a round's
attempts hold their own tokens only (about 46 KB per token for SmolLM2-135M, float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from molspec.structure.lm_probe import CARRY, JOINER, LAYERS, WINDOW, Matrix, Reader, pooled, step_tokens, trace_text

if TYPE_CHECKING:
    import torch

STRIDE = WINDOW - CARRY  # new tokens per window of `Reader._states`

Chunk = tuple[tuple["torch.Tensor", "torch.Tensor"], ...]  # per layer (key, value): (1, kv heads, tokens, dim)


@dataclass(frozen=True)
class LmWalk:
    """What the model has read of a walk.

    Attributes:
        text: the text read: "Problem: <question>" and a blank line, then each kept step and its joiner.
        ids: its tokens.
        lo: the first token the cache holds (the start of the last window's context).
        chunks: the cache of ids[lo:], in order, one chunk per read.
    """

    text: str
    ids: tuple[int, ...]
    lo: int
    chunks: tuple[Chunk, ...]

    @property
    def cached(self) -> int:
        """How many tokens the chunks hold."""
        return _count(self.chunks)


def _count(chunks: Sequence[Chunk]) -> int:
    return sum(int(c[0][0].shape[2]) for c in chunks)


def start(question: str | None) -> LmWalk:
    """A walk with no steps read yet (the question is read with the first step)."""
    return LmWalk(trace_text(question, [])[0], (), 0, ())


def read(reader: Reader, walk: LmWalk, step: str, joiner: str = JOINER) -> tuple[Matrix, LmWalk]:
    """The step's features (as `Reader.features` gives them, one row) read after `walk`, and the walk with it."""
    text = walk.text + step + joiner
    enc = reader.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids, offsets = tuple(enc["input_ids"]), enc["offset_mapping"]
    keep = _common(walk.ids, ids)
    lo, chunks = (walk.lo, walk.chunks) if keep == len(walk.ids) else _crop(walk, keep)
    states, lo, chunks = _forward(reader, ids, keep, lo, chunks)
    a, b = len(walk.text), len(walk.text) + len(step)
    starts = np.array([o[0] for o in offsets[keep:]])
    ends = np.array([o[1] for o in offsets[keep:]])
    idx = step_tokens(starts, ends, a, b)
    if len(idx) == 0:  # an empty step (the gate never asks for its label): the last token read
        idx = np.array([len(starts) - 1])
    # The joiner's tokens are not kept: the next step's text re-tokenises them ("\n\n" + "Next" -> "\n", "\nNext").
    cut = keep + int(np.searchsorted(ends, b, side="right"))
    return pooled(states, idx)[None, :], _cropped(LmWalk(text, ids, lo, chunks), cut)


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _crop(walk: LmWalk, keep: int) -> tuple[int, tuple[Chunk, ...]]:
    """The walk's cache cut back to its first `keep` tokens (nothing when they end before its window)."""
    if keep <= walk.lo:
        return keep, ()
    n, last = keep - walk.lo, walk.cached - int(walk.chunks[-1][0][0].shape[2])
    if n >= last:  # within the last chunk: the chunks before it stay shared
        return walk.lo, (*walk.chunks[:-1], tuple((k[:, :, : n - last].clone(), v[:, :, : n - last].clone())
                                                  for k, v in walk.chunks[-1]))
    return walk.lo, (tuple((k[:, :, :n].clone(), v[:, :, :n].clone()) for k, v in _joined(walk.chunks)),)


def _cropped(walk: LmWalk, keep: int) -> LmWalk:
    """`walk` holding its first `keep` tokens only (its text stays whole)."""
    if keep >= len(walk.ids):
        return walk
    lo, chunks = _crop(walk, keep)
    return LmWalk(walk.text, walk.ids[:keep], lo, chunks)


def _joined(chunks: Sequence[Chunk]) -> Chunk:
    import torch

    if len(chunks) == 1:
        return chunks[0]
    return tuple((torch.cat([c[i][0] for c in chunks], dim=2), torch.cat([c[i][1] for c in chunks], dim=2))
                 for i in range(len(chunks[0])))  # fmt: skip


def _forward(
    reader: Reader, ids: Sequence[int], pos: int, lo: int, chunks: tuple[Chunk, ...]
) -> tuple[list[np.ndarray[Any, np.dtype[np.float32]]], int, tuple[Chunk, ...]]:
    """Per layer in LAYERS, the states of ids[pos:], read window by window with the cache of ids[lo:pos]."""
    out: list[list[np.ndarray[Any, np.dtype[np.float32]]]] = [[] for _ in LAYERS]
    while pos < len(ids):
        window = pos // STRIDE
        first, end = max(0, window * STRIDE - CARRY), min(len(ids), (window + 1) * STRIDE)
        if first != lo or _count(chunks) != pos - lo:  # a new window: its context is the CARRY tokens before it
            lo, chunks = first, ()
            if pos > first:
                _s, chunk = _run(reader, ids[first:pos], ())
                chunks = (chunk,)
        states, chunk = _run(reader, ids[pos:end], chunks)
        chunks = (*chunks, chunk)
        for o, s in zip(out, states, strict=True):
            o.append(s)
        pos = end
    hidden = int(reader.model.config.hidden_size)
    return [np.concatenate(o) if o else np.zeros((0, hidden), np.float32) for o in out], lo, chunks


def _run(reader: Reader, ids: Sequence[int], chunks: Sequence[Chunk]) -> tuple[list[np.ndarray[Any, Any]], Chunk]:
    """One forward pass of `ids` after the cached tokens: the LAYERS' states and the new tokens' own cache."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    if chunks:
        for i, (k, v) in enumerate(_joined(chunks)):
            cache.update(k, v, i)  # stored as given; later tokens are concatenated into new tensors
    before = cache.get_seq_length()
    with torch.inference_mode():
        result = reader.model.model(torch.tensor([list(ids)], device=reader.device), past_key_values=cache,
                                    use_cache=True, output_hidden_states=True)
    states = [result.hidden_states[layer][0].float().cpu().numpy() for layer in LAYERS]
    new = result.past_key_values
    chunk = tuple((k[:, :, before:].clone(), v[:, :, before:].clone()) for k, v in _layers(new))
    return states, chunk


def _layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(key, value) per layer of a transformers cache."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return [(cache.key_cache[i], cache.value_cache[i]) for i in range(len(cache.key_cache))]

