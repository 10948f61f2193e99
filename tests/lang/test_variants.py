"""`variant` blocks: parsing, formatting, and lowering each variant into a whole spec."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molspec.api import Document, load
from molspec.check.variant_drop import drop_from_graph
from molspec.graphmath import row_weights
from molspec.lang import ast
from molspec.lang.build import parse_file
from molspec.lang.fmt import format_text
from molspec.spec import EdgeSpec, GraphSpec, RowSpec
from tests.lang.corpus import ROOT

ABLATIONS = ROOT / "examples" / "ablations.mol"

BASE = """molspec 1

bond explore : vdw "Self-exploration" { instruct = "Try another way." }
bond deep : covalent "Deep reasoning" { instruct = "Go one step deeper."  max_tokens = 96 }
bond reflect : hydrogen "Self-reflection" { instruct = "Check an earlier step." }

model synth { name = "builtin:echo"  engine = "echo"  temperature = 0.3 }

graph g {
  start   -> explore 0.5 | deep 0.5
  explore -> deep 0.6 | reflect 0.3 | explore 0.1
  deep    -> deep 0.5 | reflect 0.25 | explore 0.25
  reflect -> deep 0.5 | explore 0.5
  steps = 4..12
}

answer { instruct = "Answer in \\\\boxed{}." }
"""


def check(text: str, tmp_path: Path) -> Document:
    path = tmp_path / "spec.mol"
    path.write_text(text, encoding="utf-8")
    return load(path)


def codes(doc: Document) -> list[str]:
    return [d.code for d in doc.diagnostics]


# ---------------------------------------------------------------- syntax and fmt

def test_every_item_kind_parses_inside_a_variant() -> None:
    f = parse_file('variant v "T" { drop a  bond b { x = 1 }  bond c : plain  graph g { }  model m { }\n'
                   'template step "s"  answer { }  output { }  fidelity { }  dataset "d" { }  use "u.mol"\n'
                   'source s = jsonl("q.jsonl")  variant w { } }')
    (v,) = f.items
    assert isinstance(v, ast.Variant) and v.name.name == "v" and v.title is not None and v.title.value == "T"
    assert [type(i).__name__ for i in v.items] == ["Drop", "BondPatch", "Bond", "Graph", "Model", "Template",
                                                    "Answer", "Output", "Fidelity", "Dataset", "Use", "Source",
                                                    "Variant"]


def test_drop_and_variant_stay_usable_as_property_names() -> None:
    f = parse_file('dataset "x" { description = "a"  variant = 3  drop = 4 }')
    assert isinstance(f.items[0], ast.Dataset)
    assert [p.key.name for p in f.items[0].body.props] == ["description", "variant", "drop"]


def test_the_example_is_formatted() -> None:
    text = ABLATIONS.read_text(encoding="utf-8")
    assert format_text(text) == text


def test_fmt_round_trips_variants_with_comments() -> None:
    messy = ('molspec 1\nvariant   x "T" {   # after the head\n  # before the drop\n  drop a\n   drop b\n'
             '  bond a { max_tokens = 3 }\n  graph g { start -> a 1.0\n  a -> a 1.0  # row\n  steps = 1..2 }\n'
             '}\nvariant e {    }\nvariant d { drop a drop b }\n')
    out = format_text(messy)
    assert format_text(out) == out
    assert parse_file(out) == parse_file(messy)
    assert "variant e {}\n" in out and "variant d { drop a  drop b }\n" in out
    assert "  graph g {\n    start -> a 1.0\n    a     -> a 1.0  # row\n" in out
    for comment in ("# after the head", "# before the drop", "# row"):
        assert comment in out


# ---------------------------------------------------------------- lowering

def test_the_example_lowers_every_variant() -> None:
    doc = load(ABLATIONS)
    assert doc.ok and not doc.diagnostics
    variants = doc.variants
    assert list(variants) == ["r1", "qwq", "no_reflect", "terse_answer"]
    assert {n: v.changes for n, v in variants.items()} == {
        "r1": (), "qwq": ("graph teacher",), "no_reflect": ("drop reflect",), "terse_answer": ("answer.instruct",)}
    assert all(v.variant == n for n, v in variants.items())
    assert variants["qwq"].variant_title == "QwQ-32B's transition graph"
    assert variants["r1"].sha256() == doc.spec.sha256()  # type: ignore[union-attr]
    assert variants["terse_answer"].answer.instruct == "Reply with the final number only, in \\boxed{}."
    assert variants["terse_answer"].answer.verify == "math"  # patched, not replaced
    span = variants["no_reflect"].variant_span
    assert span is not None and span.line == ABLATIONS.read_text().splitlines().index(
        next(line for line in ABLATIONS.read_text().splitlines() if line.startswith("variant no_reflect"))) + 1


def test_patches_change_only_the_named_fields(tmp_path: Path) -> None:
    doc = check(BASE + '\nvariant v {\n  bond deep { instruct = "Deeper."  temperature = 0.9 }\n'
                '  model synth { temperature = 0.8 }\n  template step "{{ question }} {{ bond }}"\n'
                '  fidelity { retries = 1 }\n}\n', tmp_path)
    assert doc.ok, doc.diagnostics
    v = doc.variants["v"]
    assert v.changes == ("bond deep.instruct", "bond deep.temperature", "model synth.temperature", "template step",
                         "fidelity.retries")
    deep = v.bonds["deep"]
    assert (deep.instruct, deep.sampling.temperature, deep.sampling.max_tokens, deep.title) == (
        "Deeper.", 0.9, 96, "Deep reasoning")
    assert v.models["synth"].sampling.temperature == 0.8 and v.models["synth"].model == "builtin:echo"
    assert v.templates.step == "{{ question }} {{ bond }}" and v.fidelity.retries == 1
    assert doc.spec is not None and doc.spec.bonds["deep"].instruct == "Go one step deeper."  # base untouched


def test_a_whole_bond_replaces_or_adds(tmp_path: Path) -> None:
    doc = check(BASE + '\nvariant v {\n  bond deep : covalent "Deeper" { instruct = "D." }\n'
                '  bond wander : vdw { instruct = "W." }\n}\n', tmp_path)
    assert doc.ok, doc.diagnostics
    v = doc.variants["v"]
    assert v.bonds["deep"].title == "Deeper" and v.bonds["deep"].sampling.max_tokens is None
    assert "wander" in v.bonds and v.changes == ("bond deep", "bond wander")


def test_drop_renormalises_each_row_to_its_old_sum(tmp_path: Path) -> None:
    doc = check(BASE + "\nvariant no_reflect { drop reflect }\n", tmp_path)
    assert doc.ok, doc.diagnostics
    g = doc.variants["no_reflect"].graphs["g"]
    rows = {r.source: {e.target: e.weight for e in r.edges} for r in g.rows}
    assert set(rows) == {"start", "explore", "deep"}
    assert rows["explore"] == pytest.approx({"deep": 0.6 / 0.7, "explore": 0.1 / 0.7}, rel=1e-12)
    assert rows["deep"] == pytest.approx({"deep": 2 / 3, "explore": 1 / 3}, rel=1e-12)
    assert rows["start"] == {"explore": 0.5, "deep": 0.5}  # untouched
    assert "reflect" not in doc.variants["no_reflect"].bonds


def test_ablations_no_reflect_rows() -> None:
    g = load(ABLATIONS).variants["no_reflect"].graphs["teacher"]
    explore = {e.target: e.weight for e in next(r for r in g.rows if r.source == "explore").edges}
    assert explore == pytest.approx({"deep": 0.5 / 0.85, "normal": 0.25 / 0.85, "explore": 0.1 / 0.85}, rel=1e-12)
    for row in g.rows:
        assert math.isclose(sum(e.weight for e in row.edges), 1.0, abs_tol=1e-12)


def test_drop_in_an_energy_graph_only_removes_edges(tmp_path: Path) -> None:
    text = BASE.replace("graph g {", "graph g : energy {").replace("0.", "1.")
    doc = check(text + "\nvariant v { drop reflect }\n", tmp_path)
    assert not [d for d in doc.diagnostics if d.code.startswith("MOL8")], doc.diagnostics
    explore = next(r for r in doc.variants["v"].graphs["g"].rows if r.source == "explore")
    assert [(e.target, e.weight) for e in explore.edges] == [("deep", 1.6), ("explore", 1.1)]


def test_an_impossible_drop_is_an_error_at_the_drop(tmp_path: Path) -> None:
    text = BASE.replace("start   -> explore 0.5 | deep 0.5", "start   -> explore 1.0").replace(
        "explore -> deep 0.6 | reflect 0.3 | explore 0.1", "explore -> reflect 0.9 | explore 0.1").replace(
        "deep    -> deep 0.5 | reflect 0.25 | explore 0.25", "deep    -> explore 1.0")
    doc = check(text + "\nvariant v { drop reflect }\n", tmp_path)
    (d,) = [d for d in doc.diagnostics if d.code == "MOL805"]
    assert d.message == "dropping 'reflect' leaves 'deep' unreachable in graph 'g'"
    line = text.count("\n") + 2
    assert (d.span.line, d.span.col) == (line, 13)
    assert d.secondary[0].span.line == text.splitlines().index("  deep    -> explore 1.0") + 1
    assert not doc.ok


def test_unknown_names_get_a_suggestion(tmp_path: Path) -> None:
    doc = check(BASE + "\nvariant v {\n  drop reflex\n  bond dep { max_tokens = 3 }\n  graph gg { }\n"
                "  model synt { temperature = 0.1 }\n}\n", tmp_path)
    found = {(d.code, d.message, d.help) for d in doc.diagnostics}
    assert found == {("MOL804", "the base spec has no bond 'reflex'", "did you mean 'reflect'?"),
                     ("MOL804", "the base spec has no bond 'dep'", "did you mean 'deep'?"),
                     ("MOL804", "the base spec has no graph 'gg'", "did you mean 'g'?"),
                     ("MOL804", "the base spec has no model 'synt'", "did you mean 'synth'?")}


def test_refused_items_and_names(tmp_path: Path) -> None:
    doc = check(BASE + '\nvariant v {\n  dataset "d" { }\n  output { hub = "me/x"  private = true  think = false }\n'
                '}\nvariant v { }\nvariant V { }\nvariant _v { }\nvariant default { }\n', tmp_path)
    assert sorted(codes(doc)) == ["MOL801", "MOL802", "MOL802", "MOL803", "MOL803", "MOL806", "MOL806"]
    assert list(doc.variants) == ["v"]
    assert doc.variants["v"].output.think is False and doc.variants["v"].output.hub is None


def test_base_diagnostics_are_not_repeated_per_variant(tmp_path: Path) -> None:
    text = BASE.removeprefix("molspec 1\n")  # MOL012: no version line
    doc = check(text + "\nvariant a { drop reflect }\nvariant b { }\nvariant c { answer { verify = \"exact\" } }\n",
                tmp_path)
    assert codes(doc) == ["MOL012"]


def test_an_error_caused_outside_the_variant_is_moved_onto_it(tmp_path: Path) -> None:
    text = BASE.replace("  steps = 4..12\n", "").replace("reflect -> deep 0.5 | explore 0.5",
                                                         "reflect -> deep 0.4 | end 0.6")
    doc = check(text + "\nvariant no_reflect { drop reflect }\n", tmp_path)
    (d,) = [d for d in doc.diagnostics if d.code == "MOL209"]
    assert d.message == "in variant 'no_reflect': graph 'g' has no rule for when a walk stops"
    assert d.span.line == text.count("\n") + 2 and d.secondary[0].span.line == text.splitlines().index("graph g {") + 1


def test_an_error_in_a_patch_points_into_the_variant(tmp_path: Path) -> None:
    doc = check(BASE + '\nvariant v {\n  bond deep { max_tokens = "many" }\n}\n', tmp_path)
    (d,) = doc.diagnostics
    assert d.code == "MOL103" and d.span.line == BASE.count("\n") + 3


def test_without_variants_nothing_changes(tmp_path: Path) -> None:
    doc = check(BASE, tmp_path)
    assert doc.ok and doc.variants == {} and doc.spec is not None and doc.spec.variant is None


# ---------------------------------------------------------------- renormalisation, for any row

weights = st.lists(st.integers(min_value=0, max_value=100), min_size=4, max_size=4).filter(lambda w: sum(w) > 0)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(weights, min_size=4, max_size=4), victim=st.sampled_from(["a", "b", "c"]))
def test_dropping_any_bond_keeps_rows_summing_to_one(rows: list[list[int]], victim: str) -> None:
    names = ["a", "b", "c", "end"]
    spec_rows = tuple(RowSpec(source=src, edges=tuple(EdgeSpec(target=t, weight=w / sum(ws))
                                                       for t, w in zip(names, ws, strict=True) if w))
                      for src, ws in zip(["start", "a", "b", "c"], rows, strict=True))
    g = GraphSpec(name="g", rows=spec_rows)
    after = drop_from_graph(g, {victim})
    assert victim not in {r.source for r in after.rows}
    for before_row in (r for r in g.rows if r.source != victim):
        row = next(r for r in after.rows if r.source == before_row.source)
        kept = {e.target: e.weight for e in before_row.edges if e.target != victim}
        assert [e.target for e in row.edges] == list(kept)
        if sum(kept.values()) > 0:
            assert math.isclose(sum(row_weights(row, after).values()), 1.0, abs_tol=1e-9)
            first = next(iter(kept))
            for t, w in kept.items():  # the ratios between the kept edges do not change
                got = {e.target: e.weight for e in row.edges}
                assert math.isclose(got[t] * kept[first], w * got[first], rel_tol=1e-9)
