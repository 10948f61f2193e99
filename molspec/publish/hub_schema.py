"""Schema safety of a push: never replace a remote split with rows of another shape.

A split's columns are compared twice before anything is written: the parquet schema of its first shard
(only the remote footer is read), and the features the dataset card declares (front matter read with
huggingface_hub's `metadata_load`, as the Hub reads it).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from huggingface_hub import HfApi, HfFileSystem, metadata_load

from molspec.publish.hub_net import PushError

SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}(-[0-9a-f]{8})?\.parquet$")  # optional content digest
Columns = dict[str, str]  # column name -> type (arrow type string or card feature JSON)


def _split_of(path: str) -> str | None:
    """The split a shard belongs to: data/train-00000-of-00001.parquet -> train (data/cfg/x-... -> cfg/x), and
    a variant's shard no_reflect/data/train-... -> no_reflect:train (a variant build's config)."""
    variant = ""
    if not path.startswith("data/"):
        variant, _, path = path.partition("/")
        if not path.startswith("data/"):
            return None
    folder, _, name = path[len("data/") :].rpartition("/")
    match = SHARD.match(name)
    return None if match is None else (f"{variant}:" if variant else "") + (f"{folder}/" if folder else "") + \
        match["split"]


def _first_shards(paths: Iterable[str]) -> dict[str, str]:
    shards: dict[str, str] = {}
    for path in sorted(paths):
        split = _split_of(path)
        if split is not None:
            shards.setdefault(split, path)
    return shards


@dataclass(frozen=True, slots=True)
class Change:
    """What a push is about to change, as the schema check needs it.

    Attributes:
        repo: the dataset repo id.
        build_dir: the build being pushed (named in the error).
        local: repo path -> local file, for every file of the build.
        remote_head: the remote commit the change applies to.
        remote_files: paths in the remote repo at `remote_head`.
        remote_card: the remote card's metadata (front matter).
        touched: repo paths the commit would add, replace or delete.
    """

    repo: str
    build_dir: Path
    local: Mapping[str, Path]
    remote_head: str | None
    remote_files: tuple[str, ...]
    remote_card: dict[str, Any]
    touched: tuple[str, ...]


def check_schema(api: HfApi, change: Change) -> None:
    """Refuse to replace a remote split with one whose columns differ (parquet schema or card features).

    Raises:
        PushError: a touched split or config would change its columns; nothing was pushed.
    """
    touched = {_split_of(p) for p in change.touched}
    local_shards, remote_shards = _first_shards(change.local), _first_shards(change.remote_files)
    fs = HfFileSystem(endpoint=api.endpoint, token=api.token, skip_instance_cache=True)
    differ: dict[str, tuple[Columns, Columns]] = {}
    for split in sorted(s for s in touched if s in local_shards and s in remote_shards):
        mine = _columns(pq.read_schema(change.local[local_shards[split]]))
        # Only the footer is read (ranged requests), not the whole shard.
        with fs.open(f"datasets/{change.repo}@{change.remote_head}/{remote_shards[split]}", "rb") as handle:
            theirs = _columns(pq.ParquetFile(handle).schema_arrow)
        if mine != theirs:
            differ[split] = (theirs, mine)
    if differ:
        raise _schema_error(change, "split", "parquet", differ)
    readme = change.local.get("README.md")
    _check_card(change, front_matter(readme) if readme is not None else {})


def _columns(schema: pa.Schema) -> Columns:
    return {field.name: str(field.type) for field in schema}


def card_features(card: dict[str, Any]) -> dict[str, Columns]:
    """config name -> {column: feature JSON} from a card's `dataset_info`."""
    infos = card.get("dataset_info") or []
    out = {}
    for info in infos if isinstance(infos, list) else [infos]:
        if isinstance(info, dict) and isinstance(info.get("features"), list):
            out[info.get("config_name", "default")] = {
                str(f.get("name")): json.dumps({k: v for k, v in f.items() if k != "name"}, sort_keys=True)
                for f in info["features"]
                if isinstance(f, dict)
            }
    return out


def front_matter(readme: Path) -> dict[str, Any]:
    """The card's metadata, read as the Hub reads it (`metadata_load`).

    Raises:
        PushError: the front matter is not valid YAML, or not a mapping.
    """
    try:
        data = metadata_load(readme)
    except Exception as err:  # yaml's errors, ValueError for a non-mapping, UnicodeDecodeError: all unreadable
        raise PushError(
            f"{readme} has front matter that is not a YAML mapping ({type(err).__name__}: {err}); fix it, or "
            "delete the file so that the next push writes the card again."
        ) from None
    return data or {}


def _check_card(change: Change, card: dict[str, Any]) -> None:
    mine, theirs = card_features(card), card_features(change.remote_card)
    differ = {c: (theirs[c], mine[c]) for c in sorted(set(mine) & set(theirs)) if mine[c] != theirs[c]}
    if differ:
        raise _schema_error(change, "config", "dataset card", differ)


def _describe(theirs: Columns, mine: Columns) -> list[str]:
    added = sorted(set(mine) - set(theirs))
    removed = sorted(set(theirs) - set(mine))
    changed = sorted(c for c in set(mine) & set(theirs) if mine[c] != theirs[c])
    parts = [
        f"new columns {', '.join(added)}" if added else "",
        f"missing columns {', '.join(removed)}" if removed else "",
        f"changed types of {', '.join(changed)}" if changed else "",
    ]
    return [p for p in parts if p] or ["the same columns in another order"]


def _schema_error(change: Change, kind: str, source: str, differ: dict[str, tuple[Columns, Columns]]) -> PushError:
    names = ", ".join(f"'{name}'" for name in differ)
    changes = "; ".join(dict.fromkeys(part for pair in differ.values() for part in _describe(*pair)))
    return PushError(
        f"refusing to push: {kind} {names} on {change.repo} has different {source} features than "
        f"{change.build_dir} ({changes}). Replacing a split with differently shaped rows breaks "
        "`datasets.load_dataset` for everyone reading the repo, so nothing was pushed. Publish this build "
        f"to a new repo (`molspec push {shlex.quote(str(change.build_dir))} --repo {change.repo}-v2`) "
        "or under a new config/split name in the spec (`output { hub = ... }`), or delete the old split on "
        "the Hub first."
    )
