"""The label set (formats, sha1 checks, split by question) and the learned labeler (held-out score,
reproducible training, shipped weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from molspec.structure import labelset
from molspec.structure.evaluate import report
from molspec.structure.label import BONDS, Labeler, get_labeler
from molspec.structure.labelset import FIXTURES, load, span_sha1, split_of
from molspec.structure.learned import LearnedLabeler, Model, shipped_model
from molspec.structure.learned_fit import FitSettings
from molspec.structure.traces import read_traces
from tests.structure.test_label import TRACE  # the same six-step trace the cue labeler's tests read
from tests.structure.test_learned_stages import few_runs

ROOT = Path(__file__).resolve().parents[2]
SPLIT_MODEL = FIXTURES / "learned_train_split.json"
# Held-out macro-F1 of the train-split model when it was last trained (scripts/train_labeler.py
# --split train; 32,501 labels, 7,567 held-out steps): 0.699 (explore 0.69, deep 0.63, reflect 0.76, normal
# 0.72); on the 1,603 held-out steps of SmolLM2 builds 0.707 (0.435 for the model trained before the lead builds'
# labels, which read all held-out steps at 0.674). The guard allows a small margin. Per-class floors guard
# against one class collapsing (the weakest, deep, was 0.63).
MEASURED = 0.699
GENERATED_MEASURED = 0.707
MARGIN = 0.03
CLASS_FLOOR = 0.57


@pytest.fixture(scope="module")
def labels(shared_traces: dict[str, Path]) -> labelset.LabelSet:
    return load()


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_both_formats_sha1_checks_and_skips(shared_traces: dict[str, Path], tmp_path: Path) -> None:
    trace = next(read_traces(shared_traces["r1"]))
    start, end = 0, trace.thinking.index("\n\n")
    good = {"file": "deepseek-r1.sample.jsonl", "id": trace.id, "start": start, "end": end, "label": "normal",
            "sha1": span_sha1(trace.thinking[start:end])}  # fmt: skip
    old = dict(good, split="tune")  # the first hand labels: a split field, no unit
    sentence = dict(good, end=trace.thinking.index(".") + 1, unit="sentence", annotator="t")
    sentence["sha1"] = span_sha1(trace.thinking[0 : int(sentence["end"])])  # type: ignore[call-overload]
    moved = dict(good, start=1, unit="sentence")  # same hash, other offsets: the text does not match
    missing = dict(good, id="deepseek-r1/no-such-trace")
    bad: dict[str, object] = {"file": "deepseek-r1.sample.jsonl", "label": "deep"}
    got = load([_write(tmp_path / "a.jsonl", [old, sentence, moved, missing, bad, good])])
    assert got.skipped == {"sha1 mismatch": 1, "trace not found": 1, "malformed row": 1, "duplicate": 1}
    assert [(r.unit, r.n_labelled) for r in got.runs] == [("paragraph", 1), ("sentence", 1)]
    paragraph, sent = got.runs
    assert paragraph.steps[0] == trace.thinking[start:end] and paragraph.gold[0] == "normal"
    assert all(g is None for g in paragraph.gold[1:]) and len(paragraph.steps) > 3  # the rest is context
    assert sent.steps[0].endswith(".") and len(sent.steps[1]) < len(paragraph.steps[1])  # sentence context


def test_split_is_by_question_and_deterministic(labels: labelset.LabelSet) -> None:
    assert split_of("deepseek-r1/aime2024-3") == split_of("qwq-32b/aime2024-3")
    assert {split_of(f"x/q{i}") for i in range(50)} == {"train", "heldout"}
    by_split: dict[str, set[str]] = {"train": set(), "heldout": set()}
    for run in labels.runs:
        by_split[run.split].add(run.trace_id.split("/", 1)[-1])
    assert by_split["train"] and by_split["heldout"]
    assert not by_split["train"] & by_split["heldout"]
    within = next(v for v in labelset.views(labels) if v.name == "within")
    assert not {r.trace_id for r in within.train} & {r.trace_id for r in within.test}


def test_labels_in_repo_resolve(labels: labelset.LabelSet) -> None:
    """Every committed label resolves to its span (a label file with moved offsets fails here)."""
    assert labels.n_labelled >= 279
    assert not labels.skipped.get("sha1 mismatch") and not labels.skipped.get("trace not found")
    assert {g for r in labels.runs for g in r.gold if g} == set(BONDS)


def test_learned_heldout_macro_f1(labels: labelset.LabelSet) -> None:
    """The train-split model on the held-out traces (the shipped model saw every label, so it is not scored)."""
    model = Model.from_json(SPLIT_MODEL.read_text(encoding="utf-8"))
    held = [r for r in labels.runs if r.split == "heldout"]
    assert model.info["split"] == "train"
    assert not set(model.info["questions"]) & {r.trace_id.split("/", 1)[-1] for r in held}
    predicted = labelset.predict(LearnedLabeler(model), held)
    gold, pred = labelset.gold_and_predicted(held, predicted)
    result = report(gold, pred)
    print(f"\nlearned (train split) on held-out traces, n={len(gold)}\n{result.table()}")
    assert result.macro_f1 >= MEASURED - MARGIN
    assert all(s.f1 >= CLASS_FLOOR for s in result.per_class.values())
    built = [(r, p) for r, p in zip(held, predicted, strict=True) if r.teacher == "generated"]
    gold, pred = labelset.gold_and_predicted([r for r, _ in built], [p for _, p in built])
    built_result = report(gold, pred)
    print(f"of them SmolLM2 builds' steps, n={len(gold)}\n{built_result.table()}")
    assert built_result.macro_f1 >= GENERATED_MEASURED - MARGIN


def test_training_is_reproducible(shared_traces: dict[str, Path], tmp_path: Path) -> None:
    """The script twice on a small subset, in processes with different string hashing: same bytes."""
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"w{seed}.json"
        cmd = [sys.executable, str(ROOT / "scripts" / "train_labeler.py"), "--split", "train",
               "--max-runs", "12", "--steps", "25", "--out", str(out)]  # fmt: skip
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    model = Model.from_json(outs[0].decode())
    assert model.info["runs"] == 12 and len(model.stages) == FitSettings().stages


def test_shipped_learned_labeler() -> None:
    labeler = get_labeler()
    assert isinstance(labeler, Labeler) and labeler.name == "learned"
    labels = labeler.label("Two numbers have product 12 and difference 1. Find their sum.", TRACE)
    assert len(labels) == len(TRACE) and set(labels) <= set(BONDS)
    # The derivation (2) is deep and the check (3) reflect. The stacked stages call the next step ("Alternatively,
    # maybe we could guess ...") explore; the recurrent last stage reads it otherwise (reflect when trained on
    # 29,569 labels, normal since the lead builds' labels, where "another way" followed by routine work is
    # normal): the kind of explore step it loses (held-out explore F1 0.67 -> 0.66 while macro-F1 gained 0.021,
    # bench/sequence_experiment.md; explore 0.69 now). Not asserted: a miss, not a property.
    assert labels[2] == "deep" and labels[3] == "reflect"
    stacked = shipped_model()
    stacked_only = LearnedLabeler(Model(stacked.keys, stacked.words, stacked.weights, stacked.stages, stacked.info))
    assert stacked_only.label("Two numbers have product 12 and difference 1. Find their sum.", TRACE)[3:5] == [
        "reflect",
        "explore",
    ]
    assert labeler.label_many([(None, TRACE), (None, [])]) == [labeler.label(None, TRACE), []]
    sentences = [s for step in TRACE for s in step.split(". ")]  # sentence-sized steps work as well
    assert len(labeler.label(None, sentences)) == len(sentences)
    model = shipped_model()
    assert model.info["split"] == "all" and Model.from_json(model.to_json()).info == model.info
    assert (ROOT / "molspec" / "structure" / "weights" / "learned.json").stat().st_size < 2_000_000


def test_learned_blind_ignores_openers() -> None:
    """learned-blind reads steps without their opening discourse markers: prefixing one changes nothing."""
    blind = get_labeler("learned-blind")
    assert blind.name == "learned-blind"
    plain = blind.label(None, TRACE)
    assert set(plain) <= set(BONDS)
    for opener in ("Wait, let me check. ", "Alternatively, ", "Therefore, ", "Hmm, so "):
        assert blind.label(None, [opener + step for step in TRACE]) == plain
    assert shipped_model("learned-blind").info["strip_openers"] is True


def test_label_many_in_one_pass_equals_one_trace_at_a_time() -> None:
    """The batched path (one matrix product per stage over a build round's traces) labels exactly as `label`
    does trace by trace: windows of real teacher paragraphs, both shipped models, empty traces among them."""
    traces: list[tuple[str | None, list[str]]] = []
    for name in ("deepseek-r1", "qwq-32b"):
        path = labelset.TRACES / f"{name}.sample.jsonl"
        if not path.is_file():
            pytest.skip("the shared traces are not beside the repo")
        for line in path.read_text(encoding="utf-8").splitlines()[:6]:
            r = json.loads(line)
            paras = [p for p in r["thinking"].split("\n\n") if p.strip()][:60]
            traces += [(r["question"], paras[max(0, i - 2) : i + 1]) for i in range(len(paras))]
    traces += [(None, []), (None, TRACE)]
    for model in ("learned", "learned-blind", "learned-causal"):
        labeler = LearnedLabeler(name=model)
        assert labeler.label_many(traces) == [labeler.label(q, s) for q, s in traces]


def test_the_last_stage_decides_by_the_training_label_shares(labels: labelset.LabelSet) -> None:
    """Training is class-balanced; with `prior` w, the last stage's bias adds w times the log label shares and
    nothing else changes, so a rare class is called only as often as the evidence warrants. The last stage is
    the recurrent one (each net's head bias); without it, the last stacked stage (row 0: the bias signal)."""
    import numpy as np

    from molspec.structure.learned_fit import fit

    runs = few_runs(labels.runs)  # distinct questions: more than one fold, so the later stages are trained
    for sequence in (FitSettings().sequence, 0):
        balanced = fit(runs, FitSettings(steps=25, prior=0.0, sequence=sequence, sequence_epochs=2))
        decided = fit(runs, FitSettings(steps=25, sequence=sequence, sequence_epochs=2))
        counts = np.array([decided.info["class_counts"][b] for b in BONDS], dtype=np.float64)
        expected = FitSettings().prior * np.log((counts + 1) / (counts + 1).sum())
        if sequence:
            assert decided.sequence is not None and balanced.sequence is not None
            for a, b in zip(decided.sequence.nets, balanced.sequence.nets, strict=True):
                assert np.allclose(a["head_b"] - b["head_b"], expected)
                assert all(np.array_equal(a[k], b[k]) for k in a if k != "head_b")
            assert all(np.array_equal(a, b) for a, b in zip(decided.stages, balanced.stages, strict=True))
        else:
            shift = decided.stages[-1] - balanced.stages[-1]
            assert np.allclose(shift[0], expected) and not shift[1:].any()
            assert all(np.array_equal(a, b) for a, b in zip(decided.stages[:-1], balanced.stages[:-1], strict=True))
        assert np.array_equal(decided.weights, balanced.weights)
