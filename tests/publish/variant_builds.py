"""A real variant build (group directory) made with the echo engine, for the card, push and compare tests.

Four variants of examples/quickstart.mol, as examples/ablations.mol declares them: `r1` the base, `qwq`
another graph, `no_reflect` the base graph without the `reflect` bond (rows renormalised), `terse_answer`
another answer instruction. When the pipeline builds variants itself (`molspec build` writes
variants.json), `make_group` uses it; until then each variant is built as an ordinary build into
GROUP/<name>/ and variants.json is written here, as the pipeline does.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from molspec.api import Document, load
from molspec.pipeline import build
from molspec.plan.pairing import paired, same_walks
from molspec.records import (
    VARIANTS_MANIFEST,
    CacheInfo,
    VariantEntry,
    VariantInfo,
    VariantsManifest,
    read_manifest,
)
from molspec.runtime.build import BuildOptions
from molspec.spec import Spec

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.mol"
NAMES = ("r1", "qwq", "no_reflect", "terse_answer")

QWQ = """graph quick {
  start   -> deep 0.7 | normal 0.3
  explore -> normal 0.8 | deep 0.2
  deep    -> normal 0.6 | explore 0.4
  reflect -> normal 1.0
  normal  -> normal 0.5 | explore 0.5
  steps = 3..5
}"""

NO_REFLECT = """graph quick {
  start   -> explore 1.0
  explore -> deep 0.625 | normal 0.375
  deep    -> deep 0.4 | normal 0.4 | explore 0.2
  normal  -> deep 0.625 | normal 0.25 | explore 0.125
  steps = 3..5
}"""


def variant_specs() -> dict[str, tuple[Spec, list[str], Document]]:
    """name -> (checked spec, changes, its document), in spec order; the first is the base."""
    base_text = QUICKSTART.read_text(encoding="utf-8")
    graph = re.search(r"graph quick \{.*?\n\}", base_text, re.S)
    assert graph is not None
    reflect = re.search(r'bond reflect : hydrogen.*?\n\}\n', base_text, re.S)
    assert reflect is not None
    texts = {
        "r1": (base_text, []),
        "qwq": (base_text.replace(graph[0], QWQ), ["graph quick"]),
        "no_reflect": (base_text.replace(graph[0], NO_REFLECT).replace(reflect[0], ""), ["drop reflect"]),
        "terse_answer": (base_text.replace("Now state the final answer as a number in \\\\boxed{}.",
                                           "Reply with the final number only, in \\\\boxed{}."), ["answer.instruct"]),
    }
    out = {}
    for name, (text, changes) in texts.items():
        assert name == "r1" or text != base_text, name
        doc = load(QUICKSTART, text)
        out[name] = (doc.raise_for_errors(), changes, doc)
    return out


def make_group(group: Path) -> Path:
    """Build the four echo variants into `group` and write its variants.json; returns `group`."""
    specs = variant_specs()
    base = specs["r1"][0]
    group_sha = _group_sha(specs)
    entries = []
    for name, (spec, changes, doc) in specs.items():
        out = group / name
        build(Document(doc.program, spec, []), BuildOptions(out=out, engine="echo", command=f"molspec build {name}"))
        m = read_manifest(out)
        m.variant = VariantInfo(name=name, changes=changes, group_sha256=group_sha)
        (out / "molspec.json").write_text(m.model_dump_json(indent=2))
        entries.append(VariantEntry(name=name, path=name, spec_sha256=spec.sha256(), changes=changes,
                                    same_walks=same_walks(base, spec)))
        assert paired(base, spec)
    manifest = VariantsManifest(
        molspec_version="0.1.0", spec="ablations.mol", group_sha256=group_sha, dataset="molspec/ablations",
        seed=7, samples=8, pairing="Sample i has the same question and seed in every variant.",
        variants=entries, cache=CacheInfo(hits=58, misses=150, entries=150),
        command="molspec build examples/ablations.mol --engine echo", created="2026-11-30T02:00:00Z")
    (group / VARIANTS_MANIFEST).write_text(manifest.model_dump_json(indent=2))
    (group / ".molspec").mkdir(exist_ok=True)
    (group / ".molspec" / "owned.json").write_text('["README.md", "variants.json"]')
    return group


def copy_group(src: Path, dst: Path) -> Path:
    """A copy of a built group (tests that write into it get their own)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _group_sha(specs: dict[str, tuple[Spec, list[str], Document]]) -> str:
    import hashlib

    parts = [f"{name}={spec.sha256()}" for name, (spec, _, _) in specs.items()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
