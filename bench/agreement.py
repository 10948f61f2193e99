"""How far two people agree on the hand labels: the ceiling any labeler's held-out score is read against.

Every file under tests/structure/fixtures/labels/agreement/ is a blind re-label of spans that the main label
files already label (same file, trace id, offsets and unit). This prints, per re-label file and over all of
them: the spans compared, observed agreement, Cohen's kappa, the macro-F1 of one annotator scored against
the other (per class too), and the confusion between them.

    .venv/bin/python bench/agreement.py [--markdown]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molspec.structure.evaluate import report  # noqa: E402
from molspec.structure.label import BONDS  # noqa: E402
from molspec.structure.labelset import FIXTURES, label_files, read_rows  # noqa: E402

Key = tuple[str, str, int, int, str]  # file, trace id, start, end, unit


def first_labels() -> dict[Key, str]:
    """The main label files' label of each span (the first wins, as in training)."""
    out: dict[Key, str] = {}
    skipped: Counter[str] = Counter()
    for path in label_files():
        for r in read_rows(path, skipped):
            out.setdefault((r.file, r.trace_id, r.start, r.end, r.unit), r.label)
    return out


def kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa: agreement beyond what the two label distributions give by chance."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    chance = sum(ca[k] * cb[k] for k in BONDS) / (n * n)
    return (observed - chance) / (1 - chance) if chance < 1 else 1.0


def compare(name: str, first: list[str], second: list[str]) -> dict[str, str]:
    rep = report(first, second)
    row = {"re-label": name, "spans": str(len(first)), "agreement": f"{rep.accuracy:.0%}",
           "kappa": f"{kappa(first, second):.2f}", "macro-F1 (second vs first)": f"{rep.macro_f1:.3f}"}
    row.update({f"{b} F1 (n)": f"{s.f1:.2f} ({s.support})" for b, s in rep.per_class.items()})
    off = sorted(((ref, pred, n) for (ref, pred), n in rep.confusion.items() if ref != pred), key=lambda t: -t[2])
    row["most common disagreements (first -> second)"] = ", ".join(f"{r}->{p} {n}" for r, p, n in off[:4])
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    main_labels = first_labels()
    rows: list[dict[str, str]] = []
    every: tuple[list[str], list[str]] = ([], [])
    skipped: Counter[str] = Counter()
    for path in sorted((FIXTURES / "labels" / "agreement").glob("*.jsonl")):
        pairs = [(main_labels[k], r.label) for r in read_rows(path, skipped)
                 if (k := (r.file, r.trace_id, r.start, r.end, r.unit)) in main_labels]
        if pairs:
            rows.append(compare(path.stem, [p[0] for p in pairs], [p[1] for p in pairs]))
            every[0].extend(p[0] for p in pairs)
            every[1].extend(p[1] for p in pairs)
    if len(rows) > 1:
        rows.append(compare("all", *every))
    if not args.markdown:
        for r in rows:
            print(r)
        return
    print("| " + " | ".join(rows[0]) + " |")
    print("| " + " | ".join("---" for _ in rows[0]) + " |")
    for r in rows:
        print("| " + " | ".join(r.values()) + " |")


if __name__ == "__main__":
    main()
