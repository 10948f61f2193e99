"""Lowering of the `dataset` block: its splits, and the graph, source and model each one uses."""

from __future__ import annotations

from typing import Any

from molspec.check import schema as S
from molspec.check.blocks import DATASET, SPLIT
from molspec.check.lowering import Lowering
from molspec.diagnostics import Label, did_you_mean
from molspec.lang import ast
from molspec.spec import DatasetSpec, GraphSpec, ModelSpec, SourceSpec, SplitSpec


def lower_dataset(low: Lowering, d: Any, graphs: dict[str, GraphSpec], sources: dict[str, SourceSpec],
             models: dict[str, ModelSpec]) -> DatasetSpec | None:
    """The dataset block with its splits; names of graphs, sources and the model resolved (or reported)."""
    if d is None:
        return None
    assert isinstance(d, ast.Dataset)
    vals = S.read_block(d.body, DATASET, low.diags, d.sp)
    default_graphs = _default_ref(low, vals, "graph", graphs, d, multi=True)
    default_source = _default_ref(low, vals, "source", sources, d)
    model = _default_ref(low, vals, "model", models, d)
    splits = [_split(low, sec, default_graphs, default_source, graphs, sources) for sec in vals.sections]
    if not splits:
        fields = {**vals.of(SplitSpec), "graphs": default_graphs, "source": default_source}
        splits = [SplitSpec(name="train", **fields, span=d.name.sp)]
    elif "samples" in vals.values:
        total = sum(s.samples for s in splits)
        if total != vals.get("samples"):
            low.error("MOL605", f"the splits add up to {total} samples, but the dataset says {vals.get('samples')}",
                      vals.spans["samples"], help="remove `samples` from the dataset or make the splits add up")
    _unique_splits(low, vals.sections)
    return DatasetSpec(name=d.name.value, **{**vals.of(DatasetSpec), "model": model}, splits=tuple(splits),
                       span=d.name.sp)


def _unique_splits(low: Lowering, sections: list[ast.Section]) -> None:
    seen: dict[str, ast.Section] = {}
    for sec in sections:
        if sec.label is None:
            low.error("MOL120", "a split needs a name", sec.key.sp, help="write `split train { ... }`")
            continue
        if sec.label.name in seen:
            low.error("MOL105", f"split '{sec.label.name}' is declared twice", sec.label.sp,
                      secondary=(Label(seen[sec.label.name].label.sp, "first declared here"),),  # type: ignore[union-attr]
                      help="rename one")
        seen[sec.label.name] = sec


def _split(low: Lowering, sec: ast.Section, graphs_default: tuple[str, ...], source_default: str,
           graphs: dict[str, GraphSpec], sources: dict[str, SourceSpec]) -> SplitSpec:
    vals = S.read_block(sec.body, SPLIT, low.diags, sec.sp)
    g = _refs(low, vals, "graph", graphs) or graphs_default
    src = (_refs(low, vals, "source", sources) or (source_default,))[0]
    fields = {**vals.of(SplitSpec), "graphs": g, "source": src}
    return SplitSpec(name=sec.label.name if sec.label else "train", **fields, span=(sec.label or sec.key).sp)


def _refs(low: Lowering, vals: S.Values, key: str, table: dict[str, Any]) -> tuple[str, ...]:
    raw = vals.get(key)
    if raw is None:
        return ()
    names = (raw,) if isinstance(raw, str) else tuple(raw)
    ok = []
    for name in names:
        if name in table:
            ok.append(name)
            continue
        hint = did_you_mean(name, table)
        code = {"graph": "MOL109", "source": "MOL110", "model": "MOL111"}[key]
        low.error(code, f"unknown {key} '{name}'", vals.spans[key], label=f"no {key} of this name",
                  help=hint or (f"defined {key}s: {', '.join(table)}" if table else f"declare a `{key}` first"))
    return tuple(ok)


def _default_ref(low: Lowering, vals: S.Values, key: str, table: dict[str, Any], d: ast.Dataset,
                 multi: bool = False) -> Any:
    refs = _refs(low, vals, key, table)
    if key in vals.values:
        return refs if multi else (refs[0] if refs else "")
    if len(table) == 1:
        only = next(iter(table))
        return (only,) if multi else only
    if not vals.sections or key != "graph":
        code = {"graph": "MOL602", "source": "MOL604", "model": "MOL606"}[key]
        msg = (f"the spec declares no {key}" if not table else
               f"the spec declares {len(table)} {key}s and the dataset does not say which to use")
        help_ = (f"add `{key} = {next(iter(table))}` to the dataset ({key}s: {', '.join(table)})" if table else
                 {"graph": "declare a `graph NAME { ... }` or import one with `use`",
                  "source": 'declare `source questions = jsonl("questions.jsonl")`',
                  "model": 'declare `model synth { engine = "vllm" name = "..." }`'}[key])
        low.error(code, msg, d.name.sp, help=help_)
    return () if multi else ""
