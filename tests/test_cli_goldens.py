"""Golden renders of the errors that come from a command rather than a spec's text: a plan too big for
the sampler (MOL121), a Hub source that cannot be loaded (MOL405), a folder that is not a build (MOL701),
a folder molspec does not own (MOL702). Each case runs the real CLI in a scratch folder; its stderr must
equal `tests/cli_goldens/<case>.txt` (rewrite with `pytest --update-goldens`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lang.golden import check_golden

HERE = Path(__file__).parent / "cli_goldens"
HEADER = 'molspec 1\nmodel m { engine = "echo"  name = "none" }\n'
GRAPH = "graph g {{\n  start -> {first} 1.0\n  {first} -> end 1.0\n  steps = 1..2\n}}\n"


def _many_bonds(folder: Path) -> list[str]:
    bonds = "".join(f'bond b{i} : plain "B{i}" {{ instruct = "Step {i}." }}\n' for i in range(128))
    rows = "".join(f"  b{i} -> b{i + 1} 0.5 | end 0.5\n" for i in range(127))
    graph = f"graph g {{\n  start -> b0 1.0\n{rows}  b127 -> end 1.0\n  steps = 1..200\n}}\n"
    (folder / "q.jsonl").write_text('{"question": "What is 1 + 1?", "gold": "2"}\n')
    (folder / "big.mol").write_text(HEADER + bonds + graph
                                    + 'source q = jsonl("q.jsonl")\ndataset "t/big" { samples = 2 }\n')
    return ["plan", "big.mol"]


def _hub_source(folder: Path) -> list[str]:
    (folder / "hub.mol").write_text(HEADER + 'bond b : plain "B" { instruct = "Step." }\n' + GRAPH.format(first="b")
                                    + 'source q = hub("no-such-user/no-such-dataset")\n'
                                    + 'dataset "t/hub" { samples = 2 }\n')
    return ["plan", "hub.mol"]


def _not_a_build(folder: Path) -> list[str]:
    (folder / "empty").mkdir()
    return ["analyze", "empty"]


def _not_ours(folder: Path) -> list[str]:
    (folder / "q.jsonl").write_text('{"question": "What is 1 + 1?", "gold": "2"}\n')
    (folder / "s.mol").write_text(HEADER + 'bond b : plain "B" { instruct = "Step." }\n' + GRAPH.format(first="b")
                                  + 'source q = jsonl("q.jsonl")\ndataset "t/s" { samples = 2 }\n')
    (folder / "mine").mkdir()
    (folder / "mine" / "notes.txt").write_text("my own file\n")
    return ["build", "s.mol", "--out", "mine", "-q"]


CASES: dict[str, tuple[str, Callable[[Path], list[str]]]] = {
    "plan-too-many-bonds": ("MOL121", _many_bonds),
    "plan-hub-source-unreachable": ("MOL405", _hub_source),
    "analyze-not-a-build": ("MOL701", _not_a_build),
    "build-into-a-folder-molspec-does-not-own": ("MOL702", _not_ours),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_error_golden(case: str, tmp_path: Path, update_goldens: bool) -> None:
    code, make = CASES[case]
    argv = make(tmp_path)
    # A process of its own: no Hub endpoint or cache left behind by other tests; offline, so the Hub case
    # fails at once and the same way on every machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MOLSPEC_"))} | {"HF_HUB_OFFLINE": "1"}
    ran = subprocess.run([sys.executable, "-m", "molspec.cli", *argv], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 1
    err = ran.stderr
    assert f"[{code}]" in err and "Traceback" not in err
    check_golden(HERE / f"{case}.txt", err, update_goldens)
