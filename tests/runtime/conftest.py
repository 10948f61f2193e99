"""Fixtures for runtime tests: a small spec with its questions in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.specs import BONDS, graph

HEADER = """\
molspec 1

dataset "tests/tiny" {{ samples = {samples}  seed = 3  license = "mit" }}

source questions = jsonl("questions.jsonl") {{ question = "q"  gold = "a" }}

model synth {{ engine = "echo"  name = "none"  temperature = 0.5  max_tokens = 40 }}

"""


def write_spec(folder: Path, samples: int = 24, steps: str = "2..5", questions: int = 10) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "questions.jsonl").open("w") as fh:
        for i in range(questions):
            fh.write(json.dumps({"q": f"What is {i} + {i}?", "a": str(2 * i)}) + "\n")
    spec = folder / "tiny.mol"
    spec.write_text(HEADER.format(samples=samples) + BONDS + "\n" + graph(steps) + '\nanswer { verify = "math" }\n')
    return spec


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "spec")
