"""Gemini CLI: Gemini API at GOOGLE_GEMINI_BASE_URL, or Code Assist for a Google login.

Gemini CLI ignores GOOGLE_GEMINI_BASE_URL unless its selected auth type is
`gemini-api-key`. agentwrap selects it for the child only, through a temporary
system-settings file (GEMINI_CLI_SYSTEM_SETTINGS_PATH, which overrides user
settings), merged over the system settings the user already has; the user's
own settings file is never edited. With a Google login (no key) the traffic goes
to the Code Assist endpoint, which Gemini CLI reads from CODE_ASSIST_ENDPOINT
and joins with `/v1internal:<method>`, keeping any path prefix.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from agentwrap.agents.base import AgentSpec, Wiring

CODE_ASSIST_BASE_URL = "https://cloudcode-pa.googleapis.com"


def default_system_settings_path() -> str:
    if sys.platform == "darwin":
        return "/Library/Application Support/GeminiCli/settings.json"
    if sys.platform == "win32":
        return "C:\\ProgramData\\gemini-cli\\settings.json"
    return "/etc/gemini-cli/settings.json"


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def merged_system_settings(existing: dict) -> dict:
    merged = json.loads(json.dumps(existing))  # deep copy of plain JSON
    security = merged.setdefault("security", {})
    if not isinstance(security, dict):
        security = merged["security"] = {}
    auth = security.setdefault("auth", {})
    if not isinstance(auth, dict):
        auth = security["auth"] = {}
    auth["selectedType"] = "gemini-api-key"
    return merged


def _wire(base: str, secret: str, key_mode: bool, env: Mapping[str, str], tmpdir: str) -> Wiring:
    if not key_mode:
        return Wiring(env_set={"CODE_ASSIST_ENDPOINT": base})
    existing_path = env.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH") or default_system_settings_path()
    settings = merged_system_settings(_read_json(existing_path))
    path = os.path.join(tmpdir, "gemini-system-settings.json")
    return Wiring(
        env_set={
            "GOOGLE_GEMINI_BASE_URL": base,
            "GEMINI_API_KEY": secret,
            "GEMINI_CLI_SYSTEM_SETTINGS_PATH": path,
        },
        env_unset=["GOOGLE_API_KEY"],
        files={path: json.dumps(settings, indent=2)},
    )


GEMINI = AgentSpec(
    name="gemini",
    binary="gemini",
    npm_package="@google/gemini-cli",
    protocol="gemini",
    native_base_url="https://generativelanguage.googleapis.com",
    key_variables=(("GEMINI_API_KEY", "x-goog-api-key"), ("GOOGLE_API_KEY", "x-goog-api-key")),
    wire=_wire,
)
