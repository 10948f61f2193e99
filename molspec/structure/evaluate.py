"""Score a labeler against reference (hand) labels: per-bond precision, recall, F1 and macro-F1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from molspec.structure.label import BONDS


@dataclass(frozen=True, slots=True)
class ClassScore:
    """Scores of one bond. `support` is how many reference steps carry it."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Report:
    """Per-bond scores, their unweighted mean F1, accuracy and the confusion counts.

    Attributes:
        per_class: bond -> ClassScore, in `BONDS` order.
        macro_f1: mean F1 over the bonds that occur in the reference or the predictions.
        accuracy: share of steps labelled as the reference.
        confusion: (reference, predicted) -> count.
    """

    per_class: dict[str, ClassScore]
    macro_f1: float
    accuracy: float
    confusion: dict[tuple[str, str], int]

    def table(self) -> str:
        """A small fixed-width table for logs and reports."""
        lines = [f"{'bond':<8} {'P':>5} {'R':>5} {'F1':>5} {'n':>4}"]
        for bond, s in self.per_class.items():
            lines.append(f"{bond:<8} {s.precision:5.2f} {s.recall:5.2f} {s.f1:5.2f} {s.support:4d}")
        lines.append(f"macro-F1 {self.macro_f1:.3f}  accuracy {self.accuracy:.3f}")
        return "\n".join(lines)


def report(reference: Sequence[str], predicted: Sequence[str], bonds: Sequence[str] = BONDS) -> Report:
    """Compare two equally long label sequences."""
    if len(reference) != len(predicted):
        raise ValueError(f"{len(reference)} reference labels but {len(predicted)} predictions")
    confusion: dict[tuple[str, str], int] = {}
    for ref, pred in zip(reference, predicted, strict=True):
        confusion[(ref, pred)] = confusion.get((ref, pred), 0) + 1
    per_class = {b: _class_score(b, confusion) for b in bonds}
    present = [b for b in bonds if b in reference or b in predicted]
    macro = sum(per_class[b].f1 for b in present) / len(present) if present else 0.0
    hits = sum(n for (ref, pred), n in confusion.items() if ref == pred)
    return Report(per_class, macro, hits / len(reference) if reference else 0.0, confusion)


def _class_score(bond: str, confusion: dict[tuple[str, str], int]) -> ClassScore:
    tp = confusion.get((bond, bond), 0)
    predicted = sum(n for (_, pred), n in confusion.items() if pred == bond)
    support = sum(n for (ref, _), n in confusion.items() if ref == bond)
    precision = tp / predicted if predicted else 0.0
    recall = tp / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ClassScore(precision, recall, f1, support)
