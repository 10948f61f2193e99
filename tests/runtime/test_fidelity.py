"""The fidelity gate: hygiene checks, the retry loop with its bound and record, and resume during retries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import molspec
from molspec.engines.base import Completion, Request
from molspec.pipeline import build_plan
from molspec.records import Failure, Row
from molspec.runtime.build import BuildOptions, jobs, prepare, run_config
from molspec.runtime.fidelity import Attempt, StepTrial, label_last, labelled, restated
from molspec.runtime.hygiene import check_text, echoes, grams3, near_duplicate, trim_to_sentence
from molspec.runtime.partners import claim, partner
from molspec.runtime.runconfig import Progress
from molspec.runtime.scheduler import run
from molspec.structure.label import BOND_KINDS, BONDS, Labeler, NextLabel, get_labeler, step_labeler
from molspec.structure.lm_probe import LmProbeLabeler
from tests.runtime.conftest import write_spec

KIND_LABEL = {kind: label for label, kind in BOND_KINDS.items()}


class TagLabeler:
    """Reads the label a scripted step announces (`[deep] ...`; the last tag, after any that a lead quotes;
    none: normal): the loop is under test, not a labeler."""

    name = "tag"

    def label(self, question: str | None, steps: Sequence[str]) -> list[str]:
        return [_last_tag(s) for s in steps]

    def label_many(self, traces: Sequence[tuple[str | None, Sequence[str]]]) -> list[list[str]]:
        return [self.label(q, s) for q, s in traces]


def _last_tag(text: str) -> str:
    where = {text.rfind(f"[{b}]"): b for b in BONDS}
    return where[max(where)] if max(where) >= 0 else "normal"


class Scripted:
    """Writes the wrong bond for the first `wrong` attempts at each step, then the asked one."""

    name = "scripted"

    def __init__(self, wrong: int, fail_retries: bool = False) -> None:
        self.wrong, self.fail_retries = wrong, fail_retries
        self.calls: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        self.calls += requests
        return [self._one(r) for r in requests]

    def _one(self, r: Request) -> Completion:
        m = r.meta
        if self.fail_retries and m.get("attempt"):
            return Completion(r.key, "", 0, "error", error="prompt too long")
        if m["kind"] == "answer":
            return Completion(r.key, "So the answer is \\boxed{4}.", 6, "stop")
        asked = KIND_LABEL[m["kind"]]
        said = asked if m["attempt"] >= self.wrong else ("deep" if asked == "normal" else "normal")
        text = f"[{said}] step {m['step']} of sample {m['sample']}, attempt {m['attempt']}: {said} words {r.key}."
        return Completion(r.key, text, 12, "stop")

    def describe(self) -> dict[str, str]:
        return {"engine": self.name}

    def close(self) -> None:
        pass


def _run(tmp_path: Path, engine: Scripted, retries: int = 2, greedy: bool = False, labeler: Labeler | None = None,
         stepper: bool = True, min_fit: float = 0.0) -> list[Row]:
    spec = write_spec(tmp_path / "spec", samples=6)
    if greedy:
        spec.write_text(spec.read_text().replace("temperature = 0.5", "temperature = 0.0"))
    p = prepare(build_plan(molspec.load(spec)), BuildOptions(out=tmp_path / "out"))
    cfg = run_config(p, BuildOptions(out=tmp_path / "out"), engine.describe())
    cfg.labeler = labeler or TagLabeler()
    cfg.gate = p.spec.fidelity.model_copy(update={"retries": retries, "min_fit": min_fit})
    cfg.stepwise = stepper
    out: list[Row | Failure] = []
    run(p.spec, engine, jobs(p, list(range(6))), cfg, out.extend, Progress())
    assert all(isinstance(r, Row) for r in out)
    return sorted((r for r in out if isinstance(r, Row)), key=lambda r: r.sample_index)


def test_gate_asks_again_until_the_step_reads_as_its_bond(tmp_path: Path) -> None:
    engine = Scripted(wrong=1)
    rows = _run(tmp_path, engine)
    for row in rows:
        assert row.fidelity == 1.0
        for st in row.steps:
            assert st.label == KIND_LABEL[{"explore": "vdw", "deep": "covalent", "reflect": "hydrogen",
                                           "normal": "plain"}[st.bond]]
            assert st.attempts == 2 and len(st.retries) == 1 and st.retries[0].startswith("label:")
            assert st.text.endswith(f"attempt 1: {st.label} words {row.sample_index}:{st.text.split()[2]}:1.")
    steps = sum(len(r.steps) for r in rows)
    assert len(engine.calls) == 2 * steps + len(rows)  # every step twice, every answer once
    retried = [c for c in engine.calls if c.meta.get("attempt") == 1]
    first = {c.key: c for c in engine.calls if c.meta.get("attempt") == 0}
    for c in retried:  # a new seed, and the instruction restated at the end of the prompt
        twin = first[c.key.rsplit(":", 1)[0]]
        assert c.params.seed != twin.params.seed
        # hotter than the first attempt, so that a small model writes a different candidate
        assert c.params.temperature == max(twin.params.temperature, 0.8) > twin.params.temperature
        assert c.messages[-1]["content"].startswith(twin.messages[-1]["content"].rstrip())
        assert "This step must be" in c.messages[-1]["content"]


def test_a_step_labeler_labels_as_rereading_the_walk_does(tmp_path: Path) -> None:
    # learned-causal keeps what it read of each walk and reads each attempt alone: every kept step's label is
    # the one re-reading its walk gives (the way any other labeler reads)
    causal = get_labeler("learned-causal")
    assert step_labeler(causal) is not None and step_labeler(TagLabeler()) is None
    rows = _run(tmp_path / "a", Scripted(wrong=1), labeler=causal)
    assert any(st.attempts > 1 for r in rows for st in r.steps)
    for r in rows:
        texts = [st.text for st in r.steps]
        reread = label_last(causal, [(r.question, texts[:i], t) for i, t in enumerate(texts)])
        assert [st.label for st in r.steps] == reread
        # the row records how sure the labeler was that the kept text does its bond
        assert all(st.fit is not None and 0.0 <= st.fit <= 1.0 for st in r.steps)
        assert all(st.fit > 0.25 for st in r.steps if st.label == st.bond)  # 4 bonds: a hit is the likeliest
    assert all(st.fit is None for r in _run(tmp_path / "b", Scripted(wrong=1)) for st in r.steps)  # no probabilities


def test_the_lm_step_labeler_labels_as_reading_the_whole_walk_does(tmp_path: Path) -> None:
    # learned-lm-causal keeps SmolLM2's cache of each walk (lm_next): a kept step's label and fit in the build are
    # what reading the whole walk up to it gives, through a round's attempts and retries
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    lm = get_labeler("learned-lm-causal")
    assert isinstance(lm, LmProbeLabeler) and step_labeler(lm) is lm
    rows = _run(tmp_path, Scripted(wrong=1), labeler=lm, min_fit=0.5)
    assert any(st.attempts > 1 for r in rows for st in r.steps)
    for r in rows:
        texts = [st.text for st in r.steps]
        scores = lm.scores_many([(r.question, texts)])[0]
        assert [st.label for st in r.steps] == [BONDS[i] for i in scores.argmax(axis=1)]
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        fits = [probs[i, BONDS.index(KIND_LABEL[BOND_KINDS[st.bond]])] for i, st in enumerate(r.steps)]
        assert [st.fit for st in r.steps] == pytest.approx(fits, abs=2e-3)  # rows keep fit to 4 places


def test_of_attempts_that_all_miss_the_one_nearest_the_bond_is_kept() -> None:
    # a step labeler's probability of the bond's kind breaks the tie; without one, the first attempt is kept
    def miss(text: str, fit: float) -> Attempt:
        return Attempt(text, 5, "stop", ("label:normal",), None, "normal", fit=fit)

    assert StepTrial([miss("a", 0.1), miss("b", 0.3), miss("c", 0.2)]).best().text == "b"
    assert StepTrial([miss("a", 0.0), miss("b", 0.0)]).best().text == "a"
    hit = Attempt("d", 5, "stop", (), None, "deep", fit=0.05)
    assert StepTrial([miss("b", 0.9), hit]).best().text == "d"  # a hit still beats any miss


def test_a_hit_below_min_fit_is_unsure_and_asked_again(tmp_path: Path) -> None:
    spec = molspec.load(write_spec(tmp_path / "spec")).spec
    assert spec is not None
    deep = spec.bonds["deep"]
    plain = Attempt("Then 3 + 4 = 7.", 5, "stop", (), None, None)

    def read(p_deep: float) -> NextLabel:  # probabilities in BONDS order; the rest spread over the other three
        rest = (1.0 - p_deep) / 3
        return NextLabel("deep", None, tuple(p_deep if b == "deep" else rest for b in BONDS))

    sure, unsure = labelled(plain, "deep", deep, read(0.8), 0.6), labelled(plain, "deep", deep, read(0.4), 0.6)
    assert sure.problems == () and sure.fit == 0.8
    assert unsure.problems == ("unsure",) and unsure.fit == 0.4  # the label is the bond's, the labeler unsure
    assert labelled(plain, "deep", deep, read(0.4)).problems == ()  # min_fit 0: the label alone decides
    assert labelled(plain, "deep", deep, None, 0.6).problems == ()  # no probabilities (e.g. cue): the label decides
    assert labelled(plain, "normal", deep, read(0.1), 0.6).problems == ("label:normal",)
    assert "This step must be" in restated("Write the step.", deep, unsure.problems)  # the instruction restated
    # an unsure hit counts as a miss when the attempts are compared: the surer one is kept, and a sure hit wins
    assert StepTrial([unsure, labelled(plain, "deep", deep, read(0.5), 0.6)]).best().fit == 0.5
    assert StepTrial([labelled(plain, "deep", deep, read(0.59), 0.6), sure]).best() is sure


def test_min_fit_asks_unsure_steps_again_in_a_build(tmp_path: Path) -> None:
    causal = get_labeler("learned-causal")
    loose = _run(tmp_path / "a", Scripted(wrong=0), retries=1, labeler=causal)
    strict = _run(tmp_path / "b", Scripted(wrong=0), retries=1, labeler=causal, min_fit=0.99)
    unsure = [st for r in strict for st in r.steps if "unsure" in st.retries]
    assert unsure and all(st.attempts == 2 for st in unsure)  # asked again once, the bound
    assert sum(st.attempts for r in strict for st in r.steps) > sum(st.attempts for r in loose for st in r.steps)


def test_a_greedy_step_is_retried_greedily(tmp_path: Path) -> None:
    engine = Scripted(wrong=1)
    _run(tmp_path, engine, greedy=True)
    retried = [c for c in engine.calls if c.meta.get("attempt")]
    assert retried and all(c.params.temperature == 0.0 for c in retried)  # repeatable: only the prompt differs


def test_gate_stops_at_its_bound_and_keeps_the_record(tmp_path: Path) -> None:
    engine = Scripted(wrong=99)
    rows = _run(tmp_path, engine, retries=2)
    steps = [st for r in rows for st in r.steps]
    assert all(st.attempts == 3 and len(st.retries) == 2 for st in steps)
    assert all(any(p.startswith("label:") for p in st.problems) for st in steps)
    assert all(st.text.endswith(":0.") or ":0." not in st.text for st in steps)
    assert all("attempt 0" in st.text for st in steps)  # all equally wrong: the first attempt is kept
    assert len(engine.calls) == 3 * len(steps) + len(rows)


def test_a_failed_retry_keeps_the_earlier_attempt(tmp_path: Path) -> None:
    engine = Scripted(wrong=1, fail_retries=True)  # e.g. the restated prompt no longer fits the context
    rows = _run(tmp_path, engine)
    assert len(rows) == 6
    wrong = [st for r in rows for st in r.steps if st.bond != "normal"]
    assert wrong and all(st.attempts == 2 and "attempt 0" in st.text for st in wrong)
    assert all(st.problems[-1] == "retry failed: prompt too long" for st in wrong)


def test_gate_off_keeps_the_first_attempt(tmp_path: Path) -> None:
    engine = Scripted(wrong=1)
    rows = _run(tmp_path, engine, retries=0)
    assert all(st.attempts == 1 and st.retries == [] for r in rows for st in r.steps)
    assert len(engine.calls) == sum(len(r.steps) for r in rows) + len(rows)


# ---------------------------------------------------------------- hygiene

def test_a_cut_step_is_trimmed_to_its_last_sentence() -> None:
    text = "First we add the two numbers. Then we multiply by three, which gives"
    assert trim_to_sentence(text) == "First we add the two numbers."
    kept, problems, repair = check_text(text, "length", "", "", [])
    assert (kept, problems, repair) == ("First we add the two numbers.", (), "trimmed")
    assert check_text("and so the total number of apples that remain in the", "length", "", "", [])[1] == ("cut",)


def test_a_step_that_stops_at_a_colon_is_unfinished() -> None:
    # the blank line that ends a paragraph cut off the working the step announced
    text = "We use the unit price. Here's a step-by-step breakdown of the problem:"
    assert check_text(text, "stop", "", "", []) == ("We use the unit price.", (), "trimmed")
    assert check_text("let's break it down step by step:", "stop", "", "", [])[1] == ("cut",)
    # a cut step is not trimmed back to a sentence that only announces what follows
    assert trim_to_sentence("So 3 + 4 = 7 and 7 * 2 = 14. The steps are:\nadd them") == "So 3 + 4 = 7 and 7 * 2 = 14."
    assert check_text("The cost is 3 * 6 = 18.\nTotal = 18 + 4 = 22", "stop", "", "", [])[1] == ()


def test_echo_duplicate_and_empty_are_problems() -> None:
    frame = "You are writing one step of a long, careful chain of thought that solves the problem below."
    assert echoes("You are writing one step of a long, careful chain of thought that solves it.", frame)
    assert not echoes("Let me add 3 and 4 to get 7, then double it.", frame)
    earlier = ["We add 3 and 4 to get 7, and then we double it to get 14 apples."]
    assert near_duplicate("We add 3 and 4 to get 7, and then we double it to get 14 apples!", earlier[0])
    assert check_text("We add 3 and 4 to get 7, and then we double it to get 14 apples.", "stop", frame, "",
                      [grams3(e) for e in earlier])[1] == ("duplicate",)
    assert check_text("   ", "stop", frame, "", [])[1] == ("empty",)


def test_reflect_partner_folds_back_to_a_deep_step() -> None:
    kinds = ["vdw", "covalent", "plain", "plain", "hydrogen"]
    said = ["Try a table.", "So 3 x 4 = 12.", "Next, add 2 to 12.", "Now 12 + 2 = 14."]
    assert partner(kinds, said, 4) == 1  # the latest deep step two or more back
    assert partner(["vdw", "plain", "hydrogen"], ["Try x.", "Add."], 2) == 0  # no number anywhere: as before
    assert partner(["vdw", "hydrogen"], ["Try x."], 1) == 0
    assert partner(["hydrogen"], [], 0) is None


def test_reflect_partner_is_a_step_that_states_a_number() -> None:
    kinds = ["vdw", "covalent", "plain", "plain", "hydrogen"]
    # the deep step says no number: the nearest step two or more back that does, else the previous one
    assert partner(kinds, ["Try a table.", "So we add them.", "Next, 3 + 4 = 7.", "Now halve it."], 4) == 2
    assert partner(kinds, ["Try a table.", "So we add them.", "Next, halve.", "Now 7 / 2 = 3.5."], 4) == 3
    assert partner(["vdw", "plain", "hydrogen"], ["Use 2 tables.", "Add them."], 2) == 0
    # a method with nothing to recompute is not re-checked where a number was stated after it
    assert partner(["vdw", "covalent", "hydrogen"], ["Try a table.", "So 3 x 4 = 12."], 2) == 1


def test_a_reflections_claim_is_the_first_sentence_that_states_a_number() -> None:
    assert claim("We use a table. So 3 x 4 = 12. Then add.") == "So 3 x 4 = 12."
    assert claim("We use a table. Then add.") == "We use a table."
    assert claim("x = 2 so far") == "x = 2 so far"


def test_restated_prompt_names_the_problem_and_the_instruction() -> None:
    spec = molspec.load(write_spec(Path(os.environ.get("TMPDIR", "/tmp")) / f"fid-{os.getpid()}")).spec
    assert spec is not None
    bond = spec.bonds["reflect"]
    text = restated("Write the step.", bond, ("echo", "label:normal"))
    assert text.startswith("Write the step.\n\n") and "repeated the problem" in text and bond.instruct in text


# ---------------------------------------------------------------- resume during retries

def test_kill_during_retries_then_resume_equals_an_uninterrupted_build(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", samples=600, steps="4..8")
    clean = tmp_path / "clean"
    cli = [sys.executable, "-m", "molspec.cli", "build", str(spec), "-q", "--batch", "8"]
    subprocess.run([*cli, "--out", str(clean)], check=True, capture_output=True, timeout=600)
    out = tmp_path / "killed"
    proc = subprocess.Popen([*cli, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / ".molspec" / "journal" / "local.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not journal.exists() or journal.stat().st_size < 8_000):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "molspec.json").exists(), "the build finished before the kill: make it longer"
    done = subprocess.run([*cli, "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    def rows(d: Path) -> list[dict[str, object]]:
        return [r for f in sorted((d / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]

    a, b = rows(clean), rows(out)
    assert len(a) == 600 and a == b
    assert sum(st["attempts"] > 1 for r in a for st in r["steps"]) > 100  # the kill hit a build that retries


# ---------------------------------------------------------------- echo repair: copied sentences removed

_FRAME = ("You are writing one step of a long, careful chain of thought. Write only the next step. "
          "Problem: Tom has 3 apples and buys 5 more. How many apples does he have?")
_QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have?"


def test_an_echoing_step_keeps_only_its_own_sentences() -> None:
    from molspec.runtime.fidelity import checked

    text = ("You are writing one step of a long, careful chain of thought. Write only the next step.\n"
            "Problem: Tom has 3 apples and buys 5 more. How many apples does he have? "
            "Adding the two amounts, 3 plus 5 gives 8 apples.")
    a = checked(text, 40, "stop", _FRAME, _QUESTION, [])
    assert (a.text, a.problems, a.repair) == ("Adding the two amounts, 3 plus 5 gives 8 apples.", (), "unechoed")


def test_an_echo_with_too_little_of_its_own_stays_an_echo() -> None:
    from molspec.runtime.fidelity import checked

    text = "You are writing one step of a long, careful chain of thought. Write only the next step. So 8."
    a = checked(text, 20, "stop", _FRAME, _QUESTION, [])
    assert (a.text, a.problems, a.repair) == (text, ("echo",), None)


def test_a_cut_echo_is_trimmed_then_unechoed() -> None:
    from molspec.runtime.fidelity import checked

    text = ("Problem: Tom has 3 apples and buys 5 more. How many apples does he have? "
            "He starts with three apples and then buys five more of them. Then he")
    a = checked(text, 30, "length", _FRAME, _QUESTION, [])
    assert a.text == "He starts with three apples and then buys five more of them."
    assert a.problems == () and a.repair == "trimmed, unechoed"
