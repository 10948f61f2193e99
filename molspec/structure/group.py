"""A variant build read back: the group directory, its variants.json and each variant's build directory.

    GROUP/variants.json  ──open_group──▶ Group(manifest, variants: (name, dir, Manifest) in spec order)

The card, `molspec push` and `molspec compare` all read a group through this one function, so a group with
a missing or unreadable variant is refused the same way everywhere (MOL701, naming the variant).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from molspec.records import Manifest, ManifestError
from molspec.structure.rows import build_error, open_build
from molspec.variant_records import VariantEntry, VariantsManifest, read_variants_manifest


@dataclass(frozen=True, slots=True)
class GroupVariant:
    """One variant of a group: its entry in variants.json, its build directory and that build's manifest."""

    entry: VariantEntry
    dir: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass(frozen=True, slots=True)
class Group:
    """A variant build: `variants` in spec order (the first is the one the others are compared with)."""

    dir: Path
    manifest: VariantsManifest
    variants: tuple[GroupVariant, ...]

    def variant(self, name: str) -> GroupVariant:
        """The variant called `name`.

        Raises:
            MolspecError: MOL701, no such variant (the message lists the group's variants).
        """
        for v in self.variants:
            if v.name == name:
                return v
        raise build_error(str(self.dir), f"the variant build has no variant '{name}'",
                          f"its variants: {', '.join(v.name for v in self.variants)}")


def is_group(path: Path) -> bool:
    """True when `path` is the top of a variant build (it holds variants.json)."""
    from molspec.records import VARIANTS_MANIFEST

    return (Path(path) / VARIANTS_MANIFEST).is_file()


def open_group(group_dir: Path) -> Group:
    """Read a variant build and every variant's manifest.

    Raises:
        MolspecError: MOL701, no or an unreadable variants.json, a variant path outside the group, or a variant
            whose build directory has no readable molspec.json.
    """
    group_dir = Path(group_dir)
    try:
        manifest = read_variants_manifest(group_dir)
    except ManifestError as err:
        raise build_error(str(group_dir), "unreadable variants.json", err.message) from None
    if manifest is None:
        raise build_error(str(group_dir), "not a variant build (no variants.json)",
                          "build a spec with `variant` blocks (`molspec build SPEC`); its output folder holds "
                          "variants.json and one build directory per variant")
    if not manifest.variants:
        raise build_error(str(group_dir), "variants.json lists no variant", "rebuild the variants")
    variants = []
    for entry in manifest.variants:
        path = Path(entry.path)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise build_error(str(group_dir), f"variant '{entry.name}' has the path '{entry.path}' outside the group",
                              "variants.json was edited by hand; rebuild the variants to regenerate it")
        variants.append(GroupVariant(entry, group_dir / path, open_build(group_dir / path)))
    return Group(group_dir, manifest, tuple(variants))
