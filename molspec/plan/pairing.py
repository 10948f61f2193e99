"""How the variants of one spec are paired: same questions and per-sample seeds always, same walks when
they change no graph and no bond.

A variant cannot change the dataset block or the sources (the language refuses it), so sample i of every
variant has the same split, question and Philox draws. Its walks are the base's exactly when the bonds
(in order) and the graphs are equal; otherwise the same draws walk another graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Pairing:
    """How a spec's variants pair with the first one (the reference).

    Attributes:
        reference: the first variant.
        unpaired: variants whose sample i may have another question or seed than the reference's.
        same_walks: each variant that starts a class of identical walks -> the later variants in that class.
    """

    reference: str
    unpaired: tuple[str, ...]
    same_walks: dict[str, tuple[str, ...]]

    @property
    def own_walks(self) -> tuple[str, ...]:
        """Variants (other than the reference) that walk their own graphs from the same draws."""
        return tuple(v for v in self.same_walks if v != self.reference and v not in self.unpaired)

    def sentence(self) -> str:
        """The pairing in words, for `molspec plan` and the cards."""
        if self.unpaired:
            head = f"not paired: {', '.join(self.unpaired)} draw other questions or seeds than {self.reference}"
        else:
            head = "paired: sample i has the same question and seed in every variant"
        parts = [head] + [f"same walks as {first}: {', '.join(rest)}"
                          for first, rest in self.same_walks.items() if rest]
        if self.own_walks:
            parts.append(f"other walks from the same draws: {', '.join(self.own_walks)}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "paired": not self.unpaired, "unpaired": list(self.unpaired),
                "same_walks": {k: list(v) for k, v in self.same_walks.items()}, "text": self.sentence()}


def pairing(variants: dict[str, Spec]) -> Pairing:
    """The pairing of a non-empty family of variants, in spec order."""
    names = list(variants)
    ref = variants[names[0]]
    classes: dict[str, list[str]] = {}
    for name in names:
        first = next((c for c in classes if same_walks(variants[c], variants[name])), None)
        if first is None:
            classes[name] = []
        else:
            classes[first].append(name)
    return Pairing(reference=names[0], unpaired=tuple(n for n in names if not paired(ref, variants[n])),
                   same_walks={k: tuple(v) for k, v in classes.items()})
