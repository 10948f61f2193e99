"""Plain-text markdown pieces for the dataset card: padded tables, numbers, percentages, code fences.

Tables are padded so that they line up when the card is read as plain text; numeric columns are
right-aligned. The card's template calls these through its context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from molspec.engines.redact import redact

Cell = str | int | float | bool | None


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table padded to line up in plain text; numeric columns are right-aligned."""
    cells = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in [header, *rows]]
    width = [max(3, *(len(r[i]) for r in cells)) for i in range(len(header))]
    numeric = [len(cells) > 1 and all(_numeric(r[i]) for r in cells[1:]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        padded = (c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, width, numeric, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if n else "-" * w for w, n in zip(width, numeric, strict=True))
    return "\n".join([line(cells[0]), rule + " |", *(line(r) for r in cells[1:])])


def matrix_table(rows: Sequence[str], cols: Sequence[str], matrix: npt.ArrayLike,
                 corner: str = "from \\ to") -> str:
    """A probability matrix as a table, three decimals."""
    m = np.asarray(matrix, dtype=np.float64)
    return table([corner, *cols], [[r, *[f"{p:.3f}" for p in m[i]]] for i, r in enumerate(rows)])


def num(value: Cell) -> str:
    """A number for a table: thousands separators, at most two decimals, "—" for none."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    return clean(str(value))


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def short(value: str | None, n: int) -> str:
    return str(value)[:n] if value else "unknown"


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    return "`" * (longest + 1)


def arrow_type(t: pa.DataType) -> str:
    """A column type as a reader knows it (string, int64, list<string>, struct)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{arrow_type(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct"
    return {"bool": "bool", "large_string": "string"}.get(str(t), str(t))


def clean(text: str) -> str:
    """Text with token-shaped strings, bearer tokens and URL credentials masked."""
    return redact(text)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,]*\.?\d+%?|—", text))
