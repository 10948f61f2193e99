"""One local Ray runtime per test session (2 CPUs, no dashboard); the folder is skipped without Ray."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.runtime.conftest import write_spec

# Two replicas fit on two CPUs with room left for the coordinator (which asks for none).
CPUS_PER_REPLICA = 0.5


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ours = not ray.is_initialized()
    if ours:
        ray.init(address="local", num_cpus=2, include_dashboard=False)  # never join a cluster running here
    yield ray
    if ours:
        ray.shutdown()


def rows(out: Path) -> list[dict[str, Any]]:
    """The dataset's rows, every column, in sample order."""
    table = pq.read_table(out / "data")
    return sorted(table.to_pylist(), key=lambda r: r["sample_index"])


def journal(out: Path) -> dict[str, list[int]]:
    """Writer name -> the sample indices it journalled (successes and failures), in order."""
    from molspec.runtime.journal import JournalEntry

    found = {}
    for path in sorted((out / ".molspec" / "journal").glob("*.jsonl")):
        entries = [JournalEntry.model_validate_json(line.split(" ", 1)[1]) for line in path.read_text().splitlines()]
        found[path.stem] = [e.index for e in entries]  # each line is `<checksum> <JournalEntry JSON>`
    return found


def openai_spec(folder: Path, base_url: str, model: str, samples: int, steps: str = "2..4") -> Path:
    """The runtime tests' tiny spec, on the openai engine pointed at `base_url` (options travel to the replicas)."""
    spec = write_spec(folder, samples=samples, steps=steps)
    text = spec.read_text().replace(
        'model synth { engine = "echo"  name = "none"  temperature = 0.5  max_tokens = 40 }',
        f'model synth {{ engine = "openai"  name = "{model}"  temperature = 0.5  max_tokens = 40\n'
        f'  options {{ base_url = "{base_url}" }}\n}}')
    assert base_url in text
    spec.write_text(text)
    return spec
