"""Syntax trees of a program -> `Spec`: resolve names, apply schemas, fill in defaults.

Lowering keeps going after an error so that one `molspec check` run reports every problem; what
cannot be lowered is left out of the Spec (a bad row, an unknown bond) and reported. The block schemas
are in `blocks` (derived from the spec models), the dataset in `lower_dataset`, a model's engine options
in `options`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from molspec.check import schema as S
from molspec.check.blocks import (
    ANSWER,
    BOND,
    COLUMNS,
    FIDELITY,
    GRAPH,
    MODEL,
    OUTPUT,
    SOURCE_FORMATS,
    TEMPLATE_NAMES,
    call_schema,
)
from molspec.check.defaults import ANSWER_TEMPLATE, STEP_TEMPLATE
from molspec.check.lower_dataset import lower_dataset
from molspec.check.lowering import Lowering
from molspec.check.options import engine_options
from molspec.diagnostics import Diagnostic, Label, Severity, Span, did_you_mean
from molspec.engines.registry import ENGINE_NAMES
from molspec.lang import ast
from molspec.lang.imports import Program
from molspec.spec import (
    BOND_KINDS,
    DEFAULT_SAMPLING,
    RESERVED,
    AnswerSpec,
    BondSpec,
    EdgeSpec,
    FidelitySpec,
    GraphSpec,
    ModelSpec,
    OutputSpec,
    RowSpec,
    Sampling,
    SourceSpec,
    Spec,
    Templates,
)

SINGLES = (ast.Dataset, ast.Answer, ast.Output, ast.Fidelity)  # at most one each, in the main spec only


def lower(prog: Program) -> tuple[Spec | None, list[Diagnostic]]:
    """Lower a parsed program; returns the Spec (None if the main file is missing) and diagnostics."""
    low = Lowering(prog, diags=list(prog.diagnostics))
    main = prog.main_file
    if main is None:
        return None, low.diags
    version = _version(low, main)
    _collect(low)
    bonds = {n: b for n, item in low.defs.get("bond", {}).items() if (b := _bond(low, item)) is not None}
    graphs = {n: _graph(low, item, bonds) for n, item in low.defs.get("graph", {}).items()}
    sources = {n: s for n, item in low.defs.get("source", {}).items() if (s := _source(low, item))}
    models = {n: m for n, item in low.defs.get("model", {}).items() if (m := _model(low, item))}
    templates = _templates(low)
    singles = {type(i).__name__: i for i in main.items if isinstance(i, SINGLES)}
    dataset = lower_dataset(low, singles.get("Dataset"), graphs, sources, models)
    spec = Spec(version=version, path=prog.main, dataset=dataset, sources=sources, models=models, bonds=bonds,
                graphs=graphs, templates=templates, answer=_answer(low, singles.get("Answer")),
                output=_output(low, singles.get("Output")), fidelity=_fidelity(low, singles.get("Fidelity")),
                files=dict(prog.sources))
    return spec, low.diags


def _version(low: Lowering, main: ast.File) -> int:
    if main.version is None:
        first = _first_word(main.items[0].sp, low.prog.sources.get(main.path, "")) if main.items else \
            Span(main.path, 0, 0, 1, 1)
        low.diags.append(Diagnostic("MOL012", "the spec does not say which language version it is written in",
                                    Label(first, "expected `molspec 1` before this"), severity=Severity.WARNING,
                                    help="start the file with `molspec 1`"))
        return 1
    if main.version.value != 1:
        low.error("MOL115", f"unsupported language version {main.version.raw}", main.version.sp,
                  help="this molspec reads `molspec 1`")
    return 1


def _first_word(span: Span, text: str) -> Span:
    m = re.compile(r"\w+").match(text, span.start)
    return Span(span.file, span.start, m.end() if m else span.start + 1, span.line, span.col)


def _collect(low: Lowering) -> None:
    """Gather named definitions of all files; report duplicates and misplaced items."""
    kinds = {ast.Bond: "bond", ast.Graph: "graph", ast.Source: "source", ast.Model: "model",
             ast.Template: "template"}
    singles: dict[str, ast.Node] = {}
    for file in low.prog.files:
        is_main = file.path == low.prog.main
        for item in file.items:
            if isinstance(item, SINGLES):
                _single(low, item, singles, is_main)
                continue
            ns = kinds.get(type(item))
            if ns is not None:
                _define(low, ns, item)


def _single(low: Lowering, item: ast.Node, seen: dict[str, ast.Node], is_main: bool) -> None:
    word = type(item).__name__.lower()
    if not is_main:
        low.error("MOL504", f"an imported file cannot declare `{word}`", item.sp,
                  help="imports share bonds, graphs, templates, models and sources; "
                       "keep dataset, answer, output and fidelity in the main spec")
    elif word in seen:
        low.error("MOL105", f"`{word}` is declared twice", item.sp,
                  secondary=(Label(seen[word].sp, "first declared here"),), help="keep one")
    else:
        seen[word] = item


def _define(low: Lowering, ns: str, item: Any) -> None:
    table = low.defs.setdefault(ns, {})
    name: ast.Ident = item.name
    if ns == "bond" and name.name in RESERVED:
        low.error("MOL107", f"'{name.name}' is reserved and cannot name a bond", name.sp,
                  help="`start`, `end` and `answer` have fixed meanings in graphs; pick another name")
        return
    if name.name in table:
        low.error("MOL105", f"{ns} '{name.name}' is defined twice", name.sp, label="defined again here",
                  secondary=(Label(table[name.name].name.sp, "first defined here"),),
                  help=f"rename one of them, or remove the duplicate {ns}")
        return
    table[name.name] = item


# ---------------------------------------------------------------- bonds

def _bond(low: Lowering, b: ast.Bond) -> BondSpec | None:
    vals = S.read_block(b.body, BOND, low.diags, b.sp)
    kind = b.kind.name
    if kind not in BOND_KINDS:
        hint = did_you_mean(kind, BOND_KINDS)
        low.error("MOL106", f"unknown bond kind '{kind}'", b.kind.sp, label="not a bond kind",
                  help=hint or "kinds: " + ", ".join(f"{k} ({v.split(':')[0]})" for k, v in BOND_KINDS.items()))
        return None
    fields = {"instruct": "", "title": b.name.name.replace("_", " ").title(), **vals.of(BondSpec)}
    if b.title is not None:
        fields["title"] = b.title.value
    return BondSpec(name=b.name.name, kind=kind, **fields, sampling=_sampling(vals),  # type: ignore[arg-type]
                    span=b.name.sp, template_span=vals.spans.get("template"), lead_span=vals.spans.get("lead"))


def _sampling(vals: S.Values) -> Sampling:
    return Sampling(**vals.of(Sampling))


# ---------------------------------------------------------------- graphs

def _graph(low: Lowering, g: ast.Graph, bonds: dict[str, BondSpec]) -> GraphSpec:
    mode = "probability"
    valid = True
    if g.mode is not None:
        if g.mode.name in ("energy", "probability"):
            mode = g.mode.name
        else:
            valid = False  # rows cannot be read without knowing the mode; later graph checks skip it
            low.error("MOL117", f"unknown graph mode '{g.mode.name}'", g.mode.sp,
                      help=did_you_mean(g.mode.name, ("energy", "probability")) or
                      "write `graph NAME : energy { ... }` for energies, or leave the mode out")
    props = ast.Block(props=tuple(s for s in g.stmts if not isinstance(s, ast.Row)), span=g.sp)
    vals = S.read_block(props, GRAPH, low.diags, g.sp)
    if "temperature" in vals.values and mode != "energy":
        low.warning("MOL118", "`temperature` only applies to energy graphs", vals.spans["temperature"],
                    help="declare the graph as `graph NAME : energy { ... }` or remove temperature")
    rows = _rows(low, g, bonds, mode)
    steps = vals.get("steps")
    bounds = {"min_steps": steps[0], "max_steps": steps[1]} if steps is not None else {}
    return GraphSpec(name=g.name.name, mode=mode, rows=rows, **vals.of(GraphSpec), **bounds,  # type: ignore[arg-type]
                     has_steps=steps is not None, steps_span=vals.spans.get("steps"), valid=valid, span=g.name.sp)


def _rows(low: Lowering, g: ast.Graph, bonds: dict[str, BondSpec], mode: str) -> tuple[RowSpec, ...]:
    rows: list[RowSpec] = []
    seen: dict[str, ast.Row] = {}
    for row in (s for s in g.stmts if isinstance(s, ast.Row)):
        src = row.source.name
        if src in seen:
            low.error("MOL204", f"bond '{src}' has two rows in graph '{g.name.name}'", row.source.sp,
                      secondary=(Label(seen[src].source.sp, "first row here"),), help="merge them into one row")
            continue
        seen[src] = row
        if src != "start" and not _known_bond(low, row.source, bonds, allow=("start",)):
            continue
        edges = _edges(low, row, bonds, mode)
        rows.append(RowSpec(source=src, edges=edges, complete=len(edges) == len(row.edges), span=row.source.sp))
    return tuple(rows)


def _edges(low: Lowering, row: ast.Row, bonds: dict[str, BondSpec], mode: str) -> tuple[EdgeSpec, ...]:
    edges: list[EdgeSpec] = []
    seen: dict[str, ast.Edge] = {}
    for e in row.edges:
        tgt = e.target.name
        if tgt in seen:
            low.error("MOL203", f"'{tgt}' appears twice in the row of '{row.source.name}'", e.target.sp,
                      secondary=(Label(seen[tgt].target.sp, "first here"),), help="add the two weights together")
            continue
        seen[tgt] = e
        if tgt != "end" and not _known_bond(low, e.target, bonds, allow=("end",)):
            continue
        if not isinstance(e.weight, ast.Num):
            low.error("MOL202", f"the weight of '{tgt}' must be a number", e.weight.sp,
                      label="not a number", help="write probabilities as plain numbers, e.g. `deep 0.25`")
            continue
        if mode == "probability" and e.weight.value < 0:
            low.error("MOL202", f"negative probability {e.weight.raw} for '{tgt}'", e.weight.sp, label="negative",
                      help="probabilities are between 0 and 1; use an energy graph for signed weights")
            continue
        edges.append(EdgeSpec(target=tgt, weight=e.weight.value, span=e.sp))
    return tuple(edges)


def _known_bond(low: Lowering, ident: ast.Ident, bonds: dict[str, BondSpec], allow: tuple[str, ...]) -> bool:
    if ident.name in bonds:
        return True
    declared = low.defs.get("bond", {})
    if ident.name in declared:  # declared but invalid: already reported
        return False
    hint = did_you_mean(ident.name, list(declared) + list(allow))
    if hint is None and low.import_failed:  # most likely defined in the file that failed to load
        return False
    low.error("MOL104", f"unknown bond '{ident.name}'", ident.sp, label="no bond of this name",
              help=hint or (f"declare it with `bond {ident.name} : KIND {{ instruct = \"...\" }}`"
                            " or import a vocabulary with `use`"))
    return False


# ---------------------------------------------------------------- sources, models

def _source(low: Lowering, s: ast.Source) -> SourceSpec | None:
    fmt = s.call.func.name
    if fmt not in SOURCE_FORMATS:
        low.error("MOL113", f"unknown source format '{fmt}'", s.call.func.sp,
                  help=did_you_mean(fmt, SOURCE_FORMATS) or "formats: " + ", ".join(SOURCE_FORMATS))
        return None
    if len(s.call.args) != 1 or not isinstance(s.call.args[0], ast.Str):
        low.error("MOL119", f"{fmt}(...) takes one string: the {'dataset id' if fmt == 'hub' else 'file path'}",
                  s.call.sp, help=f'e.g. {fmt}("{"openai/gsm8k" if fmt == "hub" else "data/questions." + fmt}")')
        return None
    kw = S.read_block(ast.Block(props=s.call.kwargs, span=s.call.sp), call_schema(fmt), low.diags, s.call.sp)
    cols = S.read_block(s.body, COLUMNS, low.diags, s.sp)
    target = s.call.args[0].value
    base = str(low.prog.paths.get(s.sp.file, Path(s.sp.file).resolve()).parent)
    return SourceSpec(name=s.name.name, format=fmt, path=None if fmt == "hub" else target,  # type: ignore[arg-type]
                      repo=target if fmt == "hub" else None, **kw.of(SourceSpec), **cols.of(SourceSpec),
                      base=base, span=s.call.args[0].sp)


def _model(low: Lowering, m: ast.Model) -> ModelSpec | None:
    vals = S.read_block(m.body, MODEL, low.diags, m.sp)
    if "name" not in vals.values:
        return None
    fields = vals.of(ModelSpec)
    engine = fields.get("engine", ModelSpec.model_fields["engine"].default)
    if engine not in ENGINE_NAMES:
        low.error("MOL114", f"unknown engine '{engine}'", vals.spans["engine"], label="not an engine",
                  help=did_you_mean(engine, ENGINE_NAMES) or "engines: " + ", ".join(ENGINE_NAMES))
    options = engine_options(engine, vals.sections, low.diags)
    return ModelSpec(name=m.name.name, **fields, sampling=_sampling(vals).over(DEFAULT_SAMPLING), options=options,
                     span=m.name.sp)


# ---------------------------------------------------------------- templates, answer, output

def _templates(low: Lowering) -> Templates:
    found: dict[str, str] = {}
    spans: dict[str, Span] = {}
    for name, t in low.defs.get("template", {}).items():
        if name not in TEMPLATE_NAMES:
            low.error("MOL303", f"unknown template '{name}'", t.name.sp,
                      help=did_you_mean(name, TEMPLATE_NAMES) or
                      "templates: step (each bond step), answer (the final answer), system (system message), "
                      "reply (the start of the model's reply to each bond step); "
                      "per-bond templates go in the bond: `template = \"\"\"...\"\"\"`")
            continue
        found[name] = t.body.value
        spans[name] = t.body.sp
    return Templates(step=found.get("step", STEP_TEMPLATE), answer=found.get("answer", ANSWER_TEMPLATE),
                     system=found.get("system"), reply=found.get("reply"), spans=spans)


def _answer(low: Lowering, a: Any) -> AnswerSpec:
    if a is None:
        return AnswerSpec()
    vals = S.read_block(a.body, ANSWER, low.diags, a.sp)
    return AnswerSpec(**vals.of(AnswerSpec), sampling=_sampling(vals), span=a.sp)


def _output(low: Lowering, o: Any) -> OutputSpec:
    if o is None:
        return OutputSpec()
    vals = S.read_block(o.body, OUTPUT, low.diags, o.sp)
    return OutputSpec(**vals.of(OutputSpec), span=o.sp)


def _fidelity(low: Lowering, f: Any) -> FidelitySpec:
    if f is None:
        return FidelitySpec()
    vals = S.read_block(f.body, FIDELITY, low.diags, f.sp)
    return FidelitySpec(**vals.of(FidelitySpec), span=f.sp)
