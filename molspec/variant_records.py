"""The records of a variant build's group folder (docs/build-directory.md): `variants.json` and its entries.

    runtime.variants ──VariantsManifest──▶ variants.json ──▶ group card, push, compare (structure.group)

Kept beside `molspec.records` (whose `Record`, `CacheInfo` and `ManifestError` they use); like it, this module
imports nothing from molspec's stages.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from molspec.records import VARIANTS_MANIFEST, CacheInfo, ManifestError, Record


class VariantEntry(Record):
    name: str = Field(description="the variant's name; its build directory and dataset config")
    title: str | None = Field(default=None, description="its title: `variant NAME \"title\" { }`")
    path: str = Field(description="its build directory, relative to the group directory")
    spec_sha256: str = Field(description="the variant's whole-spec hash (its build identity)")
    changes: list[str] = Field(description="what it changes in the base spec")
    same_walks: bool = Field(description="its walks equal the base spec's (it changes only text or sampling)")


class VariantsManifest(Record):
    """variants.json: a variant build, written after every variant it built has finished."""

    molspec_version: str
    spec: str = Field(description="the spec file's name")
    group_sha256: str = Field(description="hash of the base spec and every variant (names the Hub tag)")
    dataset: str = Field(description="the dataset's Hub name from the spec")
    seed: int
    samples: int = Field(description="samples per variant (the same in all: they are paired)")
    pairing: str = Field(description="one sentence: what is the same across the variants")
    variants: list[VariantEntry]
    cache: CacheInfo | None = None
    command: str
    created: str


def read_variants_manifest(group_dir: Path) -> VariantsManifest | None:
    """The group's variants.json, or None when `group_dir` is not a variant build.

    Raises:
        ManifestError: it is there but unreadable.
    """
    path = Path(group_dir) / VARIANTS_MANIFEST
    if not path.is_file():
        return None
    try:
        return VariantsManifest.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ManifestError(f"cannot read {path}: {first}. Rebuild the variants to regenerate it.") from None
