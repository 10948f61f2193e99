"""A small real spec (with an import, two splits and an output hub) for echo builds in the publishing tests."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.specs import BONDS as VOCABULARY
from tests.support.specs import graph

REPO = "acme/echo-demo"

BONDS = "molspec 1\n\n# The bond vocabulary, imported by the spec.\n" + VOCABULARY

SPEC = """\
molspec 1

use "bonds.mol"

dataset "{name}" {{
  seed = 3
  license = "mit"
  description = "Echo build for the publishing tests."
  split train {{ samples = {train}  graph = g }}
  split test {{ samples = 4  graph = g }}
}}

source questions = jsonl("questions.jsonl") {{ question = "q"  gold = "a" }}

model synth {{ engine = "echo"  name = "none"  temperature = {temperature}  max_tokens = 40 }}

{graph}
answer {{ verify = "math" }}

output {{ format = "messages"  think = true{hub} }}
"""


def write_spec(folder: Path, train: int = 10, temperature: float = 0.5, hub: str | None = REPO,
               name: str = REPO) -> Path:
    """Write the spec, its import and its questions into `folder`; returns the spec's path."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "questions.jsonl").open("w") as fh:
        for i in range(12):
            fh.write(json.dumps({"q": f"What is {i} + {i}?", "a": str(2 * i)}) + "\n")
    (folder / "bonds.mol").write_text(BONDS)
    spec = folder / "demo.mol"
    hub_line = f'  hub = "{hub}"' if hub else ""
    spec.write_text(SPEC.format(name=name, train=train, temperature=temperature, hub=hub_line, graph=graph("2..5")))
    return spec
