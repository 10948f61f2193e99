"""Fidelity of bench/fidelity.py's builds as people read them: blind hand labels against the asked bonds.

The walks of a gate-off and a gate-on build were stored in tests/structure/fixtures/generated/ (with the
bond each step was asked for), and their steps labelled by reading, without the asked bonds, per
docs/labelling-guide.md (tests/structure/fixtures/labels/generated-*.jsonl). This prints, per build, the
share of steps whose hand label is the asked bond, per bond, how many steps do more than routine work, and
how the machine judges (cue, learned-blind) agree with the hand labels on those steps.

    .venv/bin/python bench/fidelity_hand.py [--fixture smollm2-fidelity-bench] [--markdown]
    .venv/bin/python bench/fidelity_hand.py --ceiling

`--ceiling` asks how high a person can read a build at all: over every pair of readers of a step (the
first reader's labels and the blind re-labels in labels/agreement/), when one reads the step as its asked
bond, how often the other does too. A build perfect by one reader's reading scores that by another's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molspec.structure.label import BONDS, get_labeler  # noqa: E402

FIXTURES = ROOT / "tests" / "structure" / "fixtures"
# The leads of examples/quickstart.mol, first and current, as regex alternatives: the fixtures keep each step's text,
# not its lead, so benches find the lead by its words (bench/lead_strip.py, bench/restarts.py).
QUICKSTART_LEADS = (r'Another way to approach this problem would be( to use)?|A different method would be to use|'
                    r"From this it follows that|This means that|Putting these facts together, we can conclude that|"
                    r'Next,|Now,|Let me check step \d+ again: ".*?" (To verify this,|Recomputing it,)|'
                    r"Let me check that I have read the problem right: it asks")


def walks(fixture: str) -> list[dict[str, object]]:
    path = FIXTURES / "generated" / f"{fixture}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def hand_labels(fixture: str) -> dict[tuple[str, int, int], str]:
    """(trace id, start, end) -> label, for the paragraph units of every label file on this fixture."""
    out: dict[tuple[str, int, int], str] = {}
    for path in sorted((FIXTURES / "labels").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            d = json.loads(line)
            if d["file"] == f"generated/{fixture}.jsonl" and d["unit"] == "paragraph":
                out[(d["id"], d["start"], d["end"])] = d["label"]
    return out


def build_of(trace_id: str) -> str:
    """The build a walk came from: its id is `<fixture>/<build>-<sample>`."""
    return trace_id.split("/", 1)[1].rsplit("-", 1)[0]


def measure(fixture: str, judges: list[str]) -> dict[str, dict[str, object]]:
    labels = hand_labels(fixture)
    judged = {j: get_labeler(j) for j in judges}
    hit: dict[str, Counter[str]] = defaultdict(Counter)
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    agree: dict[str, Counter[str]] = defaultdict(Counter)
    reasoning: Counter[str] = Counter()
    for w in walks(fixture):
        tid, thinking = str(w["id"]), str(w["thinking"])
        spans = [(int(a), int(b)) for a, b in w["step_spans"]]  # type: ignore[attr-defined]
        texts = [thinking[a:b] for a, b in spans]
        machine = {j: lab.label(str(w["question"]), texts) for j, lab in judged.items()}
        b = build_of(tid)
        for k, ((start, end), asked) in enumerate(zip(spans, w["asked"], strict=True)):  # type: ignore[call-overload]
            hand = labels.get((tid, start, end))
            if hand is None:
                continue
            seen[b][asked] += 1
            hit[b][asked] += hand == asked
            reasoning[b] += hand != "normal"
            for j in judges:
                agree[b][j] += machine[j][k] == hand
    return {b: {"steps": sum(seen[b].values()),
                "hand fidelity": round(sum(hit[b].values()) / sum(seen[b].values()), 3),
                "per bond": {x: f"{hit[b][x]}/{seen[b][x]}" for x in BONDS if seen[b][x]},
                "steps doing more than routine work": reasoning[b],
                **{f"{j} agrees with hand": round(agree[b][j] / sum(seen[b].values()), 3) for j in judges}}
            for b in sorted(seen)}


def readers_of(fixture: str) -> dict[tuple[str, int, int], dict[str, str]]:
    """(trace id, start, end) -> {label file: label}, over the first readers' files and the re-labels."""
    out: dict[tuple[str, int, int], dict[str, str]] = defaultdict(dict)
    labels = FIXTURES / "labels"
    for path in sorted(labels.glob("*.jsonl")) + sorted((labels / "agreement").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            d = json.loads(line)
            if d["file"] == f"generated/{fixture}.jsonl" and d["unit"] == "paragraph":
                out[(d["id"], d["start"], d["end"])][path.stem] = d["label"]
    return out


def ceiling(fixture: str) -> dict[str, dict[str, object]]:
    """Per asked bond and gate setting: of the ordered reader pairs (A, B) where A reads a step as its asked
    bond, the share where B does too."""
    readers = readers_of(fixture)
    pairs: dict[str, Counter[str]] = defaultdict(Counter)
    for w in walks(fixture):
        tid, gate = str(w["id"]), "gate on" if "-on" in build_of(str(w["id"])) else "gate off"
        for (start, end), asked in zip(w["step_spans"], w["asked"], strict=True):  # type: ignore[call-overload]
            got = readers.get((tid, start, end), {})
            for a in got:
                for b in got:
                    if a != b and got[a] == asked:
                        for key in (asked, gate, "all"):
                            pairs[key]["n"] += 1
                            pairs[key]["both"] += got[b] == asked
    return {k: {"reader pairs": c["n"], "the other reads it too": round(c["both"] / c["n"], 3)}
            for k, c in sorted(pairs.items())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", default="smollm2-fidelity-bench")
    ap.add_argument("--judge", default="cue,learned-blind")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--ceiling", action="store_true", help="how far two people agree that a step does its bond")
    args = ap.parse_args()
    if args.ceiling:
        print(json.dumps(ceiling(args.fixture), indent=2))
        return
    res = measure(args.fixture, [j for j in args.judge.split(",") if j])
    if not args.markdown:
        print(json.dumps(res, indent=2))
        return
    builds = list(res)
    print("| | " + " | ".join(builds) + " |")
    print("| --- |" + " ---: |" * len(builds))
    for key in res[builds[0]]:
        vals = [res[b][key] for b in builds]
        cells = [" / ".join(f"{k} {v}" for k, v in x.items()) if isinstance(x, dict) else str(x) for x in vals]
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
