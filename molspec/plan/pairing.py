"""How the variants of one spec are paired: same questions and per-sample seeds always, same walks when
they change no graph and no bond.

A variant cannot change the dataset block or the sources (the language refuses it), so sample i of every
variant has the same split, question and Philox draws. Its walks are the base's exactly when the bonds
(in order) and the graphs are equal; otherwise the same draws walk another graph.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from molspec.spec import Spec


def _content(models: dict[str, Any] | BaseModel) -> str:
    """Compare by meaning: spans and other excluded fields take no part (pydantic's == would compare them)."""
    if isinstance(models, BaseModel):
        return json.dumps(models.model_dump(mode="json"), sort_keys=True)
    return json.dumps({k: m.model_dump(mode="json") for k, m in models.items()}, sort_keys=True)


def paired(a: Spec, b: Spec) -> bool:
    """Sample i has the same split, question and seed in both specs."""
    return (a.dataset is not None and b.dataset is not None and _content(a.dataset) == _content(b.dataset)
            and _content(a.sources) == _content(b.sources))


def same_walks(a: Spec, b: Spec) -> bool:
    """Both specs draw identical walks: paired, the same bonds in the same order, equal graphs."""
    return (paired(a, b) and tuple(a.bonds) == tuple(b.bonds)
            and _content(a.graphs) == _content(b.graphs))
