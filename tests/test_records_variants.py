"""read_manifest on a variant build's group folder says where the builds are instead of "missing"."""

from __future__ import annotations

from pathlib import Path

import pytest

from molspec.records import MANIFEST, VARIANTS_MANIFEST, ManifestError, read_manifest


def test_a_group_folder_names_its_variants(tmp_path: Path) -> None:
    (tmp_path / VARIANTS_MANIFEST).write_text("{}")
    for name in ("qwq", "r1"):
        (tmp_path / name).mkdir()
        (tmp_path / name / MANIFEST).write_text("{}")
    with pytest.raises(ManifestError) as err:
        read_manifest(tmp_path)
    assert "is a variant build" in err.value.message
    assert "(qwq, r1)" in err.value.message and str(tmp_path / "qwq") in err.value.message


def test_a_plain_folder_is_still_missing_its_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="molspec.json is missing"):
        read_manifest(tmp_path)
