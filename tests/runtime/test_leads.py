"""Leads and started replies: a step that opens with the spec's words and that the model continues.

The prompt ends with an assistant message (the `reply` template, then the bond's `lead`); the step's text is
the lead followed by the completion; hygiene judges only the model's words; the row records the lead."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import molspec
from molspec.engines.base import Completion, Request
from molspec.pipeline import build_plan
from molspec.records import Failure, FidelityInfo, Row
from molspec.runtime.build import BuildOptions, jobs, prepare, run_config
from molspec.runtime.console import restart_warning
from molspec.runtime.hygiene import restarts
from molspec.runtime.prompts import StepText, WalkContext, step_prompt
from molspec.runtime.runconfig import Progress
from molspec.runtime.scheduler import run
from tests.runtime.conftest import write_spec
from tests.runtime.test_fidelity import TagLabeler

LEADS = {
    "explore": 'lead = "Another way to see it:"',
    "deep": 'lead = "So"',
    "reflect": 'lead = """{% if partner %}Check step {{ partner.step }}: "{{ partner.claim }}"{% else %}Check.'
               '{% endif %}"""',
    "normal": 'lead = "Next,"',
}
REPLY = '\ntemplate reply """\n{% for s in steps %}\n{{ s.text }}\n\n{% endfor %}\n"""\n'


def leads_spec(folder: Path, reply: bool = True) -> Path:
    spec = write_spec(folder, samples=6, steps="3..5")
    text = spec.read_text()
    for bond, lead in LEADS.items():
        head = f"bond {bond} : "
        start = text.index(head)
        end = text.index("}", start)
        text = text[:end] + f" {lead} " + text[end:]
    spec.write_text(text + (REPLY if reply else ""))
    return spec


class Continuer:
    """Continues a started reply with new words (a space first, as a tokenizer would); `empty` steps write
    nothing. Records every request."""

    name = "continuer"

    def __init__(self, empty: bool = False, anew: int = 0) -> None:
        self.calls: list[Request] = []
        self.empty = empty
        self.anew = anew  # attempts of each step that answer a new turn, as a server without prefill does

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        self.calls += requests
        return [self._one(r) for r in requests]

    def _one(self, r: Request) -> Completion:
        m = r.meta
        if m["kind"] == "answer":
            return Completion(r.key, "So the answer is \\boxed{4}.", 6, "stop")
        said = {"vdw": "explore", "covalent": "deep", "hydrogen": "reflect", "plain": "normal"}[m["kind"]]
        if self.empty:
            return Completion(r.key, "", 0, "stop")
        if m["attempt"] < self.anew:
            return Completion(r.key, f"Sure! [{said}] a reply of its own {r.key}.", 9, "stop")
        return Completion(r.key, f" [{said}] fresh words {r.key} of sample {m['sample']} here.", 9, "stop")

    def describe(self) -> dict[str, str]:
        return {"engine": self.name}

    def close(self) -> None:
        pass


def _run(spec: Path, out: Path, engine: Continuer) -> list[Row]:
    p = prepare(build_plan(molspec.load(spec)), BuildOptions(out=out))
    cfg = run_config(p, BuildOptions(out=out), engine.describe())
    cfg.labeler = TagLabeler()
    got: list[Row | Failure] = []
    run(p.spec, engine, jobs(p, list(range(6))), cfg, got.extend, Progress())
    assert all(isinstance(r, Row) for r in got), got
    return sorted((r for r in got if isinstance(r, Row)), key=lambda r: r.sample_index)


def test_a_step_is_its_lead_then_the_models_words(tmp_path: Path) -> None:
    engine = Continuer()
    rows = _run(leads_spec(tmp_path / "spec"), tmp_path / "out", engine)
    for row in rows:
        for i, st in enumerate(row.steps):
            assert st.lead is not None and st.text.startswith(st.lead + " [")
            if st.bond == "reflect" and i > 0:
                assert st.partner is not None and st.lead.startswith(f"Check step {st.partner + 1}: \"")
            assert not st.problems and st.attempts == 1  # a lead that quotes a step is not a duplicate of it
        assert row.thinking == "\n\n".join(s.text for s in row.steps)
    steps = [c for c in engine.calls if c.meta["kind"] != "answer"]
    for c in steps:
        user, started = c.messages[-2], c.messages[-1]
        assert (user["role"], started["role"]) == ("user", "assistant")
        assert c.params.stop == ("\n\n",)  # one paragraph: a blank line starts the next step
    by_key = {c.key: c for c in steps}
    first = rows[0]
    last = by_key[f"0:{len(first.steps) - 1}"].messages[-1]["content"]
    # the reply holds the steps so far, a blank line after each, then the lead of the step asked for
    assert last == "\n\n".join(s.text for s in first.steps[:-1]) + "\n\n" + (first.steps[-1].lead or "")


def test_a_lead_without_a_reply_template_starts_the_reply_alone(tmp_path: Path) -> None:
    engine = Continuer()
    _run(leads_spec(tmp_path / "spec", reply=False), tmp_path / "out", engine)
    for c in (c for c in engine.calls if c.meta["kind"] != "answer"):
        assert c.messages[-1]["role"] == "assistant" and "\n\n" not in c.messages[-1]["content"]
    answers = [c for c in engine.calls if c.meta["kind"] == "answer"]
    assert all(c.messages[-1]["role"] == "user" and not c.params.stop for c in answers)


def test_an_empty_continuation_is_empty_not_its_lead(tmp_path: Path) -> None:
    rows = _run(leads_spec(tmp_path / "spec"), tmp_path / "out", Continuer(empty=True))
    for st in (st for row in rows for st in row.steps):
        assert st.text == "" and st.lead is None and "empty" in st.problems
        assert st.attempts == 3  # asked again twice: the retry restates the user turn, the reply stays last


def test_a_retry_restates_the_user_turn_and_keeps_the_started_reply(tmp_path: Path) -> None:
    engine = Continuer(empty=True)
    _run(leads_spec(tmp_path / "spec"), tmp_path / "out", engine)
    first = {c.key: c for c in engine.calls if c.meta.get("attempt") == 0}
    for c in (c for c in engine.calls if c.meta.get("attempt")):
        twin = first[c.key.rsplit(":", 1)[0]]
        assert c.messages[-1] == twin.messages[-1]
        assert c.messages[-2]["content"].startswith(twin.messages[-2]["content"].rstrip())
        assert "The last attempt was empty" in c.messages[-2]["content"]


def test_without_leads_or_reply_the_prompt_is_one_user_turn(tmp_path: Path) -> None:
    spec = molspec.load(write_spec(tmp_path / "spec")).raise_for_errors()
    walk = WalkContext("What is 1 + 1?", ("explore", "deep"), 0, "train", "g")
    prompt = step_prompt(spec, walk, [StepText("explore", "vdw", "Self-exploration", "Try x.")], spec.bonds["deep"])
    assert [m["role"] for m in prompt.messages] == ["user"] and prompt.lead == ""


def test_the_partner_claim_is_its_first_sentence(tmp_path: Path) -> None:
    spec = molspec.load(leads_spec(tmp_path / "spec")).raise_for_errors()
    walk = WalkContext("What is 1 + 1?", ("deep", "normal", "reflect"), 0, "train", "g")
    steps = [StepText("deep", "covalent", "Deep reasoning", "So x = 2. Then y = 3."),
             StepText("normal", "plain", "Normal operation", "Next, add them.")]
    prompt = step_prompt(spec, walk, steps, spec.bonds["reflect"], partner=0)
    assert prompt.lead == 'Check step 1: "So x = 2."'
    assert prompt.messages[-1]["content"] == 'So x = 2. Then y = 3.\n\nNext, add them.\n\nCheck step 1: "So x = 2."'


@pytest.mark.parametrize(("lead", "completion", "restart"), [
    ("would be to use", " a table of values.", False),  # carried on
    ("would be to use", "To solve this problem, add.", True),  # glued: a new turn, no space before it
    ("would be to use", " To solve this problem, add.", True),  # a sentence opener mid-sentence
    ("This means that", " The total is 5.", True),
    ("This means that", " John has 5 apples.", False),  # a name may follow
    ("This means that", " I need 5 more.", False),
    ("This means that", " A = 5.", False),  # a variable
    ("Next,", "Another way to see it.", True),  # glued after a comma
    ("Next,", " we add them.", False),
    ("Next,", ", then add.", False),
    ("Check.", " The sum is 4.", False),  # the lead ends a sentence: anything may follow
    ('Check step 1: "x = 2"', " The value holds.", False),  # ... or a quote
    ("Another way to see it:", "The area.", False),
])
def test_a_restart_is_a_new_reply_where_the_lead_stops_mid_sentence(lead: str, completion: str,
                                                                      restart: bool) -> None:
    assert restarts(lead, completion) is restart


def test_a_step_that_starts_over_is_asked_again(tmp_path: Path) -> None:
    engine = Continuer(anew=1)
    rows = _run(leads_spec(tmp_path / "spec"), tmp_path / "out", engine)
    mid_sentence = [st for row in rows for st in row.steps if st.lead in ("So", "Next,")]
    assert mid_sentence
    for st in mid_sentence:
        assert st.attempts == 2 and "restart" in st.retries[0].split(",") and not st.problems
        assert st.text.startswith(f"{st.lead} [")
    for st in (st for row in rows for st in row.steps if st.lead not in ("So", "Next,")):
        # after a lead that ends a sentence or a quote, "Sure!" may follow (the fake replies repeat each other)
        assert not any("restart" in r.split(",") for r in st.retries)


def test_an_engine_that_always_starts_over_is_named_in_the_summary(tmp_path: Path) -> None:
    rows = _run(leads_spec(tmp_path / "spec"), tmp_path / "out", Continuer(anew=99))
    kept = [st for row in rows for st in row.steps if "restart" in st.problems]
    assert kept and all(st.attempts == 3 for st in kept)  # asked again up to the bound, then kept, flagged
    steps = sum(len(row.steps) for row in rows)
    info = FidelityInfo(labeler="tag", gate=True, overall=1.0, per_bond={}, labelled=steps, retries=0, reasons={},
                        problems={"restart": len(kept)}, repaired=0)
    warning = restart_warning(info, steps)
    assert warning is not None and f"{len(kept)} of {steps} steps start a new reply" in warning
    assert 'continuation = "prompt"' in warning
    assert restart_warning(info.model_copy(update={"problems": {"restart": 2}}), steps) is None
