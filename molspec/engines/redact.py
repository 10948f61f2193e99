"""The one secret redactor: engines (errors, `describe()`), the dataset card and `molspec push` all use it.

Two entry points: `redact(text, secrets)` masks known secrets, URL credentials, bearer tokens and
token-shaped strings in free text; `redact_options(options)` masks the values of credential-looking
option names (``token``, ``api_key``, ``headers``...) and cleans every string it keeps. Names of
environment variables (``api_key_env``) are not secrets and are kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
# Option names whose values are credentials; "_env" names only point at a variable and are kept.
SECRET_KEY = re.compile(r"(?i)(key(?![a-z])|token(?![a-z])|secret|passw|auth(?!or(?!i))|credential|cookie|header)")
# Hub tokens and OpenAI-style keys, wherever they appear in text.
TOKEN_SHAPED = re.compile(r"\b(hf_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_-]{8,})")
BEARER = re.compile(r"(?i)\b(bearer\s+)\S+")
URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@")
# Variables whose values are secrets wherever they show up (in errors echoed by a server, say).
SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")
MIN_ENV_SECRET = 8  # shorter values ("EMPTY", a vLLM convention) are placeholders, not secrets


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with `secrets`, secret environment values, URL credentials and token shapes masked."""
    known = {s for s in secrets if s} | _env_secrets()
    for secret in sorted(known, key=len, reverse=True):  # longest first: one secret may contain another
        text = text.replace(secret, MASK)
    text = URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = BEARER.sub(rf"\g<1>{MASK}", text)
    return TOKEN_SHAPED.sub(MASK, text)


def public_url(url: str) -> str:
    """The URL without its user:password part, fit for messages and `describe()`."""
    return URL_USERINFO.sub(lambda m: m["scheme"], url)


def is_secret_name(name: str) -> bool:
    """Whether an option called `name` holds a credential (names ending in `_env` never do)."""
    return bool(SECRET_KEY.search(name)) and not name.endswith("_env")


def redact_options(options: Mapping[str, Any], secrets: Iterable[str | None] = ()) -> dict[str, Any]:
    """A copy of engine options fit for build metadata: credential values masked, all strings cleaned."""
    known = tuple(secrets)
    return {str(k): MASK if is_secret_name(str(k)) else _redact_value(v, known) for k, v in options.items()}


def _redact_value(value: Any, secrets: tuple[str | None, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return redact_options(value, secrets)
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, secrets) for v in value]
    return value


def _env_secrets() -> set[str]:
    values = (os.environ.get(name) or "" for name in SECRET_ENV)
    return {v for v in values if len(v) >= MIN_ENV_SECRET}
