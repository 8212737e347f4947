"""Codex CLI: OpenAI Responses through a custom provider given as root-level `-c` flags.

Codex ignores OPENAI_BASE_URL, and the ids `openai`, `ollama` and `lmstudio` are
reserved, so agentwrap registers its own provider. Root-level `-c` flags placed
before the user's arguments also apply to subcommands (`exec`, `resume`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from agentwrap.agents.base import AgentSpec, Wiring

PROVIDER_ID = "agentwrap"
KEY_VARIABLE = "AGENTWRAP_CODEX_KEY"


def _toml_str(value: str) -> str:
    # `-c key=value` parses value as TOML; a JSON string literal is a valid TOML basic string.
    return json.dumps(value)


def _wire(base: str, secret: str, key_mode: bool, env: Mapping[str, str], tmpdir: str) -> Wiring:
    p = f"model_providers.{PROVIDER_ID}"
    flags = {
        "model_provider": _toml_str(PROVIDER_ID),
        f"{p}.name": _toml_str("agentwrap"),
        f"{p}.base_url": _toml_str(base + "/v1"),
        f"{p}.wire_api": _toml_str("responses"),
        f"{p}.supports_websockets": "false",
    }
    w = Wiring()
    if key_mode:
        flags[f"{p}.env_key"] = _toml_str(KEY_VARIABLE)
        w.env_set[KEY_VARIABLE] = secret
        w.env_unset += ["OPENAI_API_KEY", "CODEX_API_KEY"]
    else:
        # A ChatGPT login: Codex hands its own token to the custom provider.
        flags[f"{p}.requires_openai_auth"] = "true"
    for key, value in flags.items():
        w.argv_prefix += ["-c", f"{key}={value}"]
    return w


CODEX = AgentSpec(
    name="codex",
    binary="codex",
    npm_package="@openai/codex",
    protocol="openai_responses",
    native_base_url="https://api.openai.com/v1",
    key_variables=(("CODEX_API_KEY", "bearer"), ("OPENAI_API_KEY", "bearer")),
    wire=_wire,
)

# With a ChatGPT login (no key), Codex's own upstream is the ChatGPT backend, not api.openai.com.
CHATGPT_BASE_URL = "https://chatgpt.com/backend-api/codex"
