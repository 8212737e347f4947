"""Gemini CLI: Gemini API at GOOGLE_GEMINI_BASE_URL, or Code Assist for a Google login.

Gemini CLI ignores GOOGLE_GEMINI_BASE_URL unless its settings select the
`gemini-api-key` auth type (observed 2026-11, Gemini CLI 0.61: with the base URL
alone, headless runs fail "Invalid auth method selected.", exit 41). The user's
settings file must not be edited, and a system-settings file
(GEMINI_CLI_SYSTEM_SETTINGS_PATH) is honoured only when it and every parent
directory are owned by root and not group/other-writable, so it is no option
for ordinary users. agentwrap therefore gives the child a *shadow home*
(GEMINI_CLI_HOME, which Gemini CLI uses instead of the user's home for its
`.gemini` folder): every entry of the user's real `~/.gemini` is symlinked into
it, except `settings.json`, which is a copy of the user's settings with the
auth type selected. Whatever Gemini CLI creates there during the run is moved
back into the real `~/.gemini` afterwards.

With a Google login (no key) the base URL is ignored and the traffic goes to
the Code Assist endpoint, which Gemini CLI reads from CODE_ASSIST_ENDPOINT and
joins with `/v1internal:<method>`, keeping any path prefix.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping

from agentwrap.agents.base import AgentSpec, NativeUpstream, Resume, WireContext, Wiring, key_from, session_id_like
from agentwrap.files import make_private_dirs, write_private

CODE_ASSIST_BASE_URL = "https://cloudcode-pa.googleapis.com"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
KEY_VARIABLES = (("GEMINI_API_KEY", "x-goog-api-key"), ("GOOGLE_API_KEY", "x-goog-api-key"))
API_KEY_AUTH_TYPE = "gemini-api-key"  # settings security.auth.selectedType for a key
# Auth types that use a Google login and so talk to the Code Assist endpoint.
LOGIN_AUTH_TYPES = ("oauth-personal", "compute-default-credentials", "cloud-shell")


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def settings_with_api_key_auth(existing: dict) -> dict:
    merged = json.loads(json.dumps(existing))  # deep copy of plain JSON
    security = merged.get("security")
    if not isinstance(security, dict):
        security = merged["security"] = {}
    auth = security.get("auth")
    if not isinstance(auth, dict):
        auth = security["auth"] = {}
    auth["selectedType"] = API_KEY_AUTH_TYPE
    auth.pop("enforcedType", None)
    return merged


def real_gemini_dir(env: Mapping[str, str]) -> str:
    home = env.get("GEMINI_CLI_HOME") or env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".gemini")


def build_shadow_home(shadow: str, real_dir: str) -> None:
    """Create `shadow/.gemini` mirroring `real_dir` with settings.json overridden."""
    target = os.path.join(shadow, ".gemini")
    make_private_dirs(target)
    if os.path.isdir(real_dir):
        for name in os.listdir(real_dir):
            if name != "settings.json":
                os.symlink(os.path.join(real_dir, name), os.path.join(target, name))
    settings = settings_with_api_key_auth(_read_json(os.path.join(real_dir, "settings.json")))
    write_private(os.path.join(target, "settings.json"), json.dumps(settings, indent=2))


def sync_back(shadow: str, real_dir: str) -> None:
    """Move what Gemini CLI created in the shadow `.gemini` into the real one (never overwriting)."""
    target = os.path.join(shadow, ".gemini")
    if not os.path.isdir(target):
        return
    for name in os.listdir(target):
        path = os.path.join(target, name)
        if name == "settings.json" or os.path.islink(path):
            continue
        dest = os.path.join(real_dir, name)
        if os.path.lexists(dest):
            continue
        make_private_dirs(real_dir)
        shutil.move(path, dest)


def _wire(w: WireContext) -> Wiring:
    base = f"{w.origin}/{w.secret}"  # Gemini CLI keeps a base-URL path prefix, Code Assist's included
    if not w.key_mode:
        return Wiring(env_set={"CODE_ASSIST_ENDPOINT": base})
    real_dir = real_gemini_dir(w.env)
    shadow = os.path.join(w.tmpdir, "gemini-home")
    build_shadow_home(shadow, real_dir)
    return Wiring(
        env_set={
            "GOOGLE_GEMINI_BASE_URL": base,
            "GEMINI_API_KEY": w.secret,
            "GEMINI_CLI_HOME": shadow,
        },
        env_unset=["GOOGLE_API_KEY"],
        cleanup=lambda: sync_back(shadow, real_dir),
    )


def _native(env: Mapping[str, str], cwd: str) -> NativeUpstream:
    key = key_from(env, KEY_VARIABLES)
    if key is not None:
        base = env.get("GOOGLE_GEMINI_BASE_URL", "").strip().rstrip("/")
        return NativeUpstream(base or DEFAULT_BASE_URL, "GOOGLE_GEMINI_BASE_URL in your environment" if base else "the default", key)
    # A Google login: Gemini CLI talks to Code Assist, not the Gemini API.
    endpoint = env.get("CODE_ASSIST_ENDPOINT", "").strip().rstrip("/")
    return NativeUpstream(endpoint or CODE_ASSIST_BASE_URL,
                          "CODE_ASSIST_ENDPOINT in your environment" if endpoint else "your Google login (Code Assist)",
                          login="your Google login")


# Resuming (observed with Gemini CLI 0.61): a Gemini API request names no session, so the
# id comes from the session file Gemini CLI writes, `~/.gemini/tmp/<project>/chats/
# session-<time>-<id8>.jsonl`, whose first line holds `sessionId`; `projects.json` maps
# the working directory to <project>. A session with nothing to resume is deleted at
# exit. `gemini --resume ID` resumes it, as Gemini CLI prints at exit.
def _chat_dirs(gemini_dir: str, cwd: str) -> list[str]:
    """The chats folder of `cwd`'s project first, then every project's."""
    projects = _read_json(os.path.join(gemini_dir, "projects.json")).get("projects")
    name = projects.get(os.path.abspath(cwd)) if isinstance(projects, dict) else None
    tmp = os.path.join(gemini_dir, "tmp")
    try:
        names = sorted(os.listdir(tmp))
    except OSError:
        return []
    if isinstance(name, str) and name in names:
        names.remove(name)
        names.insert(0, name)
    return [os.path.join(tmp, n, "chats") for n in names]


def _saved_session(env: Mapping[str, str], cwd: str, seen: list[str], since: float) -> str | None:
    for chats in _chat_dirs(real_gemini_dir(env), cwd):
        try:
            entries = [e for e in os.scandir(chats) if e.name.startswith("session-") and e.is_file()]
        except OSError:
            continue
        recent = [(e.stat().st_mtime, e.path) for e in entries if e.stat().st_mtime >= since - 2]
        for _, path in sorted(recent, reverse=True):
            try:
                with open(path, encoding="utf-8") as f:
                    first = json.loads(f.readline() or "null")
            except (OSError, ValueError):
                continue
            sid = session_id_like(first.get("sessionId") if isinstance(first, dict) else None)
            if sid:
                return sid
    return None


RESUME = Resume(from_request=None, saved=_saved_session, args=lambda sid: ["--resume", sid])


GEMINI = AgentSpec(
    name="gemini",
    binary="gemini",
    npm_package="@google/gemini-cli",
    protocol="gemini",
    native_base_url=DEFAULT_BASE_URL,
    key_variables=KEY_VARIABLES,
    wire=_wire,
    native=_native,
    resume=RESUME,
)
