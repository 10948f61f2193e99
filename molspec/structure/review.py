"""`molspec review`: a blind sheet of a build's steps for a person to label, and the score of the filled sheet.

    build ──sample_sheet──▶ list[SheetLine] ──write_sheet──▶ DIR-review.csv   (a person labels it, blind)
    filled sheet ──read_sheet──▶ list[Entry] ──join──▶ list[Judged] ──score──▶ ReviewScore (text or --json)

Why a person: the fidelity gate keeps the attempts its labeler reads as the asked bond, and a machine judge
trained like that labeler tends to agree with those choices (BENCHMARKS.md, "Hotter retries, and a human
judge"). A person who reads the steps without their asked bonds is the one judge the gate cannot select for.
Errors: MOL701 (not a build, or a variant group), MOL731 (the sheet does not match the build), MOL732 (an
unknown label); the sheet's own problems are review_sheet's MOL730 and MOL733.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from molspec.diagnostics import Diagnostic, Label, MolspecError, did_you_mean
from molspec.records import Manifest, Row
from molspec.structure.fidelity import expected_labels
from molspec.structure.label import BONDS, get_labeler
from molspec.structure.report import Confusion, Report
from molspec.structure.review_sheet import Entry, SheetLine, read_sheet, step_key, text_sha1, write_sheet
from molspec.structure.rows import bond_kinds, build_error, open_build, read_rows

MACHINE_JUDGES: tuple[str, ...] = ("cue", "learned-blind")  # CPU labelers scored against the hand labels


@dataclass(frozen=True, slots=True)
class Build:
    """A build directory read for review: its manifest and every dataset row."""

    dir: Path
    manifest: Manifest
    rows: list[Row]


@dataclass(frozen=True, slots=True)
class SheetInfo:
    """What `write_review` wrote: `walks` of the build's `available` walks, `steps` rows."""

    path: Path
    walks: int
    steps: int
    available: int


@dataclass(frozen=True, slots=True)
class Judged:
    """One step a person labelled: its row, its 0-based index in the walk and the hand label."""

    row: Row
    index: int
    hand: str

    @property
    def step_label(self) -> str | None:
        return self.row.steps[self.index].label

    @property
    def asked(self) -> str:
        return self.row.steps[self.index].bond


class BondHits(Report):
    """One asked bond: of `steps` labelled by hand, `hits` got a label of the bond's kind."""

    bond: str
    expects: str = Field(description="the hand label that counts as a hit (the label of the bond's kind)")
    hits: int
    steps: int


class Agreement(Report):
    """How often a machine judge gives a step the same label as the person."""

    judge: str = Field(description="`build`: the labels the build's gate stored; else a CPU labeler's name")
    steps: int = Field(description="labelled steps the judge has a label for")
    agree: int
    share: float | None
    unavailable: str | None = Field(default=None, description="why the judge could not label (its weights ...)")


class ReviewScore(Report):
    """The score of a filled review sheet against its build."""

    build: str
    sheet: str
    steps: int = Field(description="rows of the sheet")
    labelled: int
    unlabelled: int = Field(description="rows left empty: skipped")
    fidelity: float | None = Field(description="share of labelled steps whose hand label has their bond's kind")
    per_bond: list[BondHits]
    confusion: Confusion = Field(description="rows: the asked bond; columns: the hand label")
    more_than_routine: int = Field(description="labelled steps whose hand label is not `normal`")
    gate_labeler: str | None = Field(description="the labeler of the build's fidelity gate, when it had one")
    agreement: list[Agreement]


def open_review_build(build_dir: Path) -> Build:
    """The build's manifest and rows.

    Raises:
        MolspecError: MOL701, not a build directory, or a variant group (the message names its variants).
    """
    from molspec.structure.group import is_group, open_group

    if is_group(build_dir):
        names = [str(v.dir) for v in open_group(build_dir).variants]
        raise build_error(str(build_dir), "a variant build holds one build per variant: review one of them",
                          f"give a variant's folder: {', '.join(names)}")
    manifest = open_build(build_dir)
    return Build(build_dir, manifest, read_rows(build_dir, manifest))


# ---------------------------------------------------------------- the sheet


def sample_sheet(rows: Sequence[Row], walks: int, seed: int) -> list[SheetLine]:
    """`walks` whole walks drawn with `seed`, in a shuffled order, one line per bond step."""
    chosen = random.Random(seed).sample(list(rows), min(walks, len(rows)))
    return [SheetLine(walk=w, step=j, key=step_key(r.sample_index, j), question=r.question if j == 1 else "",
                      text=s.text, sha1=text_sha1(s.text))
            for w, r in enumerate(chosen, 1) for j, s in enumerate(r.steps, 1)]


def write_review(build_dir: Path, walks: int, seed: int, out: Path) -> SheetInfo:
    """Write the blind sheet of `walks` walks of a build to `out` (never over an existing file).

    Raises:
        MolspecError: MOL701 (see `open_review_build`), MOL733 (`out` exists).
    """
    from molspec.structure.review_sheet import sheet_csv

    finished = [r for r in open_review_build(build_dir).rows if r.steps]
    if not finished:
        raise build_error(str(build_dir), "the build has no finished walk to review",
                          "build (or resume) it first: `molspec build SPEC --out DIR`")
    lines = sample_sheet(finished, walks, seed)
    write_sheet(out, sheet_csv(lines))
    return SheetInfo(out, len({s.walk for s in lines}), len(lines), len(finished))


# ---------------------------------------------------------------- scoring


def score_review(build_dir: Path, sheet: Path, shown: str) -> ReviewScore:
    """Score a filled sheet against its build (`shown`: the sheet's path as the user wrote it).

    Raises:
        MolspecError: MOL701, MOL730, MOL731 or MOL732; every problem of the sheet at once.
    """
    build = open_review_build(build_dir)
    entries, text = read_sheet(sheet, shown)
    judged = join(entries, build.rows, shown, text)
    labelled = [j for j in judged if j.hand]
    hits = _per_bond(_asked_order(build.manifest, labelled), expected_labels(bond_kinds(build_dir, build.manifest)),
                     labelled)
    gate = build.manifest.fidelity.labeler if build.manifest.fidelity is not None else None
    return ReviewScore(
        build=str(build_dir), sheet=shown, steps=len(judged), labelled=len(labelled),
        unlabelled=len(judged) - len(labelled),
        fidelity=_share(sum(h.hits for h in hits), len(labelled)), per_bond=hits,
        confusion=_confusion([h.bond for h in hits], labelled),
        more_than_routine=sum(j.hand != "normal" for j in labelled), gate_labeler=gate,
        agreement=[_agreement("build", labelled, [j.step_label for j in labelled]),
                   *(_machine_agreement(name, labelled) for name in MACHINE_JUDGES)])


def join(entries: Sequence[Entry], rows: Sequence[Row], shown: str, text: str) -> list[Judged]:
    """The sheet's rows joined to the build's steps by key, sha1 checked, labels validated.

    Raises:
        MolspecError: MOL731 (a key not in the build, twice on the sheet, or a step whose text changed),
            MOL732 (an unknown label); all of them, the sheet's text attached for rendering.
    """
    steps = {step_key(r.sample_index, i + 1): (r, i) for r in rows for i in range(len(r.steps))}
    seen: dict[str, Entry] = {}
    out: list[Judged] = []
    problems: list[Diagnostic] = []
    for e in entries:
        found = _check(e, steps, seen)
        if isinstance(found, Diagnostic):
            problems.append(found)
            continue
        seen[e.key.value.strip()] = e
        hand = e.label.value.strip().lower()
        if hand and hand not in BONDS:
            problems.append(_unknown_label(e))
        out.append(Judged(found[0], found[1], hand))
    if problems:
        raise MolspecError(problems, {shown: text})
    return out


def _check(e: Entry, steps: dict[str, tuple[Row, int]], seen: dict[str, Entry]) -> Diagnostic | tuple[Row, int]:
    key = e.key.value.strip()
    if key in seen:
        return Diagnostic("MOL731", f"step {key} is on the sheet twice", Label(e.key.span, "again here"),
                          secondary=(Label(seen[key].key.span, "first here"),),
                          help="keep one row per step: remove the copy")
    if key not in steps:
        return Diagnostic("MOL731", f"the build has no step {key!r}", Label(e.key.span, "not a step of the build"),
                          help="score the sheet against the build it was written from; keep the `key` column as "
                               "text (a spreadsheet may turn 12:3 into a time)")
    row, index = steps[key]
    want = text_sha1(row.steps[index].text)
    if e.sha1.value.strip().lower() != want:
        return Diagnostic("MOL731", f"step {key}'s text is not the one the sheet was written from (sha1 {want} in "
                          "the build)", Label(e.sha1.span, "the sheet's sha1"),
                          help="the build changed since: write a new sheet with `molspec review DIR`; or a "
                               "spreadsheet turned the `sha1` column into a number: keep it as text")
    return row, index


def _unknown_label(e: Entry) -> Diagnostic:
    value = e.label.value.strip()
    hint = did_you_mean(value.lower(), BONDS)
    rule = "a label is " + ", ".join(BONDS[:-1]) + f" or {BONDS[-1]} (upper or lower case), or empty to skip the step"
    return Diagnostic("MOL732", f"unknown label {value!r}", Label(e.label.span, "not a label"),
                      help=f"{hint} {rule[0].upper()}{rule[1:]}" if hint else rule)


def machine_labels(name: str, judged: Sequence[Judged]) -> list[str | None]:
    """A CPU labeler's label of each judged step, read in context: the question and the walk's steps."""
    labeler = get_labeler(name)
    walks = list({id(j.row): j.row for j in judged}.values())
    labels = labeler.label_many([(r.question, [s.text for s in r.steps]) for r in walks])
    by_row = {id(r): seq for r, seq in zip(walks, labels, strict=True)}
    return [by_row[id(j.row)][j.index] for j in judged]


def _machine_agreement(name: str, judged: Sequence[Judged]) -> Agreement:
    """A CPU labeler's agreement; a labeler that cannot load (MOL790) is reported, not fatal: the person's
    labels are the score, the machine judges only a comparison."""
    try:
        return _agreement(name, judged, machine_labels(name, judged))
    except MolspecError as err:
        return Agreement(judge=name, steps=0, agree=0, share=None, unavailable=err.diagnostics[0].message)


def _agreement(judge: str, judged: Sequence[Judged], labels: Sequence[str | None]) -> Agreement:
    pairs = [(j.hand, lab) for j, lab in zip(judged, labels, strict=True) if lab is not None]
    agree = sum(a == b for a, b in pairs)
    return Agreement(judge=judge, steps=len(pairs), agree=agree, share=_share(agree, len(pairs)))


def _asked_order(m: Manifest, judged: Sequence[Judged]) -> list[str]:
    """The asked bonds of the labelled steps, in the order of the build's graphs."""
    planned = [b for g in m.graphs.values() for b in g.bonds]
    asked = {j.asked for j in judged}
    return [b for b in dict.fromkeys([*planned, *sorted(asked)]) if b in asked]


def _per_bond(asked: Sequence[str], expected: dict[str, str], judged: Sequence[Judged]) -> list[BondHits]:
    """Hits per asked bond: a hand label of the bond's kind (`expected`; a bond absent from it expects its name)."""
    out = []
    for bond in asked:
        mine = [j.hand for j in judged if j.asked == bond]
        want = expected.get(bond, bond)
        out.append(BondHits(bond=bond, expects=want, hits=mine.count(want), steps=len(mine)))
    return out


def _confusion(asked: Sequence[str], judged: Sequence[Judged]) -> Confusion:
    counts = [[sum(j.asked == a and j.hand == h for j in judged) for h in BONDS] for a in asked]
    return Confusion(asked=list(asked), labelled=list(BONDS), counts=counts)


def _share(n: int, total: int) -> float | None:
    return round(n / total, 4) if total else None


# ---------------------------------------------------------------- text


def score_text(s: ReviewScore) -> str:
    """The score for a terminal."""
    out = [f"{s.sheet} against {s.build}: {s.labelled} of {s.steps} steps labelled by hand"
           + (f" ({s.unlabelled} left empty, skipped)" if s.unlabelled else "")]
    if not s.labelled:
        return "\n".join([*out, "nothing to score: fill the `label` column first"])
    fid = f"{s.fidelity:.3f}" if s.fidelity is not None else "-"
    out += [f"hand fidelity: {fid} ({sum(h.hits for h in s.per_bond)} of {s.labelled} steps do what their bond "
            "asks)", "per bond (hand label of the bond's kind / steps): "
            + ", ".join(f"{h.bond} {h.hits}/{h.steps}" for h in s.per_bond),
            f"steps doing more than routine work (hand label not normal): {s.more_than_routine} of {s.labelled}",
            "", "asked bond x hand label:", *_table(s.confusion), "", "agreement with the hand labels:"]
    for a in s.agreement:
        who = _judge_name(a.judge, s.gate_labeler)
        out.append(f"  {who}: " + (f"{a.share:.0%} ({a.agree} of {a.steps})" if a.share is not None
                                   else f"unavailable ({a.unavailable})" if a.unavailable else "no labels"))
    return "\n".join(out)


def _judge_name(judge: str, gate: str | None) -> str:
    if judge != "build":
        return f"the `{judge}` labeler"
    return f"the build's own labels (its gate's `{gate}` labeler)" if gate else "the build's own labels"


def _table(c: Confusion) -> list[str]:
    width = max([len(a) for a in c.asked] + [6])
    head = " " * (width + 2) + "".join(f"{h:>9}" for h in c.labelled)
    return [head, *(f"  {a:<{width}}" + "".join(f"{n:>9}" for n in row) for a, row in zip(c.asked, c.counts,
                                                                                            strict=True))]
