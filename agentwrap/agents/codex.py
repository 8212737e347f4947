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
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentwrap.agents.base import AgentSpec, NativeUpstream, Resume, WireContext, Wiring, header_value, key_from, session_id_like

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


def _wire(w: WireContext) -> Wiring:
    p = f"model_providers.{PROVIDER_ID}"
    flags = {
        "model_provider": _toml_str(PROVIDER_ID),
        f"{p}.name": _toml_str("agentwrap"),
        f"{p}.base_url": _toml_str(w.origin + "/v1"),
        f"{p}.wire_api": _toml_str("responses"),
        f"{p}.supports_websockets": "false",
        f"{p}.env_http_headers": "{%s = %s}" % (_toml_str(SECRET_HEADER), _toml_str(SECRET_VARIABLE)),
    }
    out = Wiring(env_set={SECRET_VARIABLE: w.secret})
    if w.key_mode:
        flags[f"{p}.env_key"] = _toml_str(KEY_VARIABLE)
        out.env_set[KEY_VARIABLE] = w.secret
        out.env_unset += ["OPENAI_API_KEY", "CODEX_API_KEY"]
    else:
        # A ChatGPT login: Codex hands its own token to the custom provider.
        flags[f"{p}.requires_openai_auth"] = "true"
    if not any(a == f or a.startswith(f + "=") for a in w.args for f in _DAEMON_FLAGS):
        out.argv_prefix.append("--no-daemon")
    for key, value in flags.items():
        out.argv_prefix += ["-c", f"{key}={value}"]
    return out


# -- where Codex would go on its own ---------------------------------------------------------

KEY_VARIABLES = (("CODEX_API_KEY", "bearer"), ("OPENAI_API_KEY", "bearer"))
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# With a ChatGPT login (no key), Codex's own upstream is the ChatGPT backend, not api.openai.com.
CHATGPT_BASE_URL = "https://chatgpt.com/backend-api/codex"
# Codex's built-in local providers (ids reserved; a config cannot redefine them).
_OSS_BASE_URLS = {"ollama": "http://localhost:11434/v1", "lmstudio": "http://localhost:1234/v1"}


def codex_home(env: Mapping[str, str]) -> Path:
    configured = env.get("CODEX_HOME")
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(os.path.expanduser(configured)) if configured else Path(home) / ".codex"


def read_auth(env: Mapping[str, str]) -> dict | None:
    """Codex's `auth.json`, or None when it is missing or unreadable."""
    try:
        with open(codex_home(env) / "auth.json", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def login_kind(auth: dict | None) -> str | None:
    """"chatgpt", "apikey" or None (no login) for an `auth.json` document."""
    if not auth:
        return None
    mode = str(auth.get("auth_mode") or "").lower()
    if mode in ("chatgpt", "apikey"):
        return mode
    if auth.get("tokens") and not auth.get("OPENAI_API_KEY"):
        return "chatgpt"
    return "apikey" if auth.get("OPENAI_API_KEY") else None


def chatgpt_login(env: Mapping[str, str]) -> bool:
    """True when Codex's auth.json holds a ChatGPT login (not an API key)."""
    return login_kind(read_auth(env)) == "chatgpt"


def read_config(env: Mapping[str, str]) -> dict:
    """Codex's `config.toml` ({} when missing or unreadable: Codex itself reports a broken one)."""
    import tomllib

    try:
        return tomllib.loads((codex_home(env) / "config.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def selected_provider(config: dict) -> tuple[str | None, str]:
    """(provider id, where it is chosen) of a Codex config: the active profile's, else the root's."""
    profile = config.get("profile")
    profiles = config.get("profiles") if isinstance(config.get("profiles"), dict) else {}
    if isinstance(profile, str) and isinstance(profiles.get(profile), dict):
        chosen = profiles[profile].get("model_provider")
        if isinstance(chosen, str):
            return chosen, f"[profiles.{profile}] model_provider"
    chosen = config.get("model_provider")
    return (chosen, "model_provider") if isinstance(chosen, str) else (None, "")


def _str(table: dict, key: str) -> str:
    value = table.get(key)
    return value.strip() if isinstance(value, str) else ""


def _native(env: Mapping[str, str], cwd: str) -> NativeUpstream:
    config = read_config(env)
    where = str(codex_home(env) / "config.toml")
    provider, chosen = selected_provider(config)
    providers: dict[str, Any] = config.get("model_providers") if isinstance(config.get("model_providers"), dict) else {}
    if provider in _OSS_BASE_URLS:
        return NativeUpstream(_OSS_BASE_URLS[provider], f'{chosen} = "{provider}" in {where}', login="")
    table = providers.get(provider) if provider not in (None, "openai", PROVIDER_ID) else None
    if isinstance(table, dict) and _str(table, "base_url") and _str(table, "wire_api") in ("", "responses"):
        variable = _str(table, "env_key")
        key = key_from(env, ((variable, "bearer"),)) if variable else None
        headers = tuple((k, v) for k, v in (table.get("http_headers") or {}).items() if isinstance(v, str)) \
            if isinstance(table.get("http_headers"), dict) else ()
        login = "your ChatGPT login" if table.get("requires_openai_auth") is True and key is None else ""
        return NativeUpstream(_str(table, "base_url").rstrip("/"), f"[model_providers.{provider}] ({chosen}) in {where}",
                              key, login=login, headers=headers)
    key = key_from(env, KEY_VARIABLES)
    custom = _str(config, "openai_base_url").rstrip("/")
    if key is not None:
        return NativeUpstream(custom or DEFAULT_BASE_URL, f"openai_base_url in {where}" if custom else "the default", key)
    kind = login_kind(read_auth(env))
    if kind == "chatgpt":
        base = _str(config, "chatgpt_base_url").rstrip("/")
        return NativeUpstream(base + "/codex" if base else CHATGPT_BASE_URL,
                              f"chatgpt_base_url in {where}" if base else "your ChatGPT login", login="your ChatGPT login")
    login = "the API key of your Codex login (auth.json)" if kind == "apikey" else "your Codex login"
    return NativeUpstream(custom or DEFAULT_BASE_URL, f"openai_base_url in {where}" if custom else "the default", login=login)


# Resuming (observed with Codex 0.169): each request names its thread in `thread-id` (and
# `session-id`); the user's thread is saved as `$CODEX_HOME/sessions/YYYY/MM/DD/
# rollout-<time>-<id>.jsonl` and resumed with `codex resume ID`, which Codex prints at exit.
# Side threads (the title of a new thread) have ids of their own and no rollout file.
def _session_of(headers) -> str | None:
    return header_value(headers, b"thread-id") or header_value(headers, b"session-id")


def _saved_session(env: Mapping[str, str], cwd: str, seen: list[str], since: float) -> str | None:
    sessions = codex_home(env) / "sessions"
    for sid in seen:
        if session_id_like(sid) and any(sessions.glob(f"*/*/*/rollout-*-{sid}.jsonl*")):
            return sid
    return None


RESUME = Resume(from_request=_session_of, saved=_saved_session, args=lambda sid: ["resume", sid])


CODEX = AgentSpec(
    name="codex",
    binary="codex",
    npm_package="@openai/codex",
    protocol="openai_responses",
    native_base_url=DEFAULT_BASE_URL,
    key_variables=KEY_VARIABLES,
    wire=_wire,
    native=_native,
    resume=RESUME,
)
