"""The grammar lives in the repository's top-level grammars/, ships inside the wheel as
molspec/grammars/mol.lark, and an installed molspec parses specs from it (not from the repo)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_grammar_sits_at_the_top_of_the_repository() -> None:
    assert (ROOT / "grammars" / "mol.lark").is_file()
    assert not (ROOT / "molspec" / "grammars").exists()  # one copy only


def test_the_package_list_names_every_package() -> None:
    """pyproject lists the packages by hand (to map grammars/ in); a new subpackage must be added there."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "molspec").rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | {"molspec.grammars"}
    assert config["package-dir"] == {"molspec.grammars": "grammars"}


@pytest.mark.slow
def test_wheel_carries_the_grammar_and_parses_from_an_install(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("molspec-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "molspec/grammars/mol.lark" in names and "molspec/py.typed" in names
    assert "molspec/publish/templates/card.md.j2" in names
    assert not any(n.startswith("grammars/") for n in names)  # inside the package, not beside it
    shipped = zipfile.ZipFile(wheel).read("molspec/grammars/mol.lark")
    assert shipped == (ROOT / "grammars" / "mol.lark").read_bytes()
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import os, molspec, pathlib; from importlib import resources; site = os.environ['SITE']; "
            "assert pathlib.Path(molspec.__file__).is_relative_to(site); "
            "g = resources.files('molspec') / 'grammars' / 'mol.lark'; "
            "assert g.is_file() and pathlib.Path(str(g)).is_relative_to(site); "
            "from molspec.lang.build import parse_file; print(len(parse_file('molspec 1\\nuse \"x.mol\"\\n').items))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "SITE": str(site), "PATH": ""},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
