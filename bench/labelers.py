"""Score labelers against the hand labels: one table, held out by trace (see molspec/structure/labelset.py).

    .venv/bin/python bench/labelers.py                                  # cue and learned
    .venv/bin/python bench/labelers.py --labeler llm --engine vllm --model builtin:smollm2-135m-instruct
    .venv/bin/python bench/labelers.py --markdown                       # the table as markdown

Columns: per-class P/R/F1 and macro-F1 on all held-out traces; macro-F1 within a teacher (train
split -> held-out R1 and QwQ traces), across teachers (all R1 -> all QwQ, and back), on held-out
generated (molspec/SmolLM2) traces, on held-out paragraph and sentence steps, on held-out R1/QwQ
sentences only ("teacher sentence": the sentence column without SmolLM2's, which are nearly all
`normal`; the closest stand-in here for other writers' sentence-sized steps), and on the held-out
traces with each step's opening discourse marker removed ("no opener": keywords are not the
structure; a labeler that only reads them drops here); steps/s labelling
every step of every labelled run, in CPU seconds of this process (the machine is shared); for `llm`,
wall-clock seconds of its scoring passes (its engine works in other threads and processes).
`learned` is retrained for each view on that view's training runs only (never the shipped weights,
which saw every label); `cue` and `llm` are not trained. Needs ../shared/data/traces.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molspec.structure import labelset  # noqa: E402
from molspec.structure.evaluate import Report, report  # noqa: E402
from molspec.structure.features import strip_opener  # noqa: E402
from molspec.structure.label import BONDS, Labeler, get_labeler  # noqa: E402
from molspec.structure.labelset import Run, View  # noqa: E402
from molspec.structure.learned import LearnedLabeler  # noqa: E402
from molspec.structure.learned_fit import fit, settings_for  # noqa: E402

WAIT = "Wait, let me check. "
WALL = [0.0, 0.0]  # wall seconds and steps of the scoring passes of the labeler being measured
COLUMNS = (
    "heldout", "within", "r1->qwq", "qwq->r1", "generated", "paragraph", "sentence", "teacher sentence", "no opener",
)  # fmt: skip


def learned_for(train: Sequence[Run], cache: dict[tuple[str, ...], Labeler], blind: bool) -> Labeler:
    """A learned labeler trained on `train` (views with the same training runs share one)."""
    key = (str(blind), *(f"{r.file}:{r.trace_id}:{r.unit}" for r in train))
    if key not in cache:
        name = "learned-blind" if blind else "learned"
        cache[key] = LearnedLabeler(fit(train, settings_for(blind)), name=name)
    return cache[key]


Memo = dict[tuple[int, str, str, str, int], list[str]]


def predicted(labeler: Labeler, runs: Sequence[Run], memo: Memo) -> list[list[str]]:
    """The labels of `runs`; each run is labelled once per labeler (views share runs)."""

    def key(r: Run) -> tuple[int, str, str, str, int]:
        return (id(labeler), r.file, r.trace_id, r.unit, hash(r.steps))

    todo = [r for r in runs if key(r) not in memo]
    started = time.perf_counter()
    done = labelset.predict(labeler, todo)
    WALL[0] += time.perf_counter() - started
    WALL[1] += sum(len(r.steps) for r in todo)
    for run, labels in zip(todo, done, strict=True):
        memo[key(run)] = labels
    return [memo[key(r)] for r in runs]


def score(labeler: Labeler, runs: Sequence[Run], memo: Memo) -> Report | None:
    if not runs:
        return None
    gold, pred = labelset.gold_and_predicted(runs, predicted(labeler, runs, memo))
    return report(gold, pred)


def speed(labeler: Labeler, runs: Sequence[Run]) -> float:
    """Steps per CPU second over every step of `runs` (a warm-up call first: weights load once)."""
    labeler.label_many([(r.question, r.steps) for r in runs[:1]])
    started = time.process_time()
    labeler.label_many([(r.question, r.steps) for r in runs])
    return sum(len(r.steps) for r in runs) / max(time.process_time() - started, 1e-9)


def measure(
    name: str, make: Callable[[Sequence[Run]], Labeler], views: Sequence[View], runs: Sequence[Run]
) -> dict[str, object]:
    row: dict[str, object] = {"labeler": name}
    memo: Memo = {}
    WALL[:] = [0.0, 0.0]
    for view in views:
        row[view.name] = score(make(view.train), view.test, memo)
    held = next(v for v in views if v.name == "heldout")
    row["wait"] = wait_prefix(make(held.train), held.test, memo)
    if name == "llm":  # the engine works in other threads and processes: wall time of the scoring passes
        row["steps/s"] = WALL[1] / max(WALL[0], 1e-9)
    else:
        row["steps/s"] = speed(make([r for r in runs if r.split == "train"]), runs)
    return row


def wait_prefix(labeler: Labeler, runs: Sequence[Run], memo: Memo) -> str:
    """Share of held-out steps labelled reflect, as they are -> with "Wait, let me check. " in front of
    every step: how far a generator could game the labeler with an opener."""
    if not runs:
        return "-"
    prefixed = [replace(r, steps=tuple(WAIT + s for s in r.steps)) for r in runs]
    shares = []
    for version in (runs, prefixed):
        _, pred = labelset.gold_and_predicted(version, predicted(labeler, version, memo))
        shares.append(sum(p == "reflect" for p in pred) / len(pred))
    return f"{shares[0]:.2f} -> {shares[1]:.2f}"


def table(rows: Sequence[dict[str, object]], counts: dict[str, int], markdown: bool) -> str:
    head = ["labeler"] + [f"{b} P/R/F1" for b in BONDS] + [f"{c} ({counts[c]})" for c in COLUMNS]
    head += ["reflect share, +'Wait, let me check.'", "steps/s"]
    lines = []
    for row in rows:
        held = row["heldout"]
        cells = [str(row["labeler"])]
        for b in BONDS:
            s = held.per_class[b] if isinstance(held, Report) else None
            cells.append(f"{s.precision:.2f} / {s.recall:.2f} / {s.f1:.2f}" if s else "-")
        for c in COLUMNS:
            rep = row[c]
            cells.append(f"{rep.macro_f1:.3f}" if isinstance(rep, Report) else "-")
        cells += [str(row["wait"]), f"{row['steps/s']:,.0f}"]
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        return "\n".join(out + ["| " + " | ".join(cells) + " |" for cells in lines])
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=True)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)) for r in [head, *lines])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labeler", action="append", choices=("cue", "learned", "learned-blind", "llm"),
                    help="repeatable; default: cue, learned, learned-blind")  # fmt: skip
    ap.add_argument("--engine", default="vllm", help="engine of the llm judge")
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct", help="model of the llm judge")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--heldout-only", action="store_true", help="score held-out traces only (no cross-teacher)")
    ap.add_argument(
        "--max-runs", type=int, default=None, help="with --heldout-only: the N shortest held-out runs of each teacher"
    )
    args = ap.parse_args()
    labels = labelset.load()
    if args.heldout_only and {"learned", "learned-blind"} & set(args.labeler or ("learned",)):
        ap.error("--heldout-only is for labelers that are not trained (cue, llm)")
    if args.heldout_only:  # for slow judges: cross-teacher columns would label every trace
        held_runs = sorted((r for r in labels.runs if r.split == "heldout"), key=lambda r: len(r.steps))
        teachers = sorted({r.teacher for r in held_runs})
        kept = [r for t in teachers for r in [x for x in held_runs if x.teacher == t][: args.max_runs]]
        labels = labelset.LabelSet(kept, labels.skipped)
    train, held = _heldout(labels.runs)
    views = [
        labelset.View("heldout", train, held),
        *labelset.views(labels),
        labelset.View("teacher sentence", train, _teacher_sentences(held)),
        labelset.View("no opener", train, _strip(held)),
    ]
    counts = {v.name: sum(r.n_labelled for r in v.test) for v in views}
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(labels.skipped.items())) or "none"
    print(f"{labels.n_labelled} labelled steps in {len(labels.runs)} runs; skipped rows: {skipped}")
    cache: dict[tuple[str, ...], Labeler] = {}
    makers: dict[str, Callable[[Sequence[Run]], Labeler]] = {
        "cue": lambda _train: get_labeler("cue"),
        "learned": lambda train: learned_for(train, cache, blind=False),
        "learned-blind": lambda train: learned_for(train, cache, blind=True),
    }
    if "llm" in (args.labeler or ()):
        from molspec.engines import create

        judge = get_labeler("llm", engine=create(args.engine, args.model, {"max_model_len": 4096}, 0))
        makers["llm"] = lambda _train: judge
    rows = [
        measure(name, makers[name], views, labels.runs) for name in args.labeler or ("cue", "learned", "learned-blind")
    ]
    print(table(rows, counts, args.markdown))
    fallbacks = {name: getattr(makers[name]([]), "fallbacks", None) for name in makers if name == "llm"}
    for name, n in fallbacks.items():
        print(f"{name}: steps with no bond among the top tokens (took the cue label) in the last call: {n}")


def _strip(runs: Sequence[Run]) -> tuple[Run, ...]:
    """The runs with each step's opening discourse markers removed (steps that are only a marker stay)."""
    return tuple(replace(r, steps=tuple(map(strip_opener, r.steps))) for r in runs)


def _teacher_sentences(runs: Sequence[Run]) -> tuple[Run, ...]:
    return tuple(r for r in runs if r.unit == "sentence" and r.teacher != "generated")


def _heldout(runs: Sequence[Run]) -> tuple[tuple[Run, ...], tuple[Run, ...]]:
    return tuple(r for r in runs if r.split == "train"), tuple(r for r in runs if r.split == "heldout")


if __name__ == "__main__":
    main()
