"""Vectorised, counter-based walk sampling.

Sample i of a plan reads its uniforms from a Philox stream keyed by the plan seed, at counter
`i * draws_per_sample / 8` (Philox4x64 yields 8 float32 per counter step). So any range of samples is
produced independently and identically on any machine: the plan of 0..N equals the concatenation
of the plans of 0..k and k..N.

Per sample the uniforms are used as: u[0] graph choice (mixed splits), u[1] length (uniform-length
graphs), u[2] first bond, u[3 + t] the move after step t.

How a move is drawn, fast and exactly. numpy's float32 uniform is k / 2**24, where k is the top 24
bits of a 32-bit Philox output, so `u >= c` is `draw >= ceil(c * 2**24) * 2**8` on the raw draw, and
each row of a transition matrix becomes integer thresholds. A lookup table indexed by (current state,
top byte of the draw) gives the next state directly, except for the few buckets that straddle a
threshold (about K / 256 of the draws), which are resolved against the thresholds. The walks are
bit-identical to comparing float32 uniforms with cumulative probabilities.

States are global bond ids; a walk that has ended moves to the absorbing state PAD (255, which is
-1 as int8), so the loop needs no per-walk bookkeeping. A state is kept shifted left by 8 bits in a
uint16, so that `state | top byte of the draw` is the lookup index.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from molspec.graphmath import Chain

CHUNK = 1 << 15  # samples per vectorised batch: the working set is ~CHUNK * (4 * draws + max_steps) bytes
FIXED_DRAWS = 3
GRID_BITS = 24  # a float32 uniform is k / 2**GRID_BITS with k = (32-bit draw) >> 8
PAD = 0xFF  # the state of a finished walk; as int8 it is the -1 padding of the output
UNSURE = 0x00FF  # a lookup entry that needs the thresholds (real entries have a zero low byte)
_TOP = 3 if sys.byteorder == "little" else 0  # the byte of a uint32 that holds its top 8 bits
_HIGH = 1 if sys.byteorder == "little" else 0  # the byte of a uint16 that holds its top 8 bits

Draws = npt.NDArray[np.uint32]  # raw 32-bit draws, sample-major: shape (samples, draws)
States = npt.NDArray[np.uint16]  # state << 8


def draws_per_sample(max_steps: int) -> int:
    """Uniforms reserved per sample, rounded up to a whole Philox block of 8 float32."""
    need = FIXED_DRAWS + max_steps
    return -(-need // 8) * 8


@dataclass(frozen=True)
class Rule:
    """One way of choosing the next state from a draw, for every current state.

    Attributes:
        lut: (256 * 256,) uint16: entry (state << 8 | top byte of the draw) is the next state << 8,
            or UNSURE where a threshold falls inside that bucket of draws.
        thresholds: (256, M) int64 on the 32-bit draw scale, per current state; the outcome is how
            many thresholds are <= the draw.
        outcomes: (M + 1,) uint16: outcome -> next state << 8.
    """

    lut: States
    thresholds: npt.NDArray[np.int64]
    outcomes: States

    def next(self, cur: States, draws: Draws, column: int) -> States:
        """Next states for states `cur`, drawing from column `column` of `draws`."""
        top = draws.view(np.uint8)[:, 4 * column + _TOP]
        nxt = np.take(self.lut, cur | top)
        unsure = np.flatnonzero(nxt == UNSURE)
        if unsure.size:
            rows = self.thresholds[cur[unsure] >> 8]
            nxt[unsure] = self.outcomes[(draws[unsure, column, None] >= rows).sum(axis=1)]
        return nxt


def rule(cdf: npt.NDArray[np.float64], states: npt.NDArray[np.int64], outcomes: npt.NDArray[np.int64]) -> Rule:
    """The rule of cumulative rows `cdf` (one per state in `states`): outcome = number of entries <= u.

    Outcome j leads to state outcomes[j]. Every other state, PAD included, stays at PAD.
    """
    scale = 1 << (32 - GRID_BITS)
    thresholds = np.zeros((256, cdf.shape[1]), dtype=np.int64)
    thresholds[states] = np.ceil(cdf * float(1 << GRID_BITS)).astype(np.int64) * scale
    shifted = (np.asarray(outcomes, dtype=np.uint16) << 8).astype(np.uint16)
    first = np.arange(256, dtype=np.int64) << 24
    lut = np.full((256, 256), PAD << 8, dtype=np.uint16)
    for s in states:
        lo = np.searchsorted(thresholds[s], first, side="right")
        hi = np.searchsorted(thresholds[s], first + (1 << 24) - 1, side="right")
        lut[s] = np.where(lo == hi, shifted[lo], UNSURE)
    return Rule(lut.ravel(), thresholds, shifted)


@dataclass(frozen=True)
class Tables:
    """A chain prepared for sampling.

    Attributes:
        ids: global bond id of each local bond (int8).
        start: the first bond (one row, read with state 0).
        with_end: the move after a bond over its K bonds + end (end leads to PAD).
        no_end: the move over the K bonds only (end excluded, the row renormalised), used before
            the minimum length and in uniform-length graphs.
    """

    chain: Chain
    ids: npt.NDArray[np.int8]
    start: Rule
    with_end: Rule
    no_end: Rule


def tables(chain: Chain, bond_ids: dict[str, int]) -> Tables:
    k = len(chain.bonds)
    ids = np.array([bond_ids[b] for b in chain.bonds], dtype=np.int64)
    start = np.cumsum(_normalise(chain.start[None, :]), axis=1)[:, : k - 1]
    with_end = np.cumsum(_normalise(np.hstack([chain.trans, chain.end[:, None]])), axis=1)[:, :k]
    no_end = np.cumsum(_normalise(chain.trans), axis=1)[:, : k - 1]
    to_pad = np.append(ids, PAD)
    return Tables(chain, ids.astype(np.int8), rule(start, np.zeros(1, dtype=np.int64), ids),
                  rule(with_end, ids, to_pad), rule(no_end, ids, ids))


def _normalise(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    total = rows.sum(axis=1, keepdims=True)
    return np.where(total > 0, rows / np.where(total > 0, total, 1.0), 0.0)


def grid(seed: int, start: int, stop: int, draws: int) -> Draws:
    """The raw draws of samples start..stop, shape (stop - start, draws)."""
    n = stop - start
    raw = np.random.Philox(key=seed, counter=start * (draws // 8)).random_raw(n * draws // 2)
    # numpy's next_uint32 hands out the low, then the high half of each 64-bit output
    return raw.astype("<u8", copy=False).view("<u4").reshape(n, draws).astype(np.uint32, copy=False)


def unit(draw: Draws) -> npt.NDArray[np.float32]:
    """Draws as the float32 uniforms numpy makes of them (exact)."""
    return (draw >> (32 - GRID_BITS)).astype(np.float32) * np.float32(1.0 / (1 << GRID_BITS))


def uniforms(seed: int, start: int, stop: int, draws: int) -> npt.NDArray[np.float32]:
    """The uniforms of samples start..stop, shape (stop - start, draws) (for inspection and tests)."""
    return unit(grid(seed, start, stop, draws))


def walk(t: Tables, g: Draws, max_len: int) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int16]]:
    """Walks for the draws `g` (n, draws): bond ids (n, max_len), padded with -1, and lengths."""
    c = t.chain
    g = np.ascontiguousarray(g)  # Rule.next reads the draws' bytes
    n = g.shape[0]
    out = np.full((n, max_len), -1, dtype=np.int8)
    cur = t.start.next(np.zeros(n, dtype=np.uint16), g, 2)
    out[:, 0] = cur.view(np.uint8)[_HIGH::2]
    stops = None if c.uses_end else _uniform_stops(c, g)
    for step in range(1, min(c.max_steps, max_len)):
        ending = c.uses_end and step >= c.min_steps
        cur = (t.with_end if ending else t.no_end).next(cur, g, FIXED_DRAWS + step - 1)
        if stops is not None:
            cur[stops[step]] = PAD << 8
        out[:, step] = cur.view(np.uint8)[_HIGH::2]
        if step >= c.min_steps and step % 8 == 0 and not (cur != PAD << 8).any():
            break
    lengths = np.count_nonzero(out >= 0, axis=1).astype(np.int16)
    return out, lengths


def _uniform_stops(c: Chain, g: Draws) -> list[npt.NDArray[np.intp]]:
    """For uniform-length graphs: per step, the walks whose length is that step."""
    span = c.max_steps - c.min_steps + 1
    lengths = c.min_steps + np.minimum((unit(g[:, 1]) * span).astype(np.int64), span - 1)
    order = np.argsort(lengths, kind="stable")
    bounds = np.searchsorted(lengths[order], np.arange(c.max_steps + 2))
    return [order[bounds[s]:bounds[s + 1]] for s in range(c.max_steps + 1)]
