"""Helpers for the step cache and variant build tests: a spec with variants, and the echo engine counting requests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from molspec.engines import Completion, Request, create
from tests.runtime.conftest import write_spec
from tests.support.specs import graph

CUE = 'fidelity { labeler = "cue" }\n'  # the rule labeler: no weights to load, the gate still asks again

VARIANTS = """
variant base "the spec as it stands" {}

variant terse "another answer instruction" {
  answer { instruct = "Only the final number, in \\\\boxed{}." }
}

variant swap "another graph" {
""" + "\n".join("  " + line for line in graph("2..4").splitlines()) + """
}

variant noreflect "no self-reflection" { drop reflect }
"""
NAMES = ("base", "terse", "swap", "noreflect")


def write_variant_spec(folder: Path, samples: int = 24, variants: bool = True) -> Path:
    """The runtime tests' tiny spec (echo engine, cue labeler) with four variants: `base` (no change), `terse`
    (the answer instruction only), `swap` (another graph) and `noreflect` (`drop reflect`)."""
    spec = write_spec(folder, samples=samples)
    spec.write_text(spec.read_text() + CUE + (VARIANTS.replace("explore 1.0", "explore 0.5 | deep 0.5", 1)
                                              if variants else ""))
    return spec


class Counting:
    """The real echo engine, keeping every request it receives (so a test counts what the engine generated)."""

    name = "echo"

    def __init__(self, seed: int = 3) -> None:
        self.inner = create("echo", "none", {}, seed)
        self.requests: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        self.requests += requests
        return self.inner.generate(requests)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()

    def bonds(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The bond (or "answer") of each request received, in order, from `start` to `stop`."""
        return [str(r.meta["bond"]) for r in self.requests[start:stop]]
