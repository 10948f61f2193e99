"""How the labelers agree with people on SmolLM2 lead builds, reading each step whole or without its lead.

The walks and the first reader's hand labels of every lead build are fixtures (`leads-*`, `s8-*`, `s9-*`;
labels/generated-helper40/41/46/48). For each labeler and each reading: steps compared, agreement with the
hand label, and agreement on whether the step does its asked bond (what the gate decides). `learned-causal`
reads each step as the gate does (only the steps before it); the others read whole walks.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/lead_strip.py
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fidelity_hand import QUICKSTART_LEADS, hand_labels, walks  # noqa: E402  (bench/, the script's folder)

from molspec.runtime.fidelity import label_last  # noqa: E402
from molspec.structure.label import Labeler, get_labeler  # noqa: E402

FIXTURE = "smollm2-fidelity-bench"
LEAD = re.compile(rf"^({QUICKSTART_LEADS})\s*", re.S)  # a step's lead and the space after it


def lead_walks() -> list[dict[str, object]]:
    return [w for w in walks(FIXTURE) if any(f"/{p}-" in str(w["id"]) for p in ("leads", "s8", "s9"))]


def labels_of(name: str, labeler: Labeler, question: str, texts: list[str]) -> list[str]:
    if name == "learned-causal":  # as the gate reads: each step after the steps before it
        return label_last(labeler, [(question, texts[:i], texts[i]) for i in range(len(texts))])
    return labeler.label(question, texts)


def measure(name: str) -> dict[str, tuple[int, float, float]]:
    labeler, hand = get_labeler(name), hand_labels(FIXTURE)
    counts: dict[str, Counter[str]] = {"whole step": Counter(), "model's words only": Counter()}
    for w in lead_walks():
        tid, thinking, asked = str(w["id"]), str(w["thinking"]), list(w["asked"])  # type: ignore[call-overload]
        spans = [(int(a), int(b)) for a, b in w["step_spans"]]  # type: ignore[attr-defined]
        texts = [thinking[a:b] for a, b in spans]
        for reading, seq in (("whole step", texts), ("model's words only", [LEAD.sub("", t) for t in texts])):
            for (start, end), said, bond in zip(spans, labels_of(name, labeler, str(w["question"]), seq), asked,
                                                strict=True):
                person = hand.get((tid, start, end))
                if person is not None:
                    c = counts[reading]
                    c["n"] += 1
                    c["agree"] += said == person
                    c["hit agree"] += (said == bond) == (person == bond)
    return {r: (c["n"], round(c["agree"] / c["n"], 3), round(c["hit agree"] / c["n"], 3)) for r, c in counts.items()}


def main() -> None:
    print("| labeler | reading | steps | agrees with the person | agrees on hit / miss |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name in ("learned-causal", "learned", "learned-blind", "cue"):
        for reading, (n, agree, hit) in measure(name).items():
            print(f"| {name} | {reading} | {n} | {agree} | {hit} |")


if __name__ == "__main__":
    main()
