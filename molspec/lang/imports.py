"""Resolve `use "other.mol"` imports: a spec file and everything it imports, cycles reported.

Paths in `use` are relative to the importing file. Each file is parsed once, however many files
import it; the result lists files with imports before importers (the main file last).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from molspec.diagnostics import Diagnostic, Label, MolspecError, Severity, Span, did_you_mean
from molspec.lang import ast
from molspec.lang.build import parse_file


@dataclass
class Program:
    """A main file and its imports.

    Attributes:
        files: parsed files, imports first, the main file last.
        sources: display path -> text, for rendering diagnostics.
        diagnostics: import problems and syntax errors of imported files.
    """

    main: str
    files: list[ast.File] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)  # display path -> absolute path

    @property
    def main_file(self) -> ast.File | None:
        return next((f for f in self.files if f.path == self.main), None)


def load_program(path: str | Path, text: str | None = None) -> Program:
    """Parse `path` and its imports. A syntax error in the main file raises; other problems are
    collected in `Program.diagnostics`.

    Raises:
        MolspecError: the main file cannot be read or does not parse.
    """
    display = str(path)
    abs_path = Path(path).resolve()
    if text is None:
        text = _read(abs_path, display)
    prog = Program(main=display)
    prog.sources[display] = text
    prog.paths[display] = abs_path
    main = parse_file(text, display)
    _visit(prog, main, abs_path, stack=[abs_path], done={abs_path: display})
    prog.files.append(main)
    return prog


def _read(abs_path: Path, display: str) -> str:
    try:
        data = abs_path.read_bytes()
    except FileNotFoundError:
        raise _file_error(f"no such file: {display}", Span(display, 0, 0, 1, 1)) from None
    except IsADirectoryError:
        raise _file_error(f"{display} is a directory, not a .mol file", Span(display, 0, 0, 1, 1)) from None
    except OSError as exc:
        raise _file_error(f"cannot read {display}: {exc.strerror}", Span(display, 0, 0, 1, 1)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = {display: data.decode("utf-8", errors="replace")}
        raise _file_error(f"{display} is not UTF-8 text", _byte_span(display, data, exc.start),
                          help="save the file as UTF-8", sources=shown) from None


def _byte_span(display: str, data: bytes, offset: int) -> Span:
    """Span of the byte at `offset`, with line and column counted in the valid text before it."""
    before = data[:offset].decode("utf-8")
    line = before.count("\n") + 1
    col = len(before) - (before.rfind("\n") + 1) + 1
    return Span(display, len(before), len(before) + 1, line, col)


def _file_error(message: str, span: Span, help: str | None = None,
                sources: dict[str, str] | None = None) -> MolspecError:
    label = Label(span, "not UTF-8" if sources else "")
    return MolspecError([Diagnostic("MOL013", message, label, help=help)], sources)


def _visit(prog: Program, file: ast.File, abs_path: Path, stack: list[Path], done: dict[Path, str]) -> None:
    for item in file.items:
        if isinstance(item, ast.Use):
            _import(prog, item, abs_path, stack, done)


def _display(target: Path) -> str:
    try:
        return str(target.relative_to(Path.cwd()))
    except ValueError:
        return str(target)


def _import(prog: Program, use: ast.Use, importer: Path, stack: list[Path], done: dict[Path, str]) -> None:
    target = (importer.parent / use.path.value).resolve()
    if target in stack:
        chain = " -> ".join(p.name for p in stack[stack.index(target):] + [target])
        prog.diagnostics.append(Diagnostic(
            "MOL502", f"import cycle: {chain}", Label(use.path.sp, "this import closes the cycle"),
            help="move the shared definitions into a file that both import"))
        return
    if target in done:
        return
    display = _display(target)
    if not target.is_file():
        prog.diagnostics.append(Diagnostic(
            "MOL501", f"imported file not found: {use.path.value}", Label(use.path.sp, f"looked for {display}"),
            help=_near_miss(target) or "paths in `use` are relative to the file that imports them"))
        return
    done[target] = display
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        prog.diagnostics.append(Diagnostic("MOL501", f"cannot read {use.path.value}: {exc}",
                                           Label(use.path.sp)))
        return
    prog.sources[display] = text
    prog.paths[display] = target
    try:
        parsed = parse_file(text, display)
    except MolspecError as err:
        prog.diagnostics.extend(err.diagnostics)
        prog.diagnostics.append(Diagnostic("MOL503", f"imported file {use.path.value} has errors",
                                           Label(use.path.sp, "imported here"), severity=Severity.NOTE))
        return
    _visit(prog, parsed, target, stack + [target], done)
    prog.files.append(parsed)


def _near_miss(target: Path) -> str | None:
    """'did you mean' over the .mol files next to where the import looked."""
    if not target.parent.is_dir():
        return None
    return did_you_mean(target.name, sorted(p.name for p in target.parent.glob("*.mol")))
