"""The fake Hub against the real clients: huggingface_hub and datasets, over HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    HfApi,
    HfFileSystem,
    RepoFile,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.publish.conftest import HubSession

REPO = "tester/demo"
# huggingface_hub's own LFS upload passes `data=` to httpx2, which warns; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def _api() -> HfApi:
    return HfApi()  # endpoint and token come from the fixture's patched constants and HF_TOKEN


def test_create_is_idempotent_and_records_auth(fake_hub: HubSession) -> None:
    api = _api()
    first = api.create_repo(REPO, repo_type="dataset")
    again = api.create_repo(REPO, repo_type="dataset", exist_ok=True)  # 409 with "url" in the body
    assert str(first) == str(again) == f"{fake_hub.endpoint}/datasets/{REPO}"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(REPO, repo_type="dataset")
    assert err.value.response.status_code == 409
    creates = [r for r in fake_hub.hub.requests if r.route == "create"]
    assert [r.authorization for r in creates] == [f"Bearer {fake_hub.token}"] * 3
    assert api.whoami()["name"] == "tester"


def test_upload_folder_then_download(fake_hub: HubSession, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "notes.txt").write_text("hello hub\n")
    (src / "sub" / "blob.bin").write_bytes(bytes(range(256)) * 40)  # binary -> LFS
    api = _api()
    api.create_repo(REPO, repo_type="dataset")
    info = api.upload_folder(folder_path=src, repo_id=REPO, repo_type="dataset", commit_message="add files")
    assert sorted(api.list_repo_files(REPO, repo_type="dataset")) == [
        ".gitattributes",
        "notes.txt",
        "sub/blob.bin",
    ]
    text = hf_hub_download(REPO, "notes.txt", repo_type="dataset")
    assert Path(text).read_text() == "hello hub\n"
    snap = Path(snapshot_download(REPO, repo_type="dataset", revision=info.oid))
    assert (snap / "sub" / "blob.bin").read_bytes() == (src / "sub" / "blob.bin").read_bytes()
    assert {r.route for r in fake_hub.hub.requests} >= {"preupload", "lfs_batch", "lfs_upload", "commit"}


def test_ranged_reads_and_metadata(fake_hub: HubSession, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 8
    api = _api()
    api.create_repo(REPO, repo_type="dataset")
    api.upload_file(path_or_fileobj=payload, path_in_repo="x/data.bin", repo_id=REPO, repo_type="dataset")
    fs = HfFileSystem(endpoint=fake_hub.endpoint, token=fake_hub.token, skip_instance_cache=True)
    with fs.open(f"datasets/{REPO}/x/data.bin", "rb", block_size=64) as handle:
        handle.seek(1000)
        assert handle.read(10) == payload[1000:1010]
    (entry,) = api.get_paths_info(REPO, ["x/data.bin"], repo_type="dataset")
    assert isinstance(entry, RepoFile) and entry.lfs is not None and entry.lfs.size == len(payload)
    assert [f.path for f in api.list_repo_tree(REPO, repo_type="dataset", recursive=True)] == [
        "x",
        ".gitattributes",
        "x/data.bin",
    ]
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(REPO, path_in_repo="missing", repo_type="dataset"))
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "missing.txt", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(REPO, revision="no-such-branch")


def test_push_to_hub_and_load_dataset(fake_hub: HubSession) -> None:
    train = datasets.Dataset.from_dict({"q": ["a", "b", "c"], "n": [1, 2, 3]})
    test = datasets.Dataset.from_dict({"q": ["d"], "n": [4]})
    datasets.DatasetDict({"train": train, "test": test}).push_to_hub(REPO)
    loaded = datasets.load_dataset(REPO)
    assert loaded["train"].to_dict() == train.to_dict()
    assert loaded["test"].to_dict() == test.to_dict()


def test_tag_keeps_serving_the_older_snapshot(fake_hub: HubSession) -> None:
    api = _api()
    datasets.Dataset.from_dict({"n": [1, 2, 3]}).push_to_hub(REPO)
    api.create_tag(REPO, tag="v1", repo_type="dataset")
    datasets.Dataset.from_dict({"n": [4, 5, 6, 7]}).push_to_hub(REPO)
    assert list(datasets.load_dataset(REPO, split="train")["n"]) == [4, 5, 6, 7]
    assert list(datasets.load_dataset(REPO, split="train", revision="v1")["n"]) == [1, 2, 3]
    refs = api.list_repo_refs(REPO, repo_type="dataset")
    assert [t.name for t in refs.tags] == ["v1"]
    commits = api.list_repo_commits(REPO, repo_type="dataset")
    assert refs.tags[0].target_commit == commits[1].commit_id
    assert commits[-1].title == "initial commit"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_tag(REPO, tag="v1", repo_type="dataset")
    assert err.value.response.status_code == 409


def test_private_repo_hidden_from_anonymous(fake_hub: HubSession) -> None:
    api = _api()
    api.create_repo(REPO, repo_type="dataset", private=True)
    datasets.Dataset.from_dict({"n": [1]}).push_to_hub(REPO)
    assert api.dataset_info(REPO).private is True
    assert fake_hub.hub.repo(REPO).private
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).dataset_info(REPO)
    assert list(datasets.load_dataset(REPO, split="train")["n"]) == [1]


def test_wrong_token_is_rejected(fake_hub: HubSession) -> None:
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token="hf_wrong").create_repo(REPO, repo_type="dataset")
    assert err.value.response.status_code == 401


def test_parent_commit_mismatch_is_412(fake_hub: HubSession) -> None:
    api = _api()
    api.create_repo(REPO, repo_type="dataset")
    first = api.dataset_info(REPO).sha
    api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=REPO, repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            REPO,
            [CommitOperationAdd("b.txt", b"2")],
            commit_message="stale",
            repo_type="dataset",
            parent_commit=first,
        )
    assert err.value.response.status_code == 412


def test_failure_injection(fake_hub: HubSession) -> None:
    api = _api()
    api.create_repo(REPO, repo_type="dataset")
    fake_hub.hub.fail_next("commit", times=1, status=503)
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id=REPO, repo_type="dataset")
    assert err.value.response.status_code == 503
    fake_hub.hub.disconnect_next("commit")
    with pytest.raises(Exception) as dropped:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id=REPO, repo_type="dataset")
    assert not isinstance(dropped.value, HfHubHTTPError)  # a transport error, not an HTTP status
    api.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id=REPO, repo_type="dataset")
    assert fake_hub.hub.files(REPO)["a.txt"] == b"x"
    assert [r.status for r in fake_hub.hub.requests if r.route == "commit"] == [503, 0, 200]


def test_env_only_configuration_in_a_fresh_process(fake_hub: HubSession) -> None:
    """What the CLI does: env set before huggingface_hub/datasets are imported, nothing patched."""
    script = textwrap.dedent(
        f"""
        import datasets
        datasets.Dataset.from_dict({{"n": [1, 2]}}).push_to_hub({REPO!r})
        print(list(datasets.load_dataset({REPO!r}, split="train")["n"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=fake_hub.env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[1, 2]")
    assert "data/train-00000-of-00001.parquet" in fake_hub.hub.files(REPO)
