"""Fixtures for runtime tests: a small spec with its questions in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SPEC = """\
molspec 1

dataset "tests/tiny" {{ samples = {samples}  seed = 3  license = "mit" }}

source questions = jsonl("questions.jsonl") {{ question = "q"  gold = "a" }}

model synth {{ engine = "echo"  name = "none"  temperature = 0.5  max_tokens = 40 }}

bond explore : vdw "Self-exploration" {{ instruct = "Explore another way." }}
bond deep : covalent "Deep reasoning" {{ instruct = "Go one step deeper."  max_tokens = 60 }}
bond reflect : hydrogen "Self-reflection" {{ instruct = "Check an earlier step." }}
bond normal : plain "Normal operation" {{ instruct = "Do the next routine step." }}

graph g {{
  start   -> explore 1.0
  explore -> deep 0.5 | normal 0.3 | reflect 0.2
  deep    -> deep 0.4 | reflect 0.3 | normal 0.2 | explore 0.1
  reflect -> deep 0.5 | normal 0.3 | explore 0.2
  normal  -> deep 0.6 | reflect 0.2 | explore 0.2
  steps = {steps}
}}

answer {{ verify = "math" }}
"""


def write_spec(folder: Path, samples: int = 24, steps: str = "2..5", questions: int = 10) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "questions.jsonl").open("w") as fh:
        for i in range(questions):
            fh.write(json.dumps({"q": f"What is {i} + {i}?", "a": str(2 * i)}) + "\n")
    spec = folder / "tiny.mol"
    spec.write_text(SPEC.format(samples=samples, steps=steps))
    return spec


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "spec")
