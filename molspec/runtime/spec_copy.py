"""The build's copy of its spec: the spec, its imports and its local source files, as one self-contained tree.

Every file keeps its place relative to the others (under `spec/`, rooted at their common folder), so the
relative paths written in `use` and `source` lines still resolve in the copy: `molspec check` passes on it
and it compiles to the same plan. Only paths written as absolute, or sources too large to copy, keep a copy
from being self-contained; the manifest says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from molspec.runtime.store import Store
from molspec.sources import Question, SourceError, load_questions
from molspec.spec import Spec

MAX_SOURCE_BYTES = 256 * 2**20  # local source files larger than this (together) are not copied


@dataclass(frozen=True)
class SpecCopy:
    files: list[str]  # relative to the build directory
    main: str
    self_contained: bool
    note: str | None = None


def copy_spec(spec: Spec, questions: dict[str, list[Question]], store: Store) -> SpecCopy:
    """Write the copy under `spec/` (replacing only the copy molspec wrote before); returns what it wrote."""
    texts = {Path(p).resolve(): text.encode("utf-8") for p, text in spec.files.items()}
    main = Path(spec.path).resolve()
    texts.setdefault(main, spec.files.get(spec.path, "").encode("utf-8"))
    sources, note = _sources(spec, questions)
    root = Path(os.path.commonpath([p.parent for p in [*texts, *sources]]))
    wanted = {f"spec/{p.relative_to(root).as_posix()}": p for p in [*texts, *sources]}
    store.disown(rel for rel in store.owned() if rel.startswith("spec/") and rel not in wanted)
    for rel, path in sorted(wanted.items()):
        store.write_file(rel, texts[path] if path in texts else path.read_bytes())
    note = note or _changed_source(spec, questions, store.root, root)
    absolute = _absolute_paths(spec)
    if absolute:
        note = f"the spec names {absolute[0]} by an absolute path; the copy still points there"
    return SpecCopy(files=sorted(wanted), main=f"spec/{main.relative_to(root).as_posix()}",
                    self_contained=note is None, note=note)


def _sources(spec: Spec, questions: dict[str, list[Question]]) -> tuple[list[Path], str | None]:
    """The local files behind the sources the build read (Hub datasets are named by id, not copied)."""
    paths = [Path(spec.sources[name].location) for name in questions if spec.sources[name].path]
    paths = [p for p in paths if p.is_file()]
    if sum(p.stat().st_size for p in paths) > MAX_SOURCE_BYTES:
        return [], f"the source files are over {MAX_SOURCE_BYTES >> 20} MiB and were not copied"
    return paths, None


def _changed_source(spec: Spec, questions: dict[str, list[Question]], out: Path, root: Path) -> str | None:
    """Why the copied sources do not hold the questions the build used (a file edited while it ran), if so.

    The copy is read back as the build read its source, so what `molspec build` on the copy would draw is
    compared with what this build drew."""
    for name, drawn in sorted(questions.items()):
        src = spec.sources[name]
        if not src.path:
            continue
        copied = out / "spec" / Path(src.location).relative_to(root)
        try:
            now = load_questions(src.model_copy(update={"base": str(copied.parent), "path": copied.name}))
        except SourceError:
            now = None
        if now != drawn:
            return (f"source '{name}' ({src.path}) changed while the build ran: the copy holds the file as it is "
                    "now, not the questions this dataset was built from")
    return None


def _absolute_paths(spec: Spec) -> list[str]:
    """Paths the spec's text names absolutely (they resolve on this machine only)."""
    texts = list(spec.files.values())
    named = [str(Path(p).resolve()) for p in spec.files] + [s.location for s in spec.sources.values() if s.path]
    return [p for p in named if any(f'"{p}"' in t for t in texts)]
