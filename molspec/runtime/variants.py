"""A variant build: every selected variant of a spec built as an ordinary build under one group directory.

    out/<spec>/.molspec/      the group's lock, owned.json, group.json (its mark) and cache.jsonl (the step cache)
    out/<spec>/<variant>/     an ordinary build directory per variant (own journal, resume, manifest, card)
    out/<spec>/variants.json  VariantsManifest, written after the builds
    out/<spec>/README.md      the group card (written by the caller's `on_group_done`)

The variants share one step cache, so a step that two variants send the same prompt with the same settings
is generated once, and they share engines: one engine per distinct (engine, model, options, seed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from molspec.engines import Engine, create
from molspec.plan.pairing import pairing, same_walks
from molspec.records import (
    MANIFEST,
    VARIANTS_MANIFEST,
    CacheInfo,
    ManifestError,
    VariantInfo,
    read_manifest,
)
from molspec.runtime.build import BuildOptions, BuildPlan, BuildResult, Prepared, build
from molspec.runtime.cache import CACHE_FILE, StepCache
from molspec.runtime.fs import StoreError, _os_errors, write_json_atomic
from molspec.runtime.runconfig import Progress
from molspec.runtime.store import CARD, GROUP_MARK, Store
from molspec.spec import Spec
from molspec.variant_records import VariantEntry, VariantsManifest, read_variants_manifest
from molspec.version import __version__

VOLATILE = {"created", "cache", "command"}  # variants.json fields that a no-op rerun would only change


@dataclass
class VariantsResult(BuildResult):
    """The summary of a variant build: the counts summed over the variants built now, and each one's result.

    `files` names each variant's files relative to the group directory; `cache` sums their cache use."""

    spec: str = ""
    variants: dict[str, BuildResult] = field(default_factory=dict)  # in spec order
    pairing: str = ""

    @classmethod
    def of(cls, out: Path, spec: str, results: dict[str, BuildResult], cache: CacheInfo | None, pairing: str,
           wall_s: float) -> VariantsResult:
        rs = list(results.values())
        return cls(out=out, planned=sum(r.planned for r in rs), target=sum(r.target for r in rs),
                   resumed=sum(r.resumed for r in rs), done=sum(r.done for r in rs), failed=sum(r.failed for r in rs),
                   kept=sum(r.kept for r in rs), steps=sum(r.steps for r in rs), tokens=sum(r.tokens for r in rs),
                   wall_s=wall_s, accuracy=None, generate_s=sum(r.generate_s for r in rs),
                   rejected=sum(r.rejected for r in rs), cache=cache,
                   errors=[e for r in rs for e in r.errors][:20],
                   files={f"{n}/{split}": [f"{n}/{f}" for f in fs] for n, r in results.items()
                          for split, fs in r.files.items()},
                   spec=spec, variants=results, pairing=pairing)


class GroupStore(Store):
    """The group directory: claimed and locked like a build directory, holding no build of its own."""

    def open_group(self, fresh: bool) -> None:
        """Claim and lock the folder; refuse a folder that holds a build of a spec without variants.

        Raises:
            StoreError: not a folder molspec owns, locked, a single build's, unwritable.
        """
        try:
            with _os_errors(self.root):
                self._claim()
                self._take_lock()
                if self.state_path.exists() or self.state_path.is_symlink():
                    raise StoreError(f"{self.root} holds a build of a spec without variants; a variant build "
                                     "makes one folder per variant there: choose another --out")
                if fresh:
                    self.disown([VARIANTS_MANIFEST, *CARD])
                if not (self.meta / GROUP_MARK).is_file():
                    write_json_atomic(self.meta / GROUP_MARK, {"version": 1, "kind": "variants"})
                self.own([VARIANTS_MANIFEST, *CARD])
        except BaseException:
            self.close()
            raise


class EnginePool:
    """One engine per distinct (engine, model, options, seed), started on first need, closed at the end."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}

    def get(self, p: Prepared) -> Engine:
        key = json.dumps([p.engine, p.model, p.options, p.plan.seed], sort_keys=True, default=str)
        if key not in self._engines:
            self._engines[key] = create(p.engine, p.model, p.options, p.plan.seed)
        return self._engines[key]

    @property
    def started(self) -> int:
        return len(self._engines)

    def close(self) -> None:
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()


# builds one variant elsewhere (the Ray executor): (its plan, its options, the group's step cache file) -> result
BuildElsewhere = Callable[[BuildPlan, BuildOptions, Path], BuildResult]


def build_variants(base: Spec, plans: dict[str, BuildPlan], opts: BuildOptions, engine: Engine | None = None,
                   on_round: Callable[[Progress, int], None] | None = None,
                   on_done: Callable[[Path], None] | None = None,
                   on_group_done: Callable[[Path], None] | None = None,
                   elsewhere: BuildElsewhere | None = None) -> VariantsResult:
    """Build each variant's plan into `opts.out/<name>/` in order, then write variants.json.

    `on_done(variant_dir)` runs at the end of each variant's build (its card); `on_group_done(group_dir)` after
    variants.json, both under the locks. A given `engine` serves every variant (the caller closes it).
    `elsewhere` builds each variant instead (the Ray executor's replicas), given the group's step cache file.

    Raises:
        StoreError: the group folder or a variant's folder cannot be used.
        EngineError: an engine cannot start or dies.
    """
    started = time.perf_counter()
    group = GroupStore(opts.out)
    group.open_group(opts.fresh)
    cache: StepCache | None = None
    pool = EnginePool()
    try:
        cache_file = group.meta / CACHE_FILE
        cache = StepCache.open(cache_file) if opts.cache and elsewhere is None else None
        results: dict[str, BuildResult] = {}
        for name, bp in plans.items():
            info = VariantInfo(name=name, changes=list(bp.spec.changes), group_sha256=base.group_sha256())
            sub = replace(opts, out=opts.out / name, variant=info, variants=())
            if elsewhere is not None:
                results[name] = elsewhere(bp, sub, cache_file)
            else:
                results[name] = build(bp, sub, engine=engine, on_round=on_round, on_done=on_done, cache=cache,
                                      engine_for=None if engine is not None else pool.get)
        total = _cache_total(results, cache_file if opts.cache else None, cache)
        pairing = pairing_sentence(base)
        _write_variants_manifest(opts.out, variants_manifest(base, plans, opts, total, pairing), group)
        if on_group_done is not None:
            on_group_done(opts.out)
        return VariantsResult.of(opts.out, base.path, results, total, pairing, time.perf_counter() - started)
    finally:
        try:
            pool.close()
        finally:
            if cache is not None:
                cache.close()
            group.close()


def _cache_total(results: dict[str, BuildResult], cache_file: Path | None, cache: StepCache | None
                 ) -> CacheInfo | None:
    """The variants' cache counts summed; entries from `cache` (open here) or, after builds elsewhere, from the
    last variant that ran (it counted every replica's file when it ended), else from the files as they are."""
    if cache_file is None:
        return None
    infos = [r.cache for r in results.values() if r.cache is not None]
    if cache is not None:
        entries = cache.entries
    elif infos:
        entries = infos[-1].entries
    else:
        now = StepCache.open(cache_file)
        entries = now.entries
        now.close()
    return CacheInfo(hits=sum(i.hits for i in infos), misses=sum(i.misses for i in infos), entries=entries)


def variants_manifest(base: Spec, plans: dict[str, BuildPlan], opts: BuildOptions, cache: CacheInfo | None,
                      pairing: str) -> VariantsManifest:
    """variants.json: every variant of the spec whose folder holds a finished build of it (built now or before)."""
    assert base.dataset is not None
    first = next(iter(plans.values()))
    entries = [VariantEntry(name=name, title=v.variant_title, path=name, spec_sha256=v.sha256(),
                            changes=list(v.changes), same_walks=same_walks(base, v))
               for name, v in base.variants.items() if _built(opts.out / name, v)]
    return VariantsManifest(
        molspec_version=__version__, spec=Path(base.path).name, group_sha256=base.group_sha256(),
        dataset=base.dataset.name, seed=first.plan.seed, samples=first.plan.samples, pairing=pairing,
        variants=entries, cache=cache, command=opts.command,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _write_variants_manifest(out: Path, new: VariantsManifest, group: GroupStore) -> None:
    """Write variants.json, unless a rerun that generated nothing would only change its time stamp (a second
    push of an unchanged group then finds nothing new)."""
    try:
        old = read_variants_manifest(out)
    except ManifestError:
        old = None
    idle = new.cache is None or new.cache.hits + new.cache.misses == 0
    same = old is not None and old.model_dump(exclude=VOLATILE) == new.model_dump(exclude=VOLATILE)
    if idle and same:
        return
    group.own([VARIANTS_MANIFEST])
    write_json_atomic(out / VARIANTS_MANIFEST, new.model_dump(mode="json"))


def _built(folder: Path, variant: Spec) -> bool:
    """The folder holds a finished build of exactly this variant."""
    if not (folder / MANIFEST).is_file():
        return False
    try:
        return read_manifest(folder).spec.sha256 == variant.sha256()
    except Exception:  # noqa: BLE001  (an unreadable manifest: not a finished build of it)
        return False


def pairing_sentence(base: Spec) -> str:
    """One sentence: what is the same across the variants (questions and seeds; walks where no graph changed)."""
    classes = pairing({"": base, **base.variants})  # "" is no variant's name: the base spec is the reference
    unpaired = list(classes.unpaired)
    same = list(classes.same_walks[""])
    own = [n for n in base.variants if n not in unpaired and n not in same]
    text = "Sample i has the same split, question and per-sample seed in every variant"
    if unpaired:
        return text.replace("every variant", "every variant but " + _join(unpaired)) + "."
    if not own:
        return text + ", and the same walk: the variants change only text or sampling."
    if not same:
        return text + "; each variant walks its own graph with the same random draws."
    verb = "walks its own graph" if len(own) == 1 else "walk their own graphs"
    return (f"{text}; {_join(same)} also walk the same bonds in the same order, while {_join(own)} {verb} "
            "with the same random draws.")


def _join(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
