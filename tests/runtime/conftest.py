"""Fixtures for runtime tests: a small spec with its questions in a temporary folder."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(spec, out): the tiny spec built once, uninterrupted; tests copy `out` and never change either."""
    from tests.runtime.buildtools import cli

    folder = tmp_path_factory.mktemp("reference")
    spec = write_spec(folder / "spec")
    out = folder / "out"
    assert cli("build", spec, "--out", out, "-q").rc == 0
    return spec, out


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only; skipped where mounting is not allowed): a disk that really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
