"""Score a labeler against the hand labels (tests/structure/fixtures/hand_labels.jsonl).

    .venv/bin/python bench/labelers.py                                     # the cue labeler
    .venv/bin/python bench/labelers.py --labeler llm --engine vllm --model builtin:smollm2-135m-instruct

Needs ../shared/data/traces (the labels hold offsets into those traces, not their text).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molspec.structure.evaluate import report  # noqa: E402
from molspec.structure.label import get_labeler  # noqa: E402
from molspec.structure.traces import read_traces  # noqa: E402
from tests.structure.test_labeler_eval import load_labels, steps_around  # noqa: E402

TRACES = ROOT.parent / "shared" / "data" / "traces"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labeler", choices=("cue", "llm"), default="cue")
    ap.add_argument("--engine", default="vllm")
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    args = ap.parse_args()
    if args.labeler == "llm":
        from molspec.engines import create

        labeler = get_labeler("llm", engine=create(args.engine, args.model, {"max_model_len": 4096}, 0))
    else:
        labeler = get_labeler("cue")
    traces = {t.id: t for f in ("deepseek-r1", "qwq-32b") for t in read_traces(TRACES / f"{f}.sample.jsonl")}
    by_trace: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in load_labels():
        by_trace[str(row["id"])].append(row)
    jobs, keys = [], []
    for trace_id, rows in by_trace.items():
        t = traces[trace_id]
        spans = steps_around(t.thinking, [(int(r["start"]), int(r["end"])) for r in rows])  # type: ignore[call-overload]
        jobs.append((t.question, [t.thinking[a:b] for a, b in spans]))
        keys.append((spans, rows))
    started = time.perf_counter()
    labels = labeler.label_many(jobs)
    took = time.perf_counter() - started
    gold: dict[str, list[str]] = defaultdict(list)
    pred: dict[str, list[str]] = defaultdict(list)
    for (spans, rows), lab in zip(keys, labels, strict=True):
        found = dict(zip(spans, lab, strict=True))
        for r in rows:
            for split in (str(r["split"]), "all"):
                gold[split].append(str(r["label"]))
                pred[split].append(found[(r["start"], r["end"])])  # type: ignore[index]
    print(f"labeler {args.labeler}{' (' + args.model + ')' if args.labeler == 'llm' else ''}: "
          f"{sum(len(s) for s, _ in keys):,} steps labelled in {took:.1f} s")
    for split in ("tune", "heldout", "all"):
        rep = report(gold[split], pred[split])
        print(f"\n{split} ({len(gold[split])} steps)\n{rep.table()}")
    fallbacks = getattr(labeler, "fallbacks", None)
    if fallbacks is not None:
        print(f"\nreplies that named no bond (fell back to cue): {fallbacks}")


if __name__ == "__main__":
    main()
