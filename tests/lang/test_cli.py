"""`molspec check | fmt | plan` end to end: exit codes, diagnostics on stderr, outputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from molspec.cli import main
from tests.lang.corpus import EXAMPLES, ROOT

DIAG = Path(__file__).parent / "diagnostics"
FIX = Path(__file__).parent / "fixtures" / "compile"
SPECS = [p for p in EXAMPLES if p.parent.name == "examples"]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).with_name("molspec")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_check_all_examples_exits_0() -> None:
    result = run_cli("check", *(str(p.relative_to(ROOT)) for p in EXAMPLES))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(": ok") == len(EXAMPLES)


# The four bad specs of the issue: a misspelled bond, a row summing to 0.9, an unknown template
# variable, a syntax error. Each: exit 1, file:line:col, the line as written, a caret, no traceback.
ISSUE_CASES = {
    "unknown-bond-in-row": ("MOL104", "  explore -> deep 0.6 | reflekt 0.4"),
    "row-sum-not-one": ("MOL201", "  explore -> deep 0.5 | reflect 0.3 | explore 0.1"),
    "template-unknown-variable": ("MOL302", "The reference answer is {{ answer }}."),
    "syntax-missing-equals": ("MOL005", "  samples 2000"),
}


@pytest.mark.parametrize("case", sorted(ISSUE_CASES))
def test_bad_specs_exit_1_with_a_located_caret(case: str) -> None:
    code, line = ISSUE_CASES[case]
    result = run_cli("check", f"{case}.mol", cwd=DIAG)
    assert result.returncode == 1
    err = result.stderr
    assert "Traceback" not in err and result.stdout == ""
    assert f"error[{code}]" in err
    where = re.search(rf"--> {re.escape(case)}\.mol:(\d+):(\d+)", err)
    assert where, err
    lineno, col = int(where.group(1)), int(where.group(2))
    assert f"{lineno} | {line}" in err
    caret_line = err.splitlines()[err.splitlines().index(next(s for s in err.splitlines() if s.endswith(line))) + 1]
    assert caret_line.index("^") - caret_line.index("|") - 2 == col - 1, caret_line


def test_short_format(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DIAG)
    assert main(["check", "--format", "short", "row-sum-not-one.mol", "duplicate-edge.mol"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["row-sum-not-one.mol:10:3: error[MOL201]: the row of 'explore' sums to 0.9, not 1",
                     "duplicate-edge.mol:10:39: error[MOL203]: 'deep' appears twice in the row of 'explore'"]


def test_warnings_pass_unless_strict(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DIAG)
    assert main(["check", "end-only-stopping.mol"]) == 0
    assert "warning[MOL212]" in capsys.readouterr().err
    assert main(["check", "--strict", "end-only-stopping.mol"]) == 1


def test_no_colour_when_not_a_terminal_and_colour_on_request(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DIAG)
    main(["check", "row-sum-not-one.mol"])
    assert "\x1b[" not in capsys.readouterr().err
    main(["check", "--color", "always", "row-sum-not-one.mol"])
    assert "\x1b[1;31merror[MOL201]" in capsys.readouterr().err


# ---------------------------------------------------------------- fmt

def test_fmt_check_and_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ugly = tmp_path / "ugly.mol"
    ugly.write_text('molspec 1\nbond b:vdw "B"{instruct="x"}   # keep me\ngraph g{start->b 1.0\nb->b 1.0 steps=2..3}\n')
    assert main(["fmt", "--check", str(ugly)]) == 1
    assert "would reformat" in capsys.readouterr().err
    assert main(["fmt", str(ugly)]) == 0
    assert main(["fmt", "--check", str(ugly)]) == 0
    assert ugly.read_text() == ('molspec 1\n\nbond b : vdw "B" { instruct = "x" }  # keep me\n\ngraph g {\n'
                                '  start -> b 1.0\n  b     -> b 1.0\n  steps = 2..3\n}\n')


def test_fmt_check_passes_on_examples() -> None:
    assert main(["fmt", "--check", *map(str, EXAMPLES)]) == 0


def test_fmt_of_a_broken_file_exits_1_and_leaves_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mol"
    shutil.copy(DIAG / "syntax-edge-commas.mol", bad)
    before = bad.read_text()
    assert main(["fmt", str(bad)]) == 1
    assert "error[MOL008]" in capsys.readouterr().err
    assert bad.read_text() == before


# ---------------------------------------------------------------- plan

def test_plan_json_is_one_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(ROOT / "examples" / "quickstart.mol"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == 8 and 3 <= stats["steps"]["min"] <= stats["steps"]["max"] <= 5
    assert set(stats["bond_shares"]) <= {"explore", "deep", "reflect", "normal"}
    assert stats["engine_calls"] == stats["steps"]["total"] + 8


def test_plan_overrides_samples_and_seed(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(FIX / "end-weights.mol")
    main(["plan", spec, "--json", "--samples", "500", "--seed", "3"])
    a = json.loads(capsys.readouterr().out)
    main(["plan", spec, "--json", "--samples", "500", "--seed", "4"])
    b = json.loads(capsys.readouterr().out)
    assert a["samples"] == b["samples"] == 500 and (a["seed"], b["seed"]) == (3, 4)
    assert a["steps"] != b["steps"] or a["bond_shares"] != b["bond_shares"]


def test_plan_human_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(ROOT / "examples" / "isomers.mol")]) == 0
    out = capsys.readouterr().out
    assert "split train" in out and "split alt" in out and "stationary (qwq)" in out


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_plan_out_writes_the_walks(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / f"walks{suffix}"
    assert main(["plan", str(FIX / "two-splits.mol"), "--out", str(out)]) == 0
    rows = (pq.read_table(out).to_pylist() if suffix == ".parquet"
            else [json.loads(line) for line in out.read_text().splitlines()])
    assert len(rows) == 50
    assert rows[0]["id"] == "train-000000" and rows[-1]["id"] == "alt-000049"
    assert all(len(r["bonds"]) == r["n_steps"] and 4 <= r["n_steps"] <= 8 for r in rows)
    assert not list(out.parent.glob(".*tmp"))


def test_plan_out_rejects_other_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(FIX / "two-splits.mol"), "--out", str(tmp_path / "walks.csv")]) == 1
    assert "MOL014" in capsys.readouterr().err


def test_plan_of_a_library_file_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(ROOT / "examples" / "bonds" / "standard.mol")]) == 1
    assert "error[MOL603]" in capsys.readouterr().err


def test_plan_of_a_bad_spec_exits_1(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DIAG)
    assert main(["plan", "row-sum-not-one.mol"]) == 1
    assert "error[MOL201]" in capsys.readouterr().err


# ---------------------------------------------------------------- usage and unreadable files

@pytest.mark.parametrize("args", [[], ["frobnicate"], ["check"], ["plan", "x.mol", "--samples", "0"],
                                  ["plan", "x.mol", "--samples", "many"], ["fmt", "--bogus", "x.mol"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, (args, result.stderr)
    assert "Traceback" not in result.stderr and "usage:" in result.stderr


@pytest.mark.parametrize("command", ["check", "plan", "fmt"])
def test_unreadable_files_exit_1(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    for target in (tmp_path / "missing.mol", tmp_path):
        assert main([command, str(target)]) == 1
        err = capsys.readouterr().err
        assert "error[MOL013]" in err and "Traceback" not in err


def test_unreadable_file_in_a_list_still_checks_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "nope.mol", str(ROOT / "examples" / "quickstart.mol")]) == 1
    err = capsys.readouterr().err
    assert "no such file: nope.mol" in err and "quickstart.mol: ok" in err
