"""Reading a build directory: its manifest and its dataset rows, as the typed records of `molspec.records`.

    build_dir ──open_build──▶ Manifest ──read_rows──▶ list[Row]   (card, analyze, compare)

Errors are MOL701 diagnostics: a folder without a readable molspec.json, or a shard that is missing or damaged.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import ValidationError

from molspec.diagnostics import Diagnostic, Label, MolspecError, Span
from molspec.records import Manifest, ManifestError, Row, read_manifest


def open_build(build_dir: Path) -> Manifest:
    """The build's manifest.

    Raises:
        MolspecError: MOL701, the folder has no readable molspec.json.
    """
    try:
        return read_manifest(Path(build_dir))
    except ManifestError as err:
        raise build_error(str(build_dir), "not a molspec build directory (no readable molspec.json)",
                          err.message) from None


def read_rows(build_dir: Path, manifest: Manifest, limit: int | None = None) -> list[Row]:
    """The dataset rows of a build, split by split in the manifest's order, each split in sample order.

    Args:
        limit: at most about this many rows, taken from the start of every split in proportion to its
            size (walks are independent draws, so a split's first rows are a fair sample of it).

    Raises:
        MolspecError: MOL701, a shard the manifest lists is missing, damaged or not of this schema.
    """
    sizes = {split: _count(Path(build_dir), paths) for split, paths in manifest.files.items()}
    total = sum(sizes.values())
    rows: list[Row] = []
    for split, paths in manifest.files.items():
        want = sizes[split] if limit is None or total <= limit else max(1, math.ceil(limit * sizes[split] / total))
        rows += sorted(_read_split(Path(build_dir), paths, want), key=lambda r: r.sample_index)
    return rows


def bond_kinds(build_dir: Path, manifest: Manifest) -> dict[str, str]:
    """Bond name -> kind (covalent, hydrogen, vdw, plain): the manifest's record, else (a build made before
    molspec recorded it) the build's own copy of its spec; {} when neither can be read."""
    if manifest.bonds:
        return dict(manifest.bonds)
    from molspec.check import check_program
    from molspec.lang.imports import load_program

    try:
        spec, _ = check_program(load_program(Path(build_dir) / manifest.spec.main))
    except (MolspecError, OSError):
        return {}
    return {name: bond.kind for name, bond in spec.bonds.items()} if spec is not None else {}


def _count(build_dir: Path, paths: list[str]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return sum(int(pq.read_metadata(build_dir / p).num_rows) for p in paths)
    except (OSError, pa.ArrowException) as err:
        raise _shard_error(build_dir, err) from None


def _read_split(build_dir: Path, paths: list[str], want: int) -> list[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[Row] = []
    for rel in paths:
        if len(rows) >= want:
            break
        try:
            table = pq.read_table(build_dir / rel).slice(0, want - len(rows))
            rows += [Row.model_validate(d) for d in table.to_pylist()]
        except (OSError, pa.ArrowException, ValidationError) as err:
            raise _shard_error(build_dir / rel, err) from None
    return rows


def _shard_error(where: Path, err: Exception) -> MolspecError:
    first = (str(err).splitlines() or [type(err).__name__])[0]
    return build_error(str(where), f"cannot read the build's rows: {first}",
                       "the build directory is damaged; run the same `molspec build` again to rewrite it")


def build_error(where: str, message: str, help_: str) -> MolspecError:
    """A MOL701 diagnostic about a build directory."""
    return MolspecError([Diagnostic("MOL701", message, Label(Span(where, 0, 0, 1, 1)), help=help_)])
