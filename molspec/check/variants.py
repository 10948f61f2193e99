"""Variants (docs/language.md, "variant"): each `variant NAME { items }` is the base program with its items
applied, lowered and checked as a whole spec.

Most items are applied to the syntax trees (a graph or template replaced, the fields of a bond, the model or
a single block patched), so every patched property keeps its own span and a mistake in it is reported inside
the variant. `drop` works on the lowered spec (`variant_drop`): rows are renormalised there. Diagnostics the
base spec already has are not repeated; a new one that points outside the variant is moved onto its name.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from molspec.check.dataset import check_dataset
from molspec.check.graphs import check_graphs
from molspec.check.lower import lower
from molspec.check.templates import check_templates
from molspec.check.variant_drop import QUIETED, apply_drops
from molspec.diagnostics import Diagnostic, Label, Span, did_you_mean
from molspec.lang import ast
from molspec.lang.imports import Program
from molspec.spec import Spec

# Sources and the dataset cannot change in a variant, so their checks are not run again.
VARIANT_CHECKS = (check_graphs, check_templates, check_dataset)
REFUSED = {ast.Dataset: "dataset", ast.Source: "source", ast.Use: "use", ast.Variant: "variant"}
HUB_FIELDS = ("hub", "private")
CONFIG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,63}")
RESERVED_CONFIGS = ("default",)  # the Hub's name for the config of a dataset that declares none
_NAMED = {ast.Bond: "bond", ast.Graph: "graph", ast.Model: "model", ast.Template: "template"}
_SINGLES = {ast.Answer: "answer", ast.Output: "output", ast.Fidelity: "fidelity"}


def has_variants(prog: Program) -> bool:
    return any(isinstance(i, ast.Variant) for f in prog.files for i in f.items)


def lower_variants(prog: Program, base: Spec, base_diags: list[Diagnostic]) -> tuple[Spec, list[Diagnostic]]:
    """The base spec with `variants` filled in, and the diagnostics the variants add."""
    diags = _imported(prog)
    main = prog.main_file
    assert main is not None
    known = {_key(d) for d in base_diags}
    variants: dict[str, Spec] = {}
    seen: dict[str, ast.Variant] = {}
    for v in (i for i in main.items if isinstance(i, ast.Variant)):
        if not _name_ok(v, seen, diags):
            continue
        spec, found = lower_variant(prog, v)
        diags += [_relocate(d, v) for d in found if _key(d) not in known]
        if spec is not None:
            variants[v.name.name] = spec
    return base.model_copy(update={"variants": variants}), diags


def lower_variant(prog: Program, v: ast.Variant) -> tuple[Spec | None, list[Diagnostic]]:
    """One variant as a whole checked spec (`variant`, `changes`, title and span set)."""
    edit = _Edit(prog)
    for item in v.items:
        edit.apply(item)
    spec, diags = lower(dataclasses.replace(prog, files=edit.files()))
    diags = edit.diags + diags
    if spec is None:
        return None, diags
    spec, dropped = apply_drops(spec, edit.drops)
    found = [d for check in VARIANT_CHECKS for d in check(spec)]
    if dropped:  # the drop's own diagnostic explains these
        found = [d for d in found if d.code not in QUIETED]
    spec = spec.model_copy(update={"variant": v.name.name, "changes": tuple(edit.changes),
                                   "variant_title": v.title.value if v.title else None, "variant_span": v.name.sp})
    return spec, diags + dropped + found


# ---------------------------------------------------------------- names

def _imported(prog: Program) -> list[Diagnostic]:
    return [Diagnostic("MOL807", "an imported file cannot declare variants", Label(i.name.sp),
                       help="declare variants in the main spec; imports share bonds, graphs, templates, "
                            "models and sources")
            for f in prog.files if f.path != prog.main for i in f.items if isinstance(i, ast.Variant)]


def _name_ok(v: ast.Variant, seen: dict[str, ast.Variant], diags: list[Diagnostic]) -> bool:
    name = v.name.name
    first = seen.get(name.lower())
    if first is not None:
        same = first.name.name == name
        diags.append(Diagnostic("MOL802", f"variant '{name}' is declared twice" if same else
                                f"variants '{first.name.name}' and '{name}' differ only in case",
                                Label(v.name.sp, "declared again here"),
                                secondary=(Label(first.name.sp, "first declared here"),),
                                help="each variant is a config of the dataset and a folder of the build; "
                                     "rename one"))
        return False
    seen[name.lower()] = v
    if CONFIG_NAME.fullmatch(name) is None or name in RESERVED_CONFIGS:
        why = "is reserved by the Hub" if name in RESERVED_CONFIGS else \
            "must start with a letter or digit and have at most 64 characters"
        diags.append(Diagnostic("MOL803", f"'{name}' cannot name a dataset config: it {why}",
                                Label(v.name.sp, "not a usable config name"),
                                help="variant names become Hub config names and build folders; "
                                     "use letters, digits and _ (e.g. `no_reflect`)"))
        return False
    return True


def _key(d: Diagnostic) -> tuple[str, str, Span]:
    return d.code, d.message, d.span


def _inside(span: Span, v: ast.Variant) -> bool:
    return span.file == v.sp.file and v.sp.start <= span.start < v.sp.end


def _relocate(d: Diagnostic, v: ast.Variant) -> Diagnostic:
    """A diagnostic of the variant that points outside it: onto the variant's name, the old place second."""
    if _inside(d.span, v):
        return d
    where = Label(d.span, d.primary.text or "with the variant's changes applied")
    return dataclasses.replace(d, message=f"in variant '{v.name.name}': {d.message}",
                               primary=Label(v.name.sp, "in this variant"), secondary=(where, *d.secondary))


# ---------------------------------------------------------------- applying items

class _Edit:
    """The base program's items (every file) with one variant's items applied."""

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.items: list[list[Any]] = [list(f.items) for f in prog.files]
        self.main = len(self.items) - 1
        self.diags: list[Diagnostic] = []
        self.changes: list[str] = []
        self.drops: list[ast.Drop] = []
        self.done: dict[tuple[str, str], ast.Node] = {}

    def files(self) -> list[ast.File]:
        return [f.model_copy(update={"items": tuple(i for i in items if not isinstance(i, ast.Variant))})
                for f, items in zip(self.prog.files, self.items, strict=True)]

    def apply(self, item: ast.VariantItem) -> None:
        if isinstance(item, (ast.Dataset, ast.Source, ast.Use, ast.Variant)):
            self._refuse(item)
        elif isinstance(item, ast.Drop):
            self._drop(item)
        elif isinstance(item, ast.BondPatch):
            self._patch_named("bond", item.name, item.body, item)
        elif isinstance(item, ast.Model):
            self._patch_named("model", item.name, item.body, item)
        elif isinstance(item, (ast.Bond, ast.Graph, ast.Template)):
            self._replace(item)
        else:
            self._patch_single(item)

    def _refuse(self, item: ast.Dataset | ast.Source | ast.Use | ast.Variant) -> None:
        word = REFUSED[type(item)]
        why = ("variants do not nest; declare each variant at the top level" if word == "variant" else
               "every variant builds the base spec's questions with the same seeds and sample count, which is "
               f"what pairs them; change `{word}` in the base spec (or write a second spec)")
        keyword = Span(item.sp.file, item.sp.start, item.sp.start + len(word), item.sp.line, item.sp.col)
        self.diags.append(Diagnostic("MOL801", f"a variant cannot declare `{word}`", Label(keyword), help=why))

    def _twice(self, kind: str, name: str, node: ast.Node, where: Span) -> bool:
        first = self.done.get((kind, name))
        if first is not None:
            self.diags.append(Diagnostic("MOL808", f"the variant changes {kind} '{name}' twice" if name else
                                         f"the variant changes `{kind}` twice", Label(where, "changed again here"),
                                         secondary=(Label(_head(first), "first changed here"),),
                                         help="merge the two changes into one"))
            return True
        self.done[(kind, name)] = node
        return False

    def _find(self, kind: str, name: str) -> tuple[int, int] | None:
        cls = next(c for c, k in _NAMED.items() if k == kind)
        for fi, items in enumerate(self.items):
            for ii, it in enumerate(items):
                if isinstance(it, cls) and it.name.name == name:
                    return fi, ii
        return None

    def _names(self, kind: str) -> list[str]:
        cls = next(c for c, k in _NAMED.items() if k == kind)
        return [it.name.name for items in self.items for it in items if isinstance(it, cls)]

    def _unknown(self, kind: str, ident: ast.Ident) -> None:
        hint = did_you_mean(ident.name, self._names(kind))
        self.diags.append(Diagnostic("MOL804", f"the base spec has no {kind} '{ident.name}'",
                                     Label(ident.sp, f"no {kind} of this name"),
                                     help=hint or f"a variant changes what the base spec declares; declare the "
                                                  f"{kind} in the base spec first"))

    def _drop(self, item: ast.Drop) -> None:
        if self._find("bond", item.name.name) is None:
            self._unknown("bond", item.name)
        elif not self._twice("bond", item.name.name, item, item.name.sp):
            self.drops.append(item)
            self.changes.append(f"drop {item.name.name}")

    def _replace(self, item: ast.Bond | ast.Graph | ast.Template) -> None:
        kind = _NAMED[type(item)]
        name = item.name.name
        if self._twice(kind, name, item, item.name.sp):
            return
        at = self._find(kind, name)
        if at is None and kind == "graph":  # a new graph could not be used: the dataset block is fixed
            self._unknown(kind, item.name)
            return
        if at is None:
            self.items[self.main].append(item)
        else:
            self.items[at[0]][at[1]] = item
        self.changes.append(f"{kind} {name}")

    def _patch_named(self, kind: str, ident: ast.Ident, patch: ast.Block, node: ast.Node) -> None:
        at = self._find(kind, ident.name)
        if at is None:
            self._unknown(kind, ident)
            return
        if self._twice(kind, ident.name, node, ident.sp):
            return
        old = self.items[at[0]][at[1]]
        self.items[at[0]][at[1]] = old.model_copy(update={"body": _patched(old.body, patch)})
        self.changes += [f"{kind} {ident.name}.{p.key.name}" for p in patch.props]

    def _patch_single(self, item: ast.Answer | ast.Output | ast.Fidelity) -> None:
        word = _SINGLES[type(item)]
        if self._twice(word, "", item, _head(item)):
            return
        body = item.body
        if word == "output":
            body = self._no_hub(body)
        main = self.items[self.main]
        at = next((i for i, it in enumerate(main) if type(it) is type(item)), None)
        if at is None:
            main.append(item.model_copy(update={"body": body}))
        else:
            main[at] = main[at].model_copy(update={"body": _patched(main[at].body, body)})
        self.changes += [f"{word}.{p.key.name}" for p in body.props]

    def _no_hub(self, body: ast.Block) -> ast.Block:
        for p in body.props:
            if p.key.name in HUB_FIELDS:
                self.diags.append(Diagnostic(
                    "MOL806", f"a variant cannot set output.{p.key.name}", Label(p.key.sp, "refused in a variant"),
                    help="all variants are published together, as the configs of one dataset repo; "
                         f"set `{p.key.name}` in the base spec's output block"))
        return body.model_copy(update={"props": tuple(p for p in body.props if p.key.name not in HUB_FIELDS)})


def _patched(base: ast.Block | None, patch: ast.Block) -> ast.Block:
    """`base` with every property that `patch` sets replaced by the patch's (which keeps its span)."""
    if base is None:
        return patch
    keys = {p.key.name for p in patch.props}
    return base.model_copy(update={"props": tuple(p for p in base.props if p.key.name not in keys) + patch.props})


def _head(item: ast.Node) -> Span:
    """Where to point at an item: its name when it has one, else its first line."""
    name = getattr(item, "name", None)
    if isinstance(name, ast.Ident):
        return name.sp
    return Span(item.sp.file, item.sp.start, item.sp.start + len(type(item).__name__), item.sp.line, item.sp.col)
