"""The syntax tree of a .mol file: one frozen node class per grammar rule, a span on every node.

Spans never take part in equality or hashing, so the same spec written with other whitespace or
comments gives an equal tree (the formatter's round-trip test relies on it).
"""

from __future__ import annotations

import json
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field

from molspec.diagnostics import Span


class Node(BaseModel):
    """Base of all nodes: frozen, no extra fields, span excluded from dumps and equality."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    span: Span | None = Field(default=None, exclude=True, repr=False)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.model_dump() == other.model_dump()  # type: ignore[attr-defined,unused-ignore]

    def __hash__(self) -> int:
        return hash((type(self).__name__, json.dumps(self.model_dump(), sort_keys=True, default=str)))

    @property
    def sp(self) -> Span:
        """The span, for nodes that come from the parser (always set there)."""
        assert self.span is not None, f"{type(self).__name__} has no span"
        return self.span


class Ident(Node):
    name: str


class Str(Node):
    value: str
    triple: bool = False


class Num(Node):
    value: float
    raw: str

    @property
    def is_int(self) -> bool:
        return float(self.value).is_integer() and "." not in self.raw and "e" not in self.raw.lower()


class Bool(Node):
    value: bool


class Ref(Node):
    name: str


class ListV(Node):
    items: tuple[Value, ...]


class RangeV(Node):
    lo: Num
    hi: Num


Value = Union[Str, Num, Bool, Ref, ListV, RangeV]  # noqa: UP007  (pydantic needs a runtime union)


class Assign(Node):
    key: Ident
    value: Value


class Section(Node):
    key: Ident
    label: Ident | None
    body: Block


Prop = Union[Assign, Section]  # noqa: UP007


class Block(Node):
    props: tuple[Prop, ...]


class Call(Node):
    func: Ident
    args: tuple[Value, ...]
    kwargs: tuple[Assign, ...]


class Use(Node):
    path: Str


class Dataset(Node):
    name: Str
    body: Block


class Source(Node):
    name: Ident
    call: Call
    body: Block | None


class Model(Node):
    name: Ident
    body: Block


class Bond(Node):
    name: Ident
    kind: Ident
    title: Str | None
    body: Block | None


class Edge(Node):
    target: Ident
    weight: Value


class Row(Node):
    source: Ident
    edges: tuple[Edge, ...]


class Graph(Node):
    name: Ident
    mode: Ident | None
    stmts: tuple[Row | Assign | Section, ...]


class Template(Node):
    name: Ident
    body: Str


class Answer(Node):
    body: Block


class Output(Node):
    body: Block


class Fidelity(Node):
    body: Block


class Drop(Node):
    """`drop NAME` in a variant: the bond leaves every graph."""

    name: Ident


class BondPatch(Node):
    """`bond NAME { props }` in a variant: fields of an existing bond."""

    name: Ident
    body: Block


class Variant(Node):
    """`variant NAME ["title"] { items }`: the base spec with these items applied."""

    name: Ident
    title: Str | None
    items: tuple[VariantItem, ...]


Item = Union[Use, Dataset, Source, Model, Bond, Graph, Template, Answer, Output, Fidelity, Variant]  # noqa: UP007
VariantItem = Union[Use, Dataset, Source, Model, Bond, Graph, Template, Answer, Output, Fidelity, Variant,  # noqa: UP007
                    Drop, BondPatch]


class File(Node):
    """One parsed .mol file. `path` and `text` are kept for diagnostics, not compared."""

    version: Num | None
    items: tuple[Item, ...]
    path: str = Field(default="<string>", exclude=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump()


for _cls in (ListV, Section, Block, Variant, File):
    _cls.model_rebuild()
