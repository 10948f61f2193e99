"""End-to-end tests of `molspec build`: dataset layout, rows vs plan, resume after SIGKILL, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest

import molspec
from molspec.cli import main
from molspec.pipeline import build
from molspec.runtime.build import BuildOptions
from molspec.runtime.store import StoreError
from tests.runtime.conftest import write_spec
from tests.support.openai_server import DEFAULT_MODEL, LoopbackOpenAIServer


def _rows(out: Path) -> list[dict]:
    ds = datasets.load_dataset("parquet", data_dir=str(out / "data"), split="train")
    return list(ds)


def test_echo_build_writes_a_loadable_dataset(tiny_spec: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["build", str(tiny_spec), "--out", str(out), "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    rows = _rows(out)
    assert [r["sample_index"] for r in rows] == list(range(24))
    assert len({r["id"] for r in rows}) == 24
    again = datasets.load_dataset(str(out), split="train")
    assert again.num_rows == 24
    manifest = json.loads((out / "molspec.json").read_text())
    assert manifest["summary"]["done"] == 24 and manifest["summary"]["failed"] == 0
    assert manifest["spec"]["sha256"] == molspec.load(tiny_spec).spec.sha256()  # type: ignore[union-attr]
    assert (out / "spec" / "tiny.mol").read_text() == tiny_spec.read_text()


def test_rows_follow_the_plan(tiny_spec: Path, tmp_path: Path) -> None:
    doc = molspec.load(tiny_spec)
    build(doc, BuildOptions(out=tmp_path / "out"))
    plan = doc.compile()
    walks = plan.walks()
    for r in _rows(tmp_path / "out"):
        i = r["sample_index"]
        assert r["bonds"] == plan.bond_names(walks.bonds[i], int(walks.lengths[i]))
        assert [s["bond"] for s in r["steps"]] == r["bonds"]
        assert all(s["text"] for s in r["steps"])
        meta = json.loads(r["metadata"])
        assert meta["engine"] == "echo" and meta["seed"] == 3 and meta["molspec_version"] == molspec.__version__
        assert r["messages"][0] == {"role": "user", "content": r["question"]}
        assert r["messages"][1]["content"].startswith("<think>\n") and "</think>" in r["messages"][1]["content"]
        assert r["correct"] in (True, False)


def test_limit_then_resume_completes_without_duplicates(tiny_spec: Path, tmp_path: Path) -> None:
    doc = molspec.load(tiny_spec)
    out = tmp_path / "out"
    first = build(doc, BuildOptions(out=out, limit=10))
    assert first.done == 10
    second = build(doc, BuildOptions(out=out))
    assert second.resumed == 10 and second.done == 24 and second.steps < first.steps * 3
    assert [r["sample_index"] for r in _rows(out)] == list(range(24))


def test_changed_spec_refuses_to_resume(tiny_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    build(molspec.load(tiny_spec), BuildOptions(out=out, limit=4))
    tiny_spec.write_text(tiny_spec.read_text().replace("temperature = 0.5", "temperature = 0.9"))
    with pytest.raises(StoreError, match="different spec"):
        build(molspec.load(tiny_spec), BuildOptions(out=out))
    assert main(["build", str(tiny_spec), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "--fresh" in err and "Traceback" not in err
    assert main(["build", str(tiny_spec), "--out", str(out), "-q", "--fresh"]) == 0


def test_new_labeler_weights_refuse_to_resume(tiny_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # the gate's labels are part of the rows: a build begun with one labeler's weights does not resume with another's
    import molspec.structure.label as label

    out = tmp_path / "out"
    build(molspec.load(tiny_spec), BuildOptions(out=out, limit=4))
    state = json.loads((out / ".molspec" / "state.json").read_text())
    assert state["labeler"] == label.labeler_identity("learned-causal")
    assert state["labeler"].startswith("learned-causal ") and len(state["labeler"].split()[1]) == 12
    identity = label.labeler_identity
    monkeypatch.setattr(label, "labeler_identity", lambda name: identity(name) + "-retrained")
    with pytest.raises(StoreError, match="another labeler"):
        build(molspec.load(tiny_spec), BuildOptions(out=out))
    assert main(["build", str(tiny_spec), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "--fresh" in err and "Traceback" not in err
    monkeypatch.setattr(label, "labeler_identity", identity)
    assert build(molspec.load(tiny_spec), BuildOptions(out=out)).resumed == 4  # the same weights resume
    # a gate-off build's key is as before: no labeler in it, and any labeler's weights resume it
    off = tmp_path / "off"
    build(molspec.load(tiny_spec), BuildOptions(out=off, limit=4, gate=False))
    assert "labeler" not in json.loads((off / ".molspec" / "state.json").read_text())
    monkeypatch.setattr(label, "labeler_identity", lambda name: "changed")
    assert build(molspec.load(tiny_spec), BuildOptions(out=off, gate=False)).resumed == 4


def test_a_gate_on_build_of_an_earlier_molspec_refuses_to_resume(tiny_spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(molspec.load(tiny_spec), BuildOptions(out=out, limit=4))
    path = out / ".molspec" / "state.json"
    state = json.loads(path.read_text())
    del state["labeler"]  # a state written before the key named the labeler
    path.write_text(json.dumps(state))
    with pytest.raises(StoreError, match="an earlier molspec"):
        build(molspec.load(tiny_spec), BuildOptions(out=out))


def test_missing_source_is_a_diagnostic(tiny_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tiny_spec.parent / "questions.jsonl").unlink()
    assert main(["build", str(tiny_spec), "--out", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "MOL401" in err and "tiny.mol:5:" in err and "Traceback" not in err


def test_one_failing_request_fails_one_sample(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", samples=6, steps="2..2")
    with LoopbackOpenAIServer() as server:
        server.fail_next(1, status=400)  # a client error: not retried, so exactly one sample fails
        opts = BuildOptions(out=tmp_path / "out", engine="openai", model=DEFAULT_MODEL, window=6)
        os.environ["OPENAI_BASE_URL"] = server.base_url
        try:
            first = build(molspec.load(spec), opts)
            assert (first.done, first.failed) == (5, 1)
            assert "400" in first.errors[0]
            manifest = json.loads((tmp_path / "out" / "molspec.json").read_text())
            assert len(manifest["failures"]) == 1
            second = build(molspec.load(spec), opts)  # the failed sample is retried on resume
            assert (second.done, second.failed) == (6, 0)
        finally:
            del os.environ["OPENAI_BASE_URL"]


def _journal_lines(out: Path) -> int:
    j = out / ".molspec" / "journal"
    return sum(p.read_text().count("\n") for p in j.glob("*.jsonl")) if j.exists() else 0


def test_sigkill_mid_build_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", samples=40, steps="2..4")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with LoopbackOpenAIServer() as server:
        env["OPENAI_BASE_URL"] = server.base_url
        cmd = [sys.executable, "-m", "molspec.cli", "build", str(spec), "--engine", "openai",
               "--model", DEFAULT_MODEL, "--batch", "4", "-q"]
        whole = tmp_path / "whole"
        subprocess.run(cmd + ["--out", str(whole)], env=env, check=True, capture_output=True, timeout=300)

        server.set(delay_s=0.02)
        cut = tmp_path / "cut"
        proc = subprocess.Popen(cmd + ["--out", str(cut)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while _journal_lines(cut) < 8 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the build finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = _journal_lines(cut)
        assert 0 < killed_at < 40
        assert not (cut / "data").exists()

        server.set(delay_s=0.0)
        subprocess.run(cmd + ["--out", str(cut)], env=env, check=True, capture_output=True, timeout=300)
    a, b = _rows(whole), _rows(cut)
    assert [r["id"] for r in b] == [r["id"] for r in a]
    assert len({r["id"] for r in b}) == 40
    assert [r["steps"] for r in b] == [r["steps"] for r in a]  # deterministic server: same text


def test_load_dataset_sees_a_rebuild(tiny_spec: Path, tmp_path: Path) -> None:
    # datasets caches a local folder by its card and file names; a rebuilt shard must get a new name.
    out = tmp_path / "out"
    build(molspec.load(tiny_spec), BuildOptions(out=out))
    first = datasets.load_dataset(str(out), split="train")
    tiny_spec.write_text(tiny_spec.read_text().replace("temperature = 0.5", "temperature = 0.9"))
    build(molspec.load(tiny_spec), BuildOptions(out=out, fresh=True))
    second = datasets.load_dataset(str(out), split="train")
    meta = [json.loads(d[0]["metadata"])["sampling"]["temperature"] for d in (first, second)]
    assert meta == [0.5, 0.9]
