"""`molspec push` of a variant build to the loopback Hub: one repo, one config per variant, each loadable."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import metadata_load

from molspec.cli import main
from molspec.publish import hub
from molspec.publish.hub import PushError, push
from tests.publish.conftest import HubSession
from tests.publish.variant_builds import ABLATIONS, NAMES, copy_group, make_group

REPO = "acme/ablations"
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_group(tmp_path_factory.mktemp("variants") / "ablations")


@pytest.fixture
def group(built: Path, tmp_path: Path) -> Path:
    return copy_group(built, tmp_path / "ablations")


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "BACKOFF_BASE_S", 0.01)


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["molspec", *args])
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _local_rows(variant_dir: Path) -> list[dict[str, Any]]:
    return [r for p in sorted((variant_dir / "data").glob("train-*.parquet")) for r in pq.read_table(p).to_pylist()]


def _load(name: str, revision: str | None = None) -> list[dict[str, Any]]:
    loaded = datasets.load_dataset(REPO, name, revision=revision, download_mode="force_redownload")
    assert set(loaded) == {"train"}
    return list(loaded["train"])


def _tag(group: Path) -> str:
    return "spec-" + str(json.loads((group / "variants.json").read_text())["group_sha256"])[:8]


def test_push_publishes_one_repo_with_a_config_per_variant(
        fake_hub: HubSession, group: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, stderr = _cli(monkeypatch, capsys, "push", str(group), "--repo", REPO)
    assert code == 0, stderr
    tag = _tag(group)
    assert f"{tag} -> commit" in stdout
    for name in NAMES:
        assert f'load_dataset("{REPO}", "{name}", revision="{tag}")' in stdout
    assert set(fake_hub.hub.repo(REPO).tags) == {tag}
    files = fake_hub.hub.files(REPO)
    # One card (the group's), variants.json, and each variant's own files under its folder.
    assert files["README.md"] == (group / "README.md").read_bytes()
    assert files["variants.json"] == (group / "variants.json").read_bytes()
    assert files["structure.png"] == (group / "structure.png").read_bytes()
    assert [p for p in files if p.endswith("README.md")] == ["README.md"]
    assert not any(".molspec" in p for p in files)
    for name in NAMES:
        shards = sorted(p.relative_to(group).as_posix() for p in (group / name / "data").glob("*.parquet"))
        assert shards and all(files[s] == (group / s).read_bytes() for s in shards)
        assert files[f"{name}/molspec.json"] == (group / name / "molspec.json").read_bytes()
        assert f"{name}/spec/ablations.mol" in files
    # The card names the repo it was pushed to, and its configs are the variants.
    card = files["README.md"].decode()
    assert f'load_dataset("{REPO}", "no_reflect", split="train")' in card
    meta = metadata_load(group / "README.md") or {}
    assert [c["config_name"] for c in meta["configs"]] == list(NAMES)
    # `load_dataset(repo, name)` reads each variant, from the branch and from the tag.
    loaded = {name: _load(name) for name in NAMES}
    for name in NAMES:
        assert loaded[name] == _local_rows(group / name)
    assert _load("qwq", revision=tag) == loaded["qwq"]
    # Paired: sample i has the same id and question in every config, and the variants differ where they should.
    questions = {name: [(r["id"], r["question"]) for r in rows] for name, rows in loaded.items()}
    assert all(q == questions["r1"] for q in questions.values()) and len(questions["r1"]) == 8
    walks = {name: [r["bonds"] for r in rows] for name, rows in loaded.items()}
    assert walks["terse_answer"] == walks["r1"] != walks["qwq"]
    assert not any("reflect" in w for w in walks["no_reflect"])
    # terse_answer changes only the answer turn: the same step texts, other answers.
    assert [r["steps"] for r in loaded["terse_answer"]] == [r["steps"] for r in loaded["r1"]]
    assert [r["answer"] for r in loaded["terse_answer"]] != [r["answer"] for r in loaded["r1"]]
    # Pushing the same build again writes nothing.
    commits = len(fake_hub.hub.repo(REPO).commits)
    code, stdout, _ = _cli(monkeypatch, capsys, "push", str(group), "--repo", REPO)
    assert code == 0 and "up to date" in stdout and len(fake_hub.hub.repo(REPO).commits) == commits


def test_a_variant_left_out_is_deleted_and_the_old_tag_keeps_it(
        fake_hub: HubSession, group: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(monkeypatch, capsys, "push", str(group), "--repo", REPO)[0] == 0
    first_tag = _tag(group)
    # The same group without `qwq` (as `molspec build` of a spec that no longer declares it would leave it).
    manifest = json.loads((group / "variants.json").read_text())
    manifest["variants"] = [v for v in manifest["variants"] if v["name"] != "qwq"]
    (group / "variants.json").write_text(json.dumps(manifest, indent=2))
    (group / "README.md").unlink()
    code, stdout, stderr = _cli(monkeypatch, capsys, "push", str(group), "--repo", REPO, "--revision", "v2")
    assert code == 0, stderr
    files = fake_hub.hub.files(REPO)
    assert not any(p.startswith("qwq/") for p in files)
    assert any(p.startswith("no_reflect/data/") for p in files)
    configs = (metadata_load(group / "README.md") or {})["configs"]
    assert [c["config_name"] for c in configs] == ["r1", "no_reflect", "terse_answer"]
    assert any(p.startswith("qwq/data/") for p in fake_hub.hub.files(REPO, revision=first_tag))
    assert _load("no_reflect", revision="v2") == _local_rows(group / "no_reflect")


def test_a_changed_variant_schema_is_refused(fake_hub: HubSession, group: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(monkeypatch, capsys, "push", str(group), "--repo", REPO)[0] == 0
    shard = next((group / "qwq" / "data").glob("train-*.parquet"))
    table = pq.read_table(shard)
    pq.write_table(table.append_column("difficulty", pa.array([1] * table.num_rows, pa.int64())), shard)
    commits = len(fake_hub.hub.repo(REPO).commits)
    with pytest.raises(PushError, match=r"'qwq:train'.*new columns difficulty"):
        push(group, REPO, revision="v2", token=fake_hub.token)
    assert len(fake_hub.hub.repo(REPO).commits) == commits


def test_push_refuses_a_group_without_its_card_or_a_variant_without_rows(
        fake_hub: HubSession, group: Path) -> None:
    (group / "README.md").unlink(missing_ok=True)
    with pytest.raises(PushError, match="no README.md"):
        push(group, REPO, token=fake_hub.token)
    (group / "README.md").write_text("---\nlicense: mit\n---\n")
    for shard in (group / "no_reflect" / "data").glob("*.parquet"):
        shard.unlink()
    with pytest.raises(PushError, match="variant 'no_reflect' has nothing to publish"):
        push(group, REPO, token=fake_hub.token)
    assert fake_hub.hub.requests == []  # refused before any request


def test_build_push_of_a_variant_spec(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ablations"
    code, stdout, stderr = _cli(monkeypatch, capsys, "build", str(ABLATIONS), "--engine", "echo", "--out", str(out),
                                "-q", "--push", "--repo", REPO)
    assert code == 0, stderr
    assert f"{_tag(out)} -> commit" in stdout
    assert set(fake_hub.hub.repo(REPO).tags) == {_tag(out)}
    assert _load("terse_answer", revision=_tag(out)) == _local_rows(out / "terse_answer")
