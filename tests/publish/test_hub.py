"""`molspec.publish.hub.push` against the fake Hub, read back with the real `datasets.load_dataset`."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import datasets
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from molspec.publish import cli as publish_cli
from molspec.publish import hub
from molspec.publish.hub import HubTimeouts, PushError, PushResult, push
from molspec.records import ManifestError
from tests.publish.builds import GIT_COMMIT, SPEC_PATH, make_build, rows_of, spec_sha
from tests.publish.conftest import HubSession, _patch_hub_constants

REPO = "acme/demo"
WRITES = {"create", "preupload", "lfs_batch", "lfs_upload", "commit", "tag"}
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "BACKOFF_BASE_S", 0.01)


def _load(revision: str | None = None) -> dict[str, list[dict[str, Any]]]:
    loaded = datasets.load_dataset(REPO, revision=revision, download_mode="force_redownload")
    return {split: list(loaded[split]) for split in loaded}


def _expected(build: Path) -> dict[str, list[dict[str, Any]]]:
    return {split: rows_of(build, split) for split in ("train", "test")}


def _commits(session: HubSession) -> int:
    return len(session.hub.repo(REPO).commits)


def test_push_publishes_one_commit_and_a_tag(fake_hub: HubSession, tmp_path: Path) -> None:
    build = make_build(tmp_path / "a")
    result = push(build, REPO)
    assert result.created_repo and not result.up_to_date
    assert result.tag == f"spec-{spec_sha(build)[:8]}"
    assert _load() == _expected(build)
    files = fake_hub.hub.files(REPO)
    assert sorted(files) == [
        ".gitattributes",
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "molspec.json",
        f"spec/{SPEC_PATH}",
        "structure.png",
    ]
    assert files["data/train-00000-of-00001.parquet"] == (build / "data/train-00000-of-00001.parquet").read_bytes()
    repo = fake_hub.hub.repo(REPO)
    assert repo.tags == {result.tag: result.commit} and repo.branches["main"] == result.commit
    head = repo.commits[result.commit]
    assert len(repo.commits) == 2  # the repo's initial commit and this push: one commit for all files
    assert SPEC_PATH in head.title and spec_sha(build) in head.title and GIT_COMMIT in head.title
    assert spec_sha(build) in head.message and GIT_COMMIT in head.message


def test_second_push_changes_nothing(fake_hub: HubSession, tmp_path: Path) -> None:
    build = make_build(tmp_path / "a")
    first = push(build, REPO)
    seen = len(fake_hub.hub.requests)
    again = push(build, REPO)
    assert again.up_to_date and again.commit == first.commit and again.tag == first.tag
    assert again.uploaded == () and "up to date" in again.summary()
    assert _commits(fake_hub) == 2
    assert not {r.route for r in fake_hub.hub.requests[seen:]} & WRITES


def test_rebuilt_spec_gets_a_new_commit_and_tag(fake_hub: HubSession, tmp_path: Path) -> None:
    old = make_build(tmp_path / "a", variant="a")
    new = make_build(tmp_path / "b", variant="b", shards=2)  # new rows, new spec sha, re-sharded train
    first = push(old, REPO)
    second = push(new, REPO)
    assert second.tag != first.tag and second.commit != first.commit and not second.up_to_date
    assert set(second.deleted) == {"data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"}
    assert "data/train-00001-of-00002.parquet" in second.uploaded
    assert _commits(fake_hub) == 3
    assert _load() == _expected(new)
    assert _load(revision=first.tag) == _expected(old)
    assert _load(revision=second.tag) == _expected(new)


def test_pushing_an_older_build_again_reuses_its_tag(fake_hub: HubSession, tmp_path: Path) -> None:
    old, new = make_build(tmp_path / "a", variant="a"), make_build(tmp_path / "b", variant="b")
    first = push(old, REPO)
    push(new, REPO)
    back = push(old, REPO)
    assert not back.up_to_date and back.tag == first.tag and back.commit == first.commit
    assert fake_hub.hub.repo(REPO).tags[first.tag] == first.commit  # tags never move
    assert _load() == _expected(old)


def test_same_spec_with_other_rows_needs_a_new_tag(fake_hub: HubSession, tmp_path: Path) -> None:
    spec = 'molspec 1\ndataset "acme/demo" { samples = 6 }\n'
    push(make_build(tmp_path / "a", variant="a", spec_text=spec), REPO)
    other = make_build(tmp_path / "b", variant="b", spec_text=spec)
    with pytest.raises(PushError, match="--revision"):
        push(other, REPO)
    assert _commits(fake_hub) == 2
    result = push(other, REPO, revision="rerun-2")
    assert result.tag == "rerun-2" and _load(revision="rerun-2") == _expected(other)


def test_transient_failures_are_retried(fake_hub: HubSession, tmp_path: Path) -> None:
    build = make_build(tmp_path / "a")
    fake_hub.hub.fail_next("commit", times=2, status=503)
    fake_hub.hub.disconnect_next("tag")
    result = push(build, REPO)
    assert result.attempts == 4 and result.created_repo  # created by the first, failed, attempt
    assert [r.status for r in fake_hub.hub.requests if r.route == "commit"] == [503, 503, 200]
    assert _commits(fake_hub) == 2 and _load() == _expected(build)


def test_lost_commit_response_does_not_commit_twice(fake_hub: HubSession, tmp_path: Path) -> None:
    build = make_build(tmp_path / "a")
    fake_hub.hub.lose_response_next("commit")
    result = push(build, REPO)
    assert result.attempts == 2 and _commits(fake_hub) == 2
    assert fake_hub.hub.repo(REPO).tags[result.tag] == result.commit


def test_final_failure_keeps_local_data_and_says_how_to_retry(
    fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = make_build(tmp_path / "a")
    before = {p: p.read_bytes() for p in build.rglob("*") if p.is_file()}
    monkeypatch.setattr(hub, "MAX_ATTEMPTS", 3)
    fake_hub.hub.fail_next("commit", times=3, status=500)
    with pytest.raises(PushError) as err:
        push(build, REPO, revision="v1", private=True)
    message = str(err.value)
    assert f"intact at {build}" in message
    assert f"molspec push {build} --repo {REPO} --revision v1 --private" in message
    assert {p: p.read_bytes() for p in build.rglob("*") if p.is_file()} == before
    assert len([r for r in fake_hub.hub.requests if r.route == "commit"]) == 3


def test_refusals_are_not_retried(fake_hub: HubSession, tmp_path: Path) -> None:
    build = make_build(tmp_path / "a")
    with pytest.raises(PushError, match="refused"):
        push(build, REPO, token="hf_not_the_right_one")
    assert len(fake_hub.hub.requests) == 1 and fake_hub.hub.requests[0].status == 401


def test_schema_change_is_refused(fake_hub: HubSession, tmp_path: Path) -> None:
    first = push(make_build(tmp_path / "a"), REPO)
    wider = make_build(tmp_path / "b", variant="b", extra_column=True)
    with pytest.raises(PushError) as err:
        push(wider, REPO)
    message = str(err.value)
    assert "new columns difficulty" in message and "'train'" in message
    assert "new repo" in message and f"--repo {REPO}-v2" in message and "\n" not in message
    assert _commits(fake_hub) == 2 and fake_hub.hub.repo(REPO).tags == {first.tag: first.commit}
    assert _load() == _expected(tmp_path / "a")


def test_card_feature_change_is_refused(fake_hub: HubSession, tmp_path: Path) -> None:
    push(make_build(tmp_path / "a"), REPO)
    changed = make_build(tmp_path / "b", variant="b")
    readme = changed / "README.md"
    readme.write_text(
        readme.read_text().replace("- name: correct\n    dtype: bool", "- name: correct\n    dtype: string")
    )
    with pytest.raises(PushError, match="dataset card features.*changed types of correct"):
        push(changed, REPO)
    assert _commits(fake_hub) == 2


def test_private_push(fake_hub: HubSession, tmp_path: Path) -> None:
    build = make_build(tmp_path / "a")
    push(build, REPO, private=True)
    assert fake_hub.hub.repo(REPO).private and HfApi().dataset_info(REPO).private
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).dataset_info(REPO)
    assert _load() == _expected(build)


def test_private_push_into_public_repo_is_refused(fake_hub: HubSession, tmp_path: Path) -> None:
    HfApi().create_repo(REPO, repo_type="dataset")
    with pytest.raises(PushError, match="public"):
        push(make_build(tmp_path / "a"), REPO, private=True)
    assert _commits(fake_hub) == 1


def test_token_sources(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = make_build(tmp_path / "a")
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PushError, match="no Hugging Face token"):
        push(build, REPO)
    (fake_hub.home / "token").write_text(fake_hub.token)  # what `hf auth login` stores
    assert isinstance(push(build, REPO), PushResult)
    monkeypatch.setenv("HF_TOKEN", "hf_stale_env_token")
    assert push(build, REPO, token=fake_hub.token).up_to_date  # the explicit token wins


def test_build_holding_the_token_is_refused(fake_hub: HubSession, tmp_path: Path) -> None:
    build = make_build(tmp_path / "a")
    manifest = build / "molspec.json"
    manifest.write_text(manifest.read_text().replace('"options": {}', f'"options": {{"key": "{fake_hub.token}"}}'))
    with pytest.raises(PushError, match="contains the Hub token") as err:
        push(build, REPO)
    assert fake_hub.token not in str(err.value)
    assert fake_hub.hub.requests == []  # refused before talking to the Hub


def test_bad_build_dirs(fake_hub: HubSession, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="molspec.json is missing"):  # MOL701, as for every command
        push(tmp_path, REPO)
    build = make_build(tmp_path / "a")
    with pytest.raises(PushError, match="NAMESPACE/NAME"):
        push(build, "no-namespace")
    for shard in (build / "data").glob("*.parquet"):
        shard.unlink()
    with pytest.raises(PushError, match="no parquet shards"):
        push(build, REPO)


def test_token_never_leaks(
    fake_hub: HubSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = fake_hub.token
    monkeypatch.setenv("HF_TOKEN", "hf_unused")  # so the explicit argument is the only way in
    caplog.set_level(logging.DEBUG)
    build = make_build(tmp_path / "a")
    fake_hub.hub.fail_next("commit", times=1, status=503)
    push(build, REPO, token=token, private=True)
    push(make_build(tmp_path / "b", variant="b"), REPO, token=token)
    errors = []
    for attempt_token in ("hf_wrong", token):
        fake_hub.hub.fail_next("commit", times=hub.MAX_ATTEMPTS, status=502)
        with pytest.raises(PushError) as err:
            push(make_build(tmp_path / "c", variant="c"), REPO, token=attempt_token)
        errors.append(f"{err.value!s} {err.value!r} {err.value.__cause__!r} {err.value.__context__!r}")
    out, err_text = capfd.readouterr()
    assert token not in out + err_text + caplog.text + " ".join(errors)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert all(token.encode() not in blob for blob in fake_hub.hub.stored_objects())
    assert all(token not in c.title + c.message for c in fake_hub.hub.repo(REPO).commits.values())
    writes = [r for r in fake_hub.hub.requests if r.route in {"create", "preupload", "commit", "tag"}]
    assert writes and {r.authorization for r in writes} <= {f"Bearer {token}", "Bearer hf_wrong"}


# --------------------------------------------------------------------------------------------------
# A Hub that never answers, and what a push says
# --------------------------------------------------------------------------------------------------


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (nor closes them) until stopped."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._sock.settimeout(0.05)  # so the accept loop notices the stop
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._sock.accept()
            except TimeoutError:
                continue
            self._held.append(connection)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        for connection in self._held:
            connection.close()


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub timeouts of a fraction of a second, so a hanging Hub fails a test in a few seconds."""
    monkeypatch.setenv("MOLSPEC_HUB_TIMEOUT", "0.3")
    monkeypatch.setenv("MOLSPEC_HUB_CONNECT_TIMEOUT", "0.3")


@pytest.mark.timeout(60)  # a regression hangs forever; fail it instead
def test_push_to_a_hub_that_never_answers_fails_in_bounded_time(
    fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_timeouts: None
) -> None:
    build = make_build(tmp_path / "a")
    with SilentServer() as silent:
        _patch_hub_constants(monkeypatch, silent.endpoint, fake_hub.home)
        started = time.monotonic()
        with pytest.raises(PushError) as err:
            push(build, REPO)
        elapsed = time.monotonic() - started
    message = str(err.value)
    assert elapsed < 10, elapsed  # 4 attempts of 0.3 s each, plus backoff
    assert f"the Hub at {silent.endpoint} did not answer within the timeout" in message
    assert "4 attempts" in message and "raise MOLSPEC_HUB_TIMEOUT" in message
    assert f"intact at {build}" in message and f"retry with: molspec push {build} --repo {REPO}" in message
    assert fake_hub.token not in message


@pytest.mark.timeout(60)
def test_a_stalled_commit_is_retried(fake_hub: HubSession, tmp_path: Path, short_timeouts: None) -> None:
    build = make_build(tmp_path / "a")
    fake_hub.hub.stall_next("commit")  # the request is read, then never answered
    result = push(build, REPO)
    assert result.attempts == 2 and _commits(fake_hub) == 2 and _load() == _expected(build)


@pytest.mark.timeout(60)
def test_a_commit_that_always_stalls_fails_clearly(fake_hub: HubSession, tmp_path: Path,
                                                   short_timeouts: None) -> None:
    build = make_build(tmp_path / "a")
    fake_hub.hub.stall_next("commit", times=hub.MAX_ATTEMPTS)
    with pytest.raises(PushError, match="did not answer within the timeout") as err:
        push(build, REPO)
    assert f"intact at {build}" in str(err.value)
    assert _commits(fake_hub) == 1  # only the repo's initial commit


def test_timeouts_from_the_environment_are_checked(fake_hub: HubSession, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLSPEC_HUB_TIMEOUT", "soon")
    with pytest.raises(PushError, match="MOLSPEC_HUB_TIMEOUT must be a positive number of seconds, got 'soon'"):
        push(make_build(tmp_path / "a"), REPO)
    monkeypatch.setenv("MOLSPEC_HUB_TIMEOUT", "2.5")
    assert HubTimeouts.from_env() == HubTimeouts(read_s=2.5, connect_s=10.0)


def test_push_leaves_the_hub_client_as_it_found_it(fake_hub: HubSession, tmp_path: Path) -> None:
    from huggingface_hub.utils import _http

    before = _http._GLOBAL_CLIENT_FACTORY
    push(make_build(tmp_path / "a"), REPO)
    assert _http._GLOBAL_CLIENT_FACTORY is before


def test_a_token_in_the_message_is_masked(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    build = make_build(tmp_path / "a")
    monkeypatch.setattr(publish_cli, "_refresh_card", lambda out, repo: None)  # the card is not under test here
    code = publish_cli.push_dir(build, repo=REPO, message=f"release 1, pushed with {fake_hub.token}")
    assert code == 0, capsys.readouterr().err
    [head] = [c for c in fake_hub.hub.repo(REPO).commits.values() if c.title.startswith("release 1")]
    assert head.title == "release 1, pushed with ***"
    other = push(make_build(tmp_path / "b", variant="b"), REPO, message="key hf_SomeOtherToken123 here")
    assert fake_hub.hub.repo(REPO).commits[other.commit].title == "key *** here"


def test_no_token_names_what_exists(fake_hub: HubSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PushError) as err:
        push(make_build(tmp_path / "a"), REPO)
    message = str(err.value)
    assert "HF_TOKEN" in message and "hf auth login" in message and "--token" not in message


def test_a_refused_token_says_how_to_fix_it(fake_hub: HubSession, tmp_path: Path) -> None:
    with pytest.raises(PushError) as err:
        push(make_build(tmp_path / "a"), REPO, token="hf_not_the_right_one")
    message = str(err.value)
    assert "401" in message and "set HF_TOKEN to a token with write access" in message
    assert "hf_not_the_right_one" not in message and "--token" not in message


def test_unreadable_card_front_matter_is_a_clear_error(fake_hub: HubSession, tmp_path: Path) -> None:
    build = make_build(tmp_path / "a")
    (build / "README.md").write_text("---\nlicense: [mit\n---\n# card\n")
    with pytest.raises(PushError, match="front matter that is not a YAML mapping") as err:
        push(build, REPO)
    assert "delete the file" in str(err.value)
