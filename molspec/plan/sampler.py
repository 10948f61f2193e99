"""Vectorised, counter-based walk sampling.

Sample i of a plan reads its uniforms from a Philox stream keyed by the plan seed, at counter
`i * draws_per_sample / 8` (Philox4x64 yields 8 float32 per counter step). So any range of samples is
produced independently and identically on any machine: the plan of 0..N equals the concatenation
of the plans of 0..k and k..N.

Per sample the uniforms are used as: u[0] graph choice (mixed splits), u[1] length (uniform-length
graphs), u[2] first bond, u[3 + t] the move after step t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from molspec.plan.matrix import Chain

CHUNK = 1 << 16  # samples per vectorised batch: bounds the float buffer to CHUNK * draws * 4 bytes
FIXED_DRAWS = 3


def draws_per_sample(max_steps: int) -> int:
    """Uniforms reserved per sample, rounded up to a whole Philox block of 8 float32."""
    need = FIXED_DRAWS + max_steps
    return -(-need // 8) * 8


@dataclass(frozen=True)
class Tables:
    """A chain prepared for sampling: cumulative rows, with and without the end column.

    Attributes:
        ids: global bond id of each local bond (int8).
        start_cdf: cumulative start distribution without its last entry, shape (K-1,).
        cdf_end: per row, the cumulative distribution over K bonds + end, without the last entry (K, K).
        cdf_noend: per row, over the K bonds only (end excluded and renormalised), (K, K-1).
    """

    chain: Chain
    ids: npt.NDArray[np.int8]
    start_cdf: npt.NDArray[np.float64]
    cdf_end: npt.NDArray[np.float64]
    cdf_noend: npt.NDArray[np.float64]


def tables(chain: Chain, bond_ids: dict[str, int]) -> Tables:
    k = len(chain.bonds)
    ids = np.array([bond_ids[b] for b in chain.bonds], dtype=np.int8)
    start = _normalise(chain.start[None, :])[0]
    with_end = _normalise(np.hstack([chain.trans, chain.end[:, None]]))
    no_end = _normalise(chain.trans)
    return Tables(chain, ids, np.cumsum(start)[: k - 1], np.cumsum(with_end, axis=1)[:, :k],
                  np.cumsum(no_end, axis=1)[:, : k - 1])


def _normalise(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    total = rows.sum(axis=1, keepdims=True)
    return np.where(total > 0, rows / np.where(total > 0, total, 1.0), 0.0)


def uniforms(seed: int, start: int, stop: int, draws: int) -> npt.NDArray[np.float32]:
    """The uniforms of samples start..stop, shape (stop - start, draws)."""
    gen = np.random.Generator(np.random.Philox(key=seed, counter=start * (draws // 8)))
    return gen.random((stop - start, draws), dtype=np.float32)


def walk(t: Tables, u: npt.NDArray[np.float32], max_len: int) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int16]]:
    """Walks for rows of uniforms `u`: bond ids (padded with -1 to max_len) and lengths."""
    c = t.chain
    n = u.shape[0]
    local = np.empty((n, c.max_steps), dtype=np.int8)
    local[:, 0] = (u[:, 2, None] >= t.start_cdf).sum(axis=1)
    if c.uses_end:
        lengths = _walk_with_end(t, u, local)
    else:
        span = c.max_steps - c.min_steps + 1
        lengths = (c.min_steps + np.minimum((u[:, 1] * span).astype(np.int64), span - 1)).astype(np.int16)
        _walk_fixed(t, u, local, int(lengths.max(initial=1)))
    out = np.full((n, max_len), -1, dtype=np.int8)
    width = min(c.max_steps, max_len)
    steps = np.arange(width)[None, :]
    mapped = t.ids[local[:, :width].astype(np.intp, copy=False) % max(len(c.bonds), 1)]
    out[:, :width] = np.where(steps < lengths[:, None], mapped, -1)
    return out, lengths


def _walk_fixed(t: Tables, u: npt.NDArray[np.float32], local: npt.NDArray[np.int8], longest: int) -> None:
    for step in range(1, longest):
        cur = local[:, step - 1]
        local[:, step] = (u[:, FIXED_DRAWS + step - 1, None] >= t.cdf_noend[cur]).sum(axis=1)


def _walk_with_end(t: Tables, u: npt.NDArray[np.float32], local: npt.NDArray[np.int8]) -> npt.NDArray[np.int16]:
    c = t.chain
    k = len(c.bonds)
    n = u.shape[0]
    lengths = np.full(n, c.max_steps, dtype=np.int16)
    alive = np.ones(n, dtype=bool)
    for step in range(1, c.max_steps):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        cur = local[idx, step - 1]
        draw = u[idx, FIXED_DRAWS + step - 1, None]
        if step < c.min_steps:  # too short to stop: end is excluded and the row renormalised
            local[idx, step] = (draw >= t.cdf_noend[cur]).sum(axis=1)
            continue
        nxt = (draw >= t.cdf_end[cur]).sum(axis=1)
        stop = nxt == k
        lengths[idx[stop]] = step
        alive[idx[stop]] = False
        local[idx, step] = np.where(stop, 0, nxt)
    return lengths
