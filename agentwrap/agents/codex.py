"""Codex CLI: OpenAI Responses through a custom provider given as root-level `-c` flags.

Codex ignores OPENAI_BASE_URL, and the ids `openai`, `ollama` and `lmstudio` are
reserved, so agentwrap registers its own provider. Root-level `-c` flags placed
before the user's arguments also apply to subcommands (`exec`, `resume`).

Nothing secret goes into argv: every local user can read a process's
command line (`/proc/PID/cmdline`), but only its owner can read its
environment. The provider's base URL therefore carries no session secret;
Codex sends the secret from an environment variable in the
`x-agentwrap-secret` header (`env_http_headers`), and in key mode also as its
API key (`env_key`).

Any `-c` flag keeps Codex off its shared background server (the TUI warns
"Running without the shared background server: command-line configuration
overrides (-c ...) requires embedded mode", Codex 0.169). A shared server
started by an earlier, unwrapped Codex would talk to the provider directly
and bypass agentwrap, so embedded mode is what a wrapped session needs:
agentwrap asks for it explicitly with `--no-daemon`, which Codex honours
without the warning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from agentwrap.agents.base import AgentSpec, Wiring

PROVIDER_ID = "agentwrap"
KEY_VARIABLE = "AGENTWRAP_CODEX_KEY"
SECRET_VARIABLE = "AGENTWRAP_CODEX_SECRET"
SECRET_HEADER = "x-agentwrap-secret"
# Root flags of the user's own that `--no-daemon` must not be added to (Codex refuses
# `--no-daemon` twice, and with `--remote`).
_DAEMON_FLAGS = ("--no-daemon", "--remote")


def _toml_str(value: str) -> str:
    # `-c key=value` parses value as TOML; a JSON string literal is a valid TOML basic string.
    return json.dumps(value)


def _wire(origin: str, secret: str, key_mode: bool, env: Mapping[str, str], tmpdir: str, args: list[str]) -> Wiring:
    p = f"model_providers.{PROVIDER_ID}"
    flags = {
        "model_provider": _toml_str(PROVIDER_ID),
        f"{p}.name": _toml_str("agentwrap"),
        f"{p}.base_url": _toml_str(origin + "/v1"),
        f"{p}.wire_api": _toml_str("responses"),
        f"{p}.supports_websockets": "false",
        f"{p}.env_http_headers": "{%s = %s}" % (_toml_str(SECRET_HEADER), _toml_str(SECRET_VARIABLE)),
    }
    w = Wiring(env_set={SECRET_VARIABLE: secret})
    if key_mode:
        flags[f"{p}.env_key"] = _toml_str(KEY_VARIABLE)
        w.env_set[KEY_VARIABLE] = secret
        w.env_unset += ["OPENAI_API_KEY", "CODEX_API_KEY"]
    else:
        # A ChatGPT login: Codex hands its own token to the custom provider.
        flags[f"{p}.requires_openai_auth"] = "true"
    if not any(a == f or a.startswith(f + "=") for a in args for f in _DAEMON_FLAGS):
        w.argv_prefix.append("--no-daemon")
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
