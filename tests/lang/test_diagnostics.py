"""Golden diagnostics: every `diagnostics/<case>.mol` renders exactly as `<case>.txt`.

The first line of each case says which diagnostic it is about and where it must point:
`# expect: MOL104 at 9:25` (or `at _support/x.mol:3:5` for a span in an imported file).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from molspec.api import load
from molspec.diagnostics import Diagnostic, MolspecError, render_all
from molspec.lang.fmt import format_text
from tests.lang.golden import check_golden

HERE = Path(__file__).parent / "diagnostics"
CASES = sorted(HERE.glob("*.mol"))
EXPECT = re.compile(rb"# expect: (MOL\d{3}) at (?:(\S+):)?(\d+):(\d+)\n")


@pytest.fixture(scope="module", autouse=True)
def generated_inputs() -> None:
    """Inputs git cannot hold (a FIFO, a 5 MB file, a symlink loop), made in `_support/generated/`."""
    gen = HERE / "_support" / "generated"
    fifo, huge, loop_a, loop_b = (gen / n for n in ("fifo.mol", "huge.mol", "loop-a.mol", "loop-b.mol"))
    if not fifo.exists():
        os.mkfifo(fifo)
    with huge.open("wb") as fh:  # sparse: takes no disk space
        fh.truncate(5 << 20)
    for link, target in ((loop_a, "loop-b.mol"), (loop_b, "loop-a.mol")):
        if not link.is_symlink():
            link.symlink_to(target)


def diagnose(name: str) -> tuple[list[Diagnostic], str]:
    """Diagnostics of a case and their rich no-colour render (paths relative to HERE)."""
    try:
        doc = load(name)
    except MolspecError as err:
        return list(err.diagnostics), err.render(color=False, limit=None)
    return doc.check(), render_all(doc.check(), doc.sources, color=False, limit=None)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_render(case: Path, update_goldens: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    diags, rendered = diagnose(case.name)
    check_golden(case.with_suffix(".txt"), rendered + "\n", update_goldens)

    header = EXPECT.match(case.read_bytes())
    assert header, f"{case.name} must start with '# expect: MOLnnn at LINE:COL'"
    code, file, line, col = header.group(1).decode(), header.group(2), int(header.group(3)), int(header.group(4))
    where = {(d.span.file, d.span.line, d.span.col) for d in diags if d.code == code}
    assert (file.decode() if file else case.name, line, col) in where, f"{code} not at {line}:{col}: {where}"


def test_enough_distinct_codes() -> None:
    codes = {EXPECT.match(c.read_bytes()).group(1) for c in CASES}  # type: ignore[union-attr]
    assert len(CASES) >= 30 and len(codes) >= 30, (len(CASES), sorted(codes))


def test_renders_never_contain_tracebacks_or_absolute_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    for case in CASES:
        _, rendered = diagnose(case.name)
        assert "Traceback" not in rendered and str(HERE) not in rendered, case.name


SYNTAX_CASES = [c for c in CASES if c.stem.startswith("syntax-")]


@pytest.mark.parametrize("case", SYNTAX_CASES, ids=[c.stem for c in SYNTAX_CASES])
def test_formatter_reports_the_same_syntax_error(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`molspec fmt` parses with a comment-collecting parser; its errors must match `check`'s."""
    monkeypatch.chdir(HERE)
    diags, _ = diagnose(case.name)
    with pytest.raises(MolspecError) as err:
        format_text(case.read_text(encoding="utf-8"), case.name)
    assert [(d.code, d.span) for d in err.value.diagnostics] == [(d.code, d.span) for d in diags]
