"""A small real spec (with an import, two splits and an output hub) for echo builds in the publishing tests."""

from __future__ import annotations

import json
from pathlib import Path

REPO = "acme/echo-demo"

BONDS = """\
molspec 1

# The bond vocabulary, imported by the spec.
bond explore : vdw "Self-exploration" { instruct = "Explore another way." }
bond deep : covalent "Deep reasoning" { instruct = "Go one step deeper."  max_tokens = 60 }
bond reflect : hydrogen "Self-reflection" { instruct = "Check an earlier step." }
bond normal : plain "Normal operation" { instruct = "Do the next routine step." }
"""

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

graph g {{
  start   -> explore 1.0
  explore -> deep 0.5 | normal 0.3 | reflect 0.2
  deep    -> deep 0.4 | reflect 0.3 | normal 0.2 | explore 0.1
  reflect -> deep 0.5 | normal 0.3 | explore 0.2
  normal  -> deep 0.6 | reflect 0.2 | explore 0.2
  steps = 2..5
}}

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
    spec.write_text(SPEC.format(name=name, train=train, temperature=temperature, hub=hub_line))
    return spec
