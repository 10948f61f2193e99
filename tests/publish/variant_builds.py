"""A real variant build (group directory) made with the echo engine, for the card, push and compare tests.

examples/ablations.mol built by the pipeline as `molspec build examples/ablations.mol --engine echo` builds
it: `r1` the base, `qwq` another teacher graph, `no_reflect` the base graph without the `reflect` bond,
`terse_answer` another answer instruction; GROUP/variants.json, GROUP/README.md (the group card) and one
build directory per variant.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from molspec.api import load
from molspec.pipeline import build
from molspec.runtime.build import BuildOptions

ROOT = Path(__file__).resolve().parents[2]
ABLATIONS = ROOT / "examples" / "ablations.mol"
NAMES = ("r1", "qwq", "no_reflect", "terse_answer")


def make_group(group: Path) -> Path:
    """Build the four echo variants of examples/ablations.mol into `group`; returns `group`."""
    build(load(ABLATIONS), BuildOptions(out=group, engine="echo",
                                        command="molspec build examples/ablations.mol --engine echo"))
    assert (group / "variants.json").is_file() and (group / "README.md").is_file()
    return group


def copy_group(src: Path, dst: Path) -> Path:
    """A copy of a built group (tests that write into it get their own)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst
