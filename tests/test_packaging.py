"""The grammar ships inside the wheel, and an installed molspec parses specs from it (not from the repo)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_carries_the_grammar_and_parses_from_an_install(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("molspec-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "molspec/grammars/mol.lark" in names and "molspec/py.typed" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import os, molspec, pathlib; assert pathlib.Path(molspec.__file__).is_relative_to(os.environ['SITE']); "
            "from molspec.lang.build import parse_file; print(len(parse_file('molspec 1\\nuse \"x.mol\"\\n').items))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "SITE": str(site), "PATH": ""},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
