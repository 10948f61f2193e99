"""Fixtures that point the real huggingface_hub / datasets clients at a loopback FakeHub.

Both libraries copy HF_ENDPOINT, HF_HOME and friends into module-level constants when they are first imported,
and some other test module may import them before this fixture runs. So the fixture imports them first and
then patches those constants (monkeypatch restores every one afterwards) as well as the environment (which
subprocesses and later `get_token()` calls read). `hub_env(...)` gives the same settings for a fresh process.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.fakehub import FakeHub

# Variables that would override HF_HOME-derived paths or switch the clients offline if set by the caller.
_OVERRIDES = (
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HF_TOKEN_PATH",
    "HF_XET_CACHE",
    "HF_DATASETS_CACHE",
    "HF_MODULES_CACHE",
    "HF_DATASETS_DOWNLOADED_DATASETS_PATH",
    "HF_DATASETS_EXTRACTED_DATASETS_PATH",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_CO_STAGING",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
)


@dataclass(frozen=True)
class HubSession:
    """A running FakeHub and the client settings that reach it."""

    hub: FakeHub
    token: str
    home: Path

    @property
    def endpoint(self) -> str:
        return self.hub.endpoint

    def env(self) -> dict[str, str]:
        """Environment for a subprocess: everything set before huggingface_hub/datasets are imported."""
        return hub_env(self.endpoint, self.token, self.home)


def hub_env(endpoint: str, token: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OVERRIDES}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_TOKEN=token,
        HF_HOME=str(home),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
    )
    return env


def _patch_hub_constants(mp: pytest.MonkeyPatch, endpoint: str, home: Path) -> None:
    import huggingface_hub.constants as c

    hub_cache, assets = str(home / "hub"), str(home / "assets")
    values: dict[str, object] = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": hub_cache,
        "HUGGINGFACE_HUB_CACHE": hub_cache,
        "HF_ASSETS_CACHE": assets,
        "HUGGINGFACE_ASSETS_CACHE": assets,
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
    }
    if hasattr(c, "HF_URL_HOSTS"):
        values["HF_URL_HOSTS"] = frozenset(c.HF_URL_HOSTS | {urlsplit(endpoint).hostname or "127.0.0.1"})
    for name, value in values.items():
        if hasattr(c, name):
            mp.setattr(c, name, value)
    # Modules that did `from ..constants import X` hold their own copy.
    import huggingface_hub.utils._cache_assets as cache_assets
    import huggingface_hub.utils._cache_manager as cache_manager

    mp.setattr(cache_manager, "HF_HUB_CACHE", hub_cache, raising=False)
    mp.setattr(cache_assets, "HF_ASSETS_CACHE", assets, raising=False)


def _patch_datasets_config(mp: pytest.MonkeyPatch, endpoint: str, home: Path) -> None:
    import datasets.config as d

    cache = home / "datasets"
    values: dict[str, object] = {
        "HF_ENDPOINT": endpoint,
        "HUB_DATASETS_URL": endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_CACHE_HOME": str(home),
        "HF_DATASETS_CACHE": cache,
        "HF_MODULES_CACHE": home / "modules",
        "DOWNLOADED_DATASETS_PATH": cache / "downloads",
        "EXTRACTED_DATASETS_PATH": cache / "downloads" / "extracted",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
        "HF_UPDATE_DOWNLOAD_COUNTS": False,
    }
    for name, value in values.items():
        if hasattr(d, name):
            mp.setattr(d, name, value)


def _clear_fs_cache() -> None:
    # fsspec reuses HfFileSystem instances per (endpoint, token); a later test can get the same port back and
    # would then read a stale directory cache.
    from huggingface_hub import HfFileSystem

    HfFileSystem.clear_instance_cache()


@pytest.fixture
def hub_token() -> str:
    """A distinctive fake token, so tests can search every output for it."""
    return "hf_fakehub" + secrets.token_hex(12)


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_token: str) -> Iterator[HubSession]:
    """A started FakeHub that accepts only `hub_token`, with both client libraries pointed at it."""
    import datasets  # noqa: F401  (imported here, before patching, so the patches are what stays in effect)
    import huggingface_hub  # noqa: F401

    home = tmp_path / "hf_home"
    home.mkdir()
    with FakeHub(token=hub_token) as hub:
        for name in _OVERRIDES:
            monkeypatch.delenv(name, raising=False)
        for name, value in hub_env(hub.endpoint, hub_token, home).items():
            if os.environ.get(name) != value:
                monkeypatch.setenv(name, value)
        _patch_hub_constants(monkeypatch, hub.endpoint, home)
        _patch_datasets_config(monkeypatch, hub.endpoint, home)
        _clear_fs_cache()
        yield HubSession(hub=hub, token=hub_token, home=home)
        _clear_fs_cache()
