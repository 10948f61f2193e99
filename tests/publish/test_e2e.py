"""End to end: echo build → `molspec push` / `molspec build --push` → the fake Hub → `datasets.load_dataset`."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from molspec.cli import main
from molspec.publish import hub
from tests.publish.conftest import HubSession
from tests.publish.echo_spec import REPO, write_spec

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "BACKOFF_BASE_S", 0.01)


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `molspec ARGS` in this process (so it sees the patched Hub clients); (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["molspec", *args])  # what the build records as its command
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _build(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], spec: Path, out: Path,
           *extra: str) -> tuple[int, str, str]:
    return _cli(monkeypatch, capsys, "build", str(spec), "--out", str(out), "-q", *extra)


def _rows(out: Path) -> dict[str, list[dict[str, Any]]]:
    splits: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((out / "data").glob("*.parquet")):
        split = re.match(r"(.+?)-\d{5}-of-\d{5}", path.name).group(1)  # type: ignore[union-attr]
        splits.setdefault(split, []).extend(pq.read_table(path).to_pylist())
    return splits


def _load(repo: str = REPO, revision: str | None = None) -> dict[str, list[dict[str, Any]]]:
    loaded = datasets.load_dataset(repo, revision=revision, download_mode="force_redownload")
    return {split: list(loaded[split]) for split in loaded}


def _tag(out: Path) -> str:
    return "spec-" + str(json.loads((out / "molspec.json").read_text())["spec"]["sha256"])[:8]


def test_push_then_load(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path / "spec"), tmp_path / "out"
    assert _build(monkeypatch, capsys, spec, out)[0] == 0
    code, stdout, stderr = _cli(monkeypatch, capsys, "push", str(out))  # repo: the spec's output.hub
    assert code == 0, stderr
    assert "-> commit" in stdout and f'load_dataset("{REPO}", revision="{_tag(out)}")' in stdout
    assert "%|" not in stdout + stderr  # no progress bars
    assert _load() == _rows(out)
    files = fake_hub.hub.files(REPO)
    for name in ("README.md", "structure.png", "molspec.json", "spec/demo.mol", "spec/bonds.mol"):
        assert files[name] == (out / name).read_bytes(), name
    assert not any(p.startswith(".molspec") for p in files)
    assert f'load_dataset("{REPO}")' in files["README.md"].decode()
    # Pushing the same build again changes nothing.
    commits = len(fake_hub.hub.repo(REPO).commits)
    code, stdout, _ = _cli(monkeypatch, capsys, "push", str(out))
    assert code == 0 and "up to date" in stdout and len(fake_hub.hub.repo(REPO).commits) == commits


def test_rebuilt_spec_gets_a_new_tag_and_the_old_one_still_loads(
        fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    old_spec, old = write_spec(tmp_path / "v1"), tmp_path / "out1"
    new_spec, new = write_spec(tmp_path / "v2", train=12, temperature=0.9), tmp_path / "out2"
    _build(monkeypatch, capsys, old_spec, old)
    _build(monkeypatch, capsys, new_spec, new)
    assert _tag(old) != _tag(new)
    assert _cli(monkeypatch, capsys, "push", str(old))[0] == 0
    code, stdout, stderr = _cli(monkeypatch, capsys, "push", str(new), "--repo", REPO)
    assert code == 0, stderr
    assert _tag(new) in stdout
    assert set(fake_hub.hub.repo(REPO).tags) == {_tag(old), _tag(new)}
    assert _load() == _rows(new) == _load(revision=_tag(new))
    assert _load(revision=_tag(old)) == _rows(old)
    assert len(_rows(old)["train"]) == 10 and len(_rows(new)["train"]) == 12


def test_build_push(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path / "spec"), tmp_path / "out"
    code, stdout, stderr = _build(monkeypatch, capsys, spec, out, "--push", "--revision", "v1")
    assert code == 0, stderr
    assert str(out) in stdout and "v1 -> commit" in stdout
    assert set(fake_hub.hub.repo(REPO).tags) == {"v1"}
    assert _load(revision="v1") == _rows(out)
    card = fake_hub.hub.files(REPO)["README.md"].decode()
    assert f"molspec build {spec} --out {out} -q --push --revision v1" in card


def test_build_push_in_a_fresh_process(fake_hub: HubSession, tmp_path: Path) -> None:
    """The installed command, configured only by the environment, as a user runs it."""
    spec, out = write_spec(tmp_path / "spec"), tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "molspec.cli", "build", str(spec), "--out", str(out), "--push"],
                          cwd=ROOT, env=fake_hub.env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert _tag(out) in done.stdout, (done.stdout, done.stderr)
    assert fake_hub.token not in done.stdout + done.stderr
    assert _load() == _rows(out)


def test_private_push(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path / "spec"), tmp_path / "out"
    _build(monkeypatch, capsys, spec, out)
    code, _, stderr = _cli(monkeypatch, capsys, "push", str(out), "--repo", "acme/secret-demo", "--private")
    assert code == 0, stderr
    assert fake_hub.hub.repo("acme/secret-demo").private
    assert 'load_dataset("acme/secret-demo")' in (out / "README.md").read_text()  # the card names the target repo
    assert fake_hub.hub.files("acme/secret-demo")["README.md"] == (out / "README.md").read_bytes()
    assert _load("acme/secret-demo") == _rows(out)  # with the token
    with pytest.raises(RepositoryNotFoundError):  # anonymous callers do not see it
        HfApi(token=False).dataset_info("acme/secret-demo")
    # Pushed to its own repo later, the card is rendered again for that one.
    code, _, stderr = _cli(monkeypatch, capsys, "push", str(out))
    assert code == 0 and "edited" not in stderr
    assert f'load_dataset("{REPO}")' in fake_hub.hub.files(REPO)["README.md"].decode()


def test_spec_private_output_makes_a_private_repo(fake_hub: HubSession, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path / "spec"), tmp_path / "out"
    spec.write_text(spec.read_text().replace('hub = "acme/echo-demo"', 'hub = "acme/echo-demo"  private = true'))
    _build(monkeypatch, capsys, spec, out, "--push")
    assert fake_hub.hub.repo(REPO).private


def test_no_token_in_any_output_log_or_file(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str],
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spec, out = write_spec(tmp_path / "spec"), tmp_path / "out"
    fake_hub.hub.fail_next("commit", times=1, status=503)  # a retry logs a warning
    outputs = [_build(monkeypatch, capsys, spec, out, "--push")]
    outputs.append(_cli(monkeypatch, capsys, "push", str(out), "--repo", "acme/other", "--private"))
    fake_hub.hub.fail_next("commit", times=hub.MAX_ATTEMPTS, status=500)  # a failed push and its message
    outputs.append(_cli(monkeypatch, capsys, "push", str(out), "--repo", "acme/third"))
    assert [code for code, _, _ in outputs] == [0, 0, 1]
    assert "retry with: molspec push" in outputs[-1][2]
    assert "push attempt 1/4 failed" in caplog.text
    token = fake_hub.token
    assert any(r.authorization and token in r.authorization for r in fake_hub.hub.requests)  # it was used
    for _, stdout, stderr in outputs:
        assert token not in stdout and token not in stderr
    assert token not in caplog.text
    leaked = [str(p) for p in tmp_path.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert leaked == []
    for repo in ("acme/echo-demo", "acme/other"):
        assert all(token.encode() not in data for data in fake_hub.hub.files(repo).values())


def test_failed_push_leaves_the_build_and_says_how_to_retry(fake_hub: HubSession, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path / "spec"), tmp_path / "out"
    _build(monkeypatch, capsys, spec, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    fake_hub.hub.fail_next("commit", times=hub.MAX_ATTEMPTS, status=503)
    code, stdout, stderr = _cli(monkeypatch, capsys, "push", str(out))
    assert code == 1 and stdout == ""
    assert stderr.startswith("error[MOL720]: could not reach the Hub") and f"molspec push {out} --repo {REPO}" in stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert _cli(monkeypatch, capsys, "push", str(out))[0] == 0  # the retry it printed works


def test_dirty_spec_warns_on_push(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path / "repo" / "spec"), tmp_path / "out"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "spec"]):
        subprocess.run(git + args, cwd=tmp_path / "repo", check=True, capture_output=True)
    spec.write_text(spec.read_text() + "# not committed\n")
    _build(monkeypatch, capsys, spec, out)
    code, _, stderr = _cli(monkeypatch, capsys, "push", str(out))
    assert code == 0
    assert stderr.startswith("warning:") and "uncommitted changes" in stderr


def test_push_needs_a_repo(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path / "spec", hub=None), tmp_path / "out"
    _build(monkeypatch, capsys, spec, out)
    code, _, stderr = _cli(monkeypatch, capsys, "push", str(out))
    assert code == 2 and "--repo NS/NAME" in stderr and "output { hub" in stderr
    code, _, stderr = _build(monkeypatch, capsys, spec, tmp_path / "out2", "--push")
    assert code == 2 and "--repo NS/NAME" in stderr
    code, _, stderr = _cli(monkeypatch, capsys, "push", str(tmp_path / "nothing"), "--repo", REPO)
    assert code == 1 and "not a molspec build directory" in stderr
    assert fake_hub.hub.requests == []


def test_hand_edited_card_is_pushed_as_is(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path / "spec"), tmp_path / "out"
    _build(monkeypatch, capsys, spec, out)
    edited = (out / "README.md").read_text() + "\nA note by hand.\n"
    (out / "README.md").write_text(edited)
    code, _, stderr = _cli(monkeypatch, capsys, "push", str(out), "--repo", "acme/edited")
    assert code == 0 and "edited after the build" in stderr
    assert fake_hub.hub.files("acme/edited")["README.md"].decode() == edited


def test_rerunning_a_finished_build_push_is_a_no_op(fake_hub: HubSession, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_spec(tmp_path / "spec"), tmp_path / "out"
    assert _build(monkeypatch, capsys, spec, out, "--push")[0] == 0
    code, stdout, stderr = _build(monkeypatch, capsys, spec, out, "--push")
    assert code == 0 and "up to date" in stdout, stderr


def _hooks() -> dict[str, dict[str, Any]]:
    import yaml

    return {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def _run_hook(hook: dict[str, Any], files: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """What pre-commit does: `entry` + args + the staged files that match `files`, from the repo root."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    matching = [f for f in files if re.search(hook["files"], f)]
    return subprocess.run([*hook["entry"].split(), *hook.get("args", []), *matching], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_pre_commit_hooks_pass_on_the_examples() -> None:
    hooks = _hooks()
    assert set(hooks) == {"molspec-check", "molspec-fmt"}
    specs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").rglob("*.mol"))
    assert len(specs) > 3
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["files"] == r"\.mol$"
        done = _run_hook(hook, [*specs, "README.md", "examples/data/gsm8k.jsonl"], ROOT)
        assert done.returncode == 0, (hook["id"], done.stderr)


def test_pre_commit_hooks_fail_on_bad_specs(tmp_path: Path) -> None:
    hooks = _hooks()
    spec = write_spec(tmp_path)
    (tmp_path / "ugly.mol").write_text(spec.read_text().replace("seed = 3", "seed    =   3"))
    (tmp_path / "broken.mol").write_text(spec.read_text().replace("graph = g", "graph = nope"))
    assert _run_hook(hooks["molspec-check"], ["demo.mol", "ugly.mol"], tmp_path).returncode == 0
    done = _run_hook(hooks["molspec-check"], ["demo.mol", "broken.mol"], tmp_path)
    assert done.returncode == 1 and "nope" in done.stderr
    assert _run_hook(hooks["molspec-fmt"], ["demo.mol", "bonds.mol"], tmp_path).returncode == 0
    done = _run_hook(hooks["molspec-fmt"], ["demo.mol", "ugly.mol"], tmp_path)
    assert done.returncode == 1 and "would reformat ugly.mol" in done.stderr
