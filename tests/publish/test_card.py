"""The dataset card and structure picture that `molspec build` writes (molspec.publish.card, structure.plots)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import datasets
import jinja2
import jinja2.meta
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Features
from huggingface_hub import DatasetCard
from huggingface_hub.repocard import metadata_load

import molspec
from molspec.engines.base import Completion, Request
from molspec.engines.echo import ANSWER_BOND, EchoEngine
from molspec.pipeline import build
from molspec.publish import hub
from molspec.publish.card import TEMPLATE, context, render_card, size_category, write_card
from molspec.publish.card_structure import card_structure, structure_png
from molspec.records import read_manifest
from molspec.runtime.build import BuildOptions
from molspec.structure.rows import read_rows
from tests.publish.echo_spec import BONDS, REPO, write_spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _build(folder: Path, **spec: Any) -> Path:
    path = write_spec(folder / "spec", **spec)
    out = folder / "out"
    build(molspec.load(path), BuildOptions(out=out, command=f"molspec build {path} --out {out}"))
    return out


def _front(text: str) -> dict[str, Any]:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "the card starts with YAML front matter"
    data = yaml.safe_load(match.group(1))
    assert isinstance(data, dict)
    return data


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("card"))


def test_build_writes_card_and_picture(built: Path) -> None:
    assert (built / "README.md").is_file()
    assert (built / "structure.png").read_bytes().startswith(PNG_MAGIC)
    assert (built / "README.md").read_text() == render_card(built)


def _shard(built: Path, split: str) -> str:
    """The split's one parquet file, as the build named it (content-addressed)."""
    files = json.loads((built / "molspec.json").read_text())["files"][split]
    assert len(files) == 1 and files[0].startswith(f"data/{split}-00000-of-00001-")
    return str(files[0])


def test_front_matter_is_valid_hub_metadata(built: Path) -> None:
    text = (built / "README.md").read_text()
    meta = _front(text)
    assert meta["license"] == "mit" and meta["language"] == ["en"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["tags"] == ["reasoning", "long-cot", "mole-syn", "synthetic", "molspec"]
    assert meta["size_categories"] == ["n<1K"] and meta["pretty_name"] == REPO
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": _shard(built, "train")},
        {"split": "test", "path": _shard(built, "test")}]}]
    # What the Hub client reads back.
    card = DatasetCard.load(built / "README.md")
    assert card.data.license == "mit" and card.data.configs == meta["configs"]
    assert metadata_load(built / "README.md") == meta
    # The card's features are the parquet schema as `datasets` writes it, and what push's schema check reads.
    schema = pq.read_schema(built / _shard(built, "train"))
    assert meta["dataset_info"]["features"] == Features.from_arrow_schema(schema)._to_yaml_list()
    local = {"README.md": hub.LocalFile("README.md", built / "README.md", "", "")}
    assert set(hub._card_features(hub._local_card(local))["default"]) == set(schema.names)


def test_configs_load_with_datasets(built: Path) -> None:
    loaded = datasets.load_dataset(str(built))
    assert set(loaded) == {"train", "test"}
    for split in loaded:
        rows = pq.read_table(built / _shard(built, split)).to_pylist()
        assert list(loaded[split]) == rows
    assert loaded["train"].features == Features.from_arrow_schema(pq.read_schema(built / _shard(built, "train")))


def test_card_embeds_the_spec_and_its_provenance(built: Path) -> None:
    text = (built / "README.md").read_text()
    manifest = json.loads((built / "molspec.json").read_text())
    spec_text = (built / manifest["spec"]["main"]).read_text()
    assert f"```mol\n{spec_text.rstrip()}\n```" in text
    assert f"```mol\n{BONDS.rstrip()}\n```" in text  # the import, in full
    assert manifest["spec"]["sha256"] in text
    assert manifest["command"] in text and "molspec build" in text
    assert f'load_dataset("{REPO}")' in text and "SFTTrainer" in text
    assert "arXiv:2601.06002" in text and "Mole-Syn" in text
    assert f"molspec=={manifest['molspec_version']}" in text and manifest["created"] in text
    assert "![Planned vs labelled transitions, asked vs labelled bonds and bond shares](structure.png)" in text
    assert "| from \\ to | explore |" in text  # transition tables
    # Planned vs realised bond shares, per-bond token stats with the bond's max_tokens (deep: 60, others: 40).
    assert re.search(r"\| deep +\| +\d+\.\d% \| +\d+\.\d% \|", text)
    assert re.search(r"\| deep +(\| +[\d.,]+ +){5}\| +0 \| +60 \|", text)
    assert re.search(r"\| explore +(\| +[\d.,]+ +){5}\| +0 \| +40 \|", text)
    assert "Accuracy against gold: **" in text and "of 14 graded answers" in text
    assert "0 failed" in text and "echo" in text


def test_card_reads_as_plain_text(built: Path) -> None:
    body = (built / "README.md").read_text().split("\n---\n", 1)[1]
    assert not re.search(r"<(div|img|table|br|details)\b", body)
    tables: list[list[str]] = []
    for line in body.splitlines():
        if line.startswith("|"):
            if not tables or not tables[-1]:
                tables.append([])
            tables[-1].append(line)
        elif tables and tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) >= 6
    for table in tables:  # every row of a table is padded to the same width, so columns line up
        assert len({len(row) for row in table}) == 1, table


def test_png_is_deterministic_and_small(built: Path) -> None:
    m = read_manifest(built)
    first = structure_png(card_structure(built, m), m.dataset.name)
    second = structure_png(card_structure(built, m), m.dataset.name)
    assert first == second == (built / "structure.png").read_bytes()
    assert first.startswith(PNG_MAGIC) and len(first) < 250_000
    assert b"Matplotlib" not in first and b"Software" not in first


def test_card_names_the_target_repo(built: Path) -> None:
    text = render_card(built, "someone/else")
    assert 'load_dataset("someone/else")' in text and f'load_dataset("{REPO}")' not in text


def test_dirty_spec_is_flagged(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    spec = write_spec(folder / "spec")
    _git(folder, "init", "-q")
    _git(folder, "add", ".")
    _git(folder, "commit", "-qm", "spec")
    commit = _git(folder, "rev-parse", "HEAD")
    clean = tmp_path / "clean"
    build(molspec.load(spec), BuildOptions(out=clean))
    text = (clean / "README.md").read_text()
    assert f"git checkout {commit}" in text and "uncommitted" not in text
    spec.write_text(spec.read_text().replace("temperature = 0.5", "temperature = 0.6"))
    dirty = tmp_path / "dirty"
    build(molspec.load(spec), BuildOptions(out=dirty))
    text = (dirty / "README.md").read_text()
    assert commit in text and "uncommitted changes" in text and "**Warning:**" in text
    assert f"git checkout {commit}" not in text  # that commit would not rebuild this dataset


def test_no_secret_reaches_the_card(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    for name in ("data", "spec"):
        subprocess.run(["cp", "-r", str(built / name), str(out / name)], check=True)
    manifest = json.loads((built / "molspec.json").read_text())
    manifest["engine"]["options"] = {"api_key": "sk-live-abcdefghijklmnop", "api_key_env": "MY_KEY",
                                     "base_url": "http://user:pa55word@10.0.0.1:8000/v1",
                                     "extra_headers": {"Authorization": "Bearer s3cr3t"},
                                     "hf_token": "plain-s3cret", "max_num_batched_tokens": 8192}
    manifest["failures"] = [{"sample_index": 3, "error": "401: bad token hf_abcdefghijklmnopqrstu"}]
    manifest["summary"]["failed"] = 1
    (out / "molspec.json").write_text(json.dumps(manifest))
    text = render_card(out)
    for secret in ("sk-live-abcdefghijklmnop", "pa55word", "s3cr3t", "hf_abcdefghijklmnopqrstu"):
        assert secret not in text
    assert "`max_num_batched_tokens` | `8192`" in text.replace("  ", "")
    assert "MY_KEY" in text and "10.0.0.1:8000" in text and "sample 3: 401: bad token ***" in text


@pytest.mark.parametrize(("rows", "label"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"),
                                             (250_000, "100K<n<1M"), (2_000_000_000, "n>1B")])
def test_size_category(rows: int, label: str) -> None:
    assert size_category(rows) == label


# --------------------------------------------------------------------------------------------------
# The structure of the text: the card follows the labels of what was written, not only the plan
# --------------------------------------------------------------------------------------------------


class StyledEcho(EchoEngine):
    """The echo engine with every thinking step written in one style (the answers are echo's)."""

    def __init__(self, style: str) -> None:
        super().__init__(None, {}, 0)
        self.style = style

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        done = super().generate(requests)
        return [c if r.meta.get("bond") == ANSWER_BOND else
                dataclasses.replace(c, text=self.style.format(step=r.meta.get("step")), finish_reason="stop")
                for r, c in zip(requests, done, strict=True)]


REFLECTING = "Wait, let me double-check step {step}. Checking it again: 3 + 3 = 6, so that step holds."
EXPLORING = "Alternatively, let us try a completely different approach for part {step}: guess values and test them."


def _styled_build(folder: Path, style: str) -> Path:
    spec = write_spec(folder / "spec")
    out = folder / "out"
    build(molspec.load(spec), BuildOptions(out=out), engine=StyledEcho(style))
    return out


def _section(text: str, title: str) -> str:
    return text.split(f"### {title}", 1)[1].split("\n### ", 1)[0]


def test_card_plot_follows_the_text_not_the_plan(tmp_path: Path) -> None:
    a, b = _styled_build(tmp_path / "a", REFLECTING), _styled_build(tmp_path / "b", EXPLORING)
    ma, mb = read_manifest(a), read_manifest(b)
    # The same plan and the same walks...
    assert ma.planned == mb.planned and ma.graphs == mb.graphs
    rows_a, rows_b = read_rows(a, ma), read_rows(b, mb)
    assert [r.bonds for r in rows_a] == [r.bonds for r in rows_b]
    # ...but other text, so other labels: the picture and the labelled numbers differ, the planned ones do not.
    ca, cb = card_structure(a, ma), card_structure(b, mb)
    assert ca.text.asked == cb.text.asked and ca.text.labelled != cb.text.labelled
    assert (a / "structure.png").read_bytes() != (b / "structure.png").read_bytes()
    card_a, card_b = (a / "README.md").read_text(), (b / "README.md").read_text()
    assert _section(card_a, "Transitions, planned") == _section(card_b, "Transitions, planned")
    for title in ("Transitions, labelled", "Bond fidelity: asked vs labelled", "Bond shares"):
        assert _section(card_a, title) != _section(card_b, title), title
    # The numbers are the rows' own labels, which the build's fidelity gate stored.
    labels = [tuple(s.label for s in r.steps) for r in rows_a]
    assert list(ca.text.labelled) == labels
    assert ma.fidelity is not None and ma.fidelity.overall is not None
    assert ca.text.fidelity().overall == pytest.approx(ma.fidelity.overall, abs=1e-4)
    assert f"**{100 * ma.fidelity.overall:.1f}%**" in card_a


def test_card_is_written_atomically_and_only_when_it_changes(built: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "copy"
    shutil.copytree(built, out)
    files = [out / "README.md", out / "structure.png"]
    before = [(f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes()) for f in files]
    write_card(out)  # nothing changed: neither file is touched
    assert [(f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes()) for f in files] == before
    # A card that must change, interrupted at the rename: the old files stay whole, no partial file is left.
    manifest = json.loads((out / "molspec.json").read_text())
    manifest["dataset"]["description"] = "Another description."
    (out / "molspec.json").write_text(json.dumps(manifest))

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)  # the one atomic write renames with os.replace
    with pytest.raises(KeyboardInterrupt):
        write_card(out)
    assert [f.read_bytes() for f in files] == [b for _, _, b in before]
    monkeypatch.undo()
    write_card(out)
    assert "> Another description." in (out / "README.md").read_text()
    assert (out / "structure.png").read_bytes() == before[1][2]  # same rows, same labels: the picture is unchanged
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_template_reads_only_values_the_card_gives(built: Path) -> None:
    source = resources.files("molspec.publish").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    wanted = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(source))
    m = read_manifest(built)
    shards = {split: [(p, 1) for p in paths] for split, paths in m.files.items()}
    given = set(context(built, m, card_structure(built, m), shards, REPO)) | {"card_data"}
    assert wanted <= given, wanted - given


def test_card_says_when_steps_open_with_the_specs_words(tmp_path: Path, built: Path) -> None:
    from tests.runtime.test_leads import leads_spec

    out = tmp_path / "out"
    build(molspec.load(leads_spec(tmp_path / "spec")), BuildOptions(out=out))
    steps = sum(len(r.steps) for r in read_rows(out, read_manifest(out)))
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"{steps} of the {steps} labelled steps open with words the spec wrote" in card
    assert "words the spec wrote" not in (built / "README.md").read_text(encoding="utf-8")
