"""`agentwrap doctor`: prove that each agent, its credentials and the chosen backends
will work before a session starts.

Each check is a small function returning one `Check` row (a few return several):
a name, a status (ok, warn, fail, skip), a one-line detail and a one-line fix
(empty when the status is ok). `run_checks` runs them in order and knows
nothing of typer; `doctor_cli.py` renders the rows.

Does I/O: reads the agents' own credential and settings files, runs each
agent's `--version`, a profile's `api_key_cmd`, and (only when asked) one HTTP
request per backend (`online`) or the real agent through agentwrap against the
built-in scripted backend (`wire`). Nothing leaves the machine unless `online`
is set. Secrets are never part of a row: keys appear only as their last four
characters, credential files only as their mode and expiry.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentwrap.agents import AGENTS, AgentSpec
from agentwrap.agents.base import NativeKey
from agentwrap.cli_output import SCHEMA_VERSION
from agentwrap.config.model import BackendConfig, ProfileConfig
from agentwrap.errors import ConfigError
from agentwrap.session import check_protocols

__all__ = [
    "OK",
    "WARN",
    "FAIL",
    "SKIP",
    "STATUSES",
    "Check",
    "Context",
    "DoctorOptions",
    "AgentPlan",
    "run_checks",
    "doctor_document",
    "exit_code",
    "mask_key",
    "plan_agent",
    "gemini_system_file_problem",
]

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
STATUSES = (OK, WARN, FAIL, SKIP)

VERSION_TIMEOUT_S = 10.0
ONLINE_TIMEOUT_S = 10.0
WIRE_TIMEOUT_S = 120.0
WIRE_KILL_GRACE_S = 5.0
LOW_DISK_BYTES = 100 * 1024 * 1024
ANTHROPIC_VERSION = "2023-06-01"

# Claude Code: variables in a settings file's `env` block that matter to agentwrap.
# A base URL or a cloud-provider switch sends requests past the proxy; a key only
# replaces the credential the agent sends to the proxy (agentwrap strips it in key mode).
CLAUDE_BYPASS_VARS = ("ANTHROPIC_BASE_URL", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")
CLAUDE_KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
# Gemini CLI auth types that use a Google login and so talk to the Code Assist endpoint.
GEMINI_LOGIN_TYPES = ("oauth-personal", "compute-default-credentials", "cloud-shell")
GEMINI_KEY_TYPE = "gemini-api-key"

# The non-interactive arguments for the `wire` check: one trivial prompt, no tools.
WIRE_ARGS: dict[str, tuple[str, ...]] = {
    "claude": ("-p", "reply ok"),
    "codex": ("-c", "analytics.enabled=false", "-c", "features.plugins=false", "exec", "--skip-git-repo-check", "reply ok"),
    "gemini": ("-p", "reply ok", "--skip-trust"),
}


# -- rows ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One row of the doctor's report."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix if self.status != OK else ""}


def _ok(name: str, detail: str) -> Check:
    return Check(name, OK, detail)


def mask_key(value: str) -> str:
    """A key as its last four characters; short keys are not even that."""
    value = value.strip()
    if len(value) < 12:
        return f"({len(value)} characters)"
    return "…" + value[-4:]


def doctor_document(checks: list[Check]) -> dict[str, Any]:
    """The `--json` document."""
    return {
        "schema": SCHEMA_VERSION,
        "checks": [c.as_dict() for c in checks],
        "ok": not any(c.status == FAIL for c in checks),
    }


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed, 1 otherwise."""
    return 1 if any(c.status == FAIL for c in checks) else 0


# -- context ---------------------------------------------------------------------------------


def _default_claude_managed() -> tuple[Path, ...]:
    if sys.platform == "darwin":
        return (Path("/Library/Application Support/ClaudeCode/managed-settings.json"),)
    return (Path("/etc/claude-code/managed-settings.json"),)


def _default_gemini_system() -> Path:
    if sys.platform == "darwin":
        return Path("/Library/Application Support/GeminiCli/settings.json")
    return Path("/etc/gemini-cli/settings.json")


def gemini_system_file_problem(path: Path) -> str | None:
    """Why Gemini CLI would skip `path` as a system settings file, or None if it reads it.

    Gemini CLI 0.61 reads a system settings file only when the file and every
    parent directory (also of its resolved path) are owned by root and not
    writable by group or others ("Security Warning: Skipping system settings file").
    """
    try:
        real = path.resolve()
    except OSError as exc:
        return f"cannot resolve {path}: {exc.strerror or exc}"
    paths = [path, *path.absolute().parents]
    if real != path:
        paths += [real, *real.parents]
    for p in dict.fromkeys(paths):
        try:
            st = p.stat()
        except OSError as exc:
            return f"cannot stat {p}: {exc.strerror or exc}"
        if st.st_uid != 0:
            return f"{p} is not owned by root"
        if st.st_mode & 0o022:
            return f"{p} is writable by group or others"
    return None


@dataclass(slots=True)
class Context:
    """What the checks look at: the environment, the working directory, system paths."""

    env: Mapping[str, str]
    cwd: Path
    now: float = field(default_factory=time.time)
    claude_managed_settings: tuple[Path, ...] = field(default_factory=_default_claude_managed)
    gemini_system_settings: Path | None = None  # None: GEMINI_CLI_SYSTEM_SETTINGS_PATH or the platform's
    gemini_system_check: Callable[[Path], str | None] = gemini_system_file_problem

    @classmethod
    def current(cls) -> "Context":
        return cls(env=dict(os.environ), cwd=Path.cwd())

    @property
    def home(self) -> Path:
        return Path(self.env.get("HOME") or os.path.expanduser("~"))

    def short(self, path: Path | str) -> str:
        """A path for display, with the home directory as ~."""
        text, home = str(path), str(self.home)
        if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
            return "~" + text[len(home):]
        return text

    def redact(self, text: str) -> str:
        """`text` with every key-like value of the environment replaced."""
        for name, value in self.env.items():
            if len(value) >= 8 and any(w in name.upper() for w in ("KEY", "TOKEN", "SECRET", "PASSWORD")) and value in text:
                text = text.replace(value, mask_key(value))
        return text


@dataclass(slots=True)
class DoctorOptions:
    agents: tuple[str, ...] = tuple(AGENTS)
    profile: str | None = None  # as `agentwrap AGENT --profile`
    online: bool = False
    wire: bool = False
    timeout_s: float = ONLINE_TIMEOUT_S
    wire_timeout_s: float = WIRE_TIMEOUT_S
    agents_named: bool = False  # the user asked for these agents: a missing one is a failure


# -- small readers -----------------------------------------------------------------------------


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(data, problem): data is None when the file is missing or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"{path} is not valid JSON ({exc})"


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _when(ms_or_s: float) -> str:
    return datetime.fromtimestamp(ms_or_s, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _expiry_ms(value: Any) -> float | None:
    return float(value) / 1000 if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def _jwt_exp(token: Any) -> float | None:
    """The `exp` claim of a JWT, read without verifying it (only to report expiry)."""
    import base64

    if not isinstance(token, str) or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def _is_loopback(url: str | None) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url or "").hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _url_host(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "(unparsable URL)"


# -- the plan per agent --------------------------------------------------------------------------


@dataclass(slots=True)
class AgentPlan:
    """What a session of this agent would use here; `error` when that cannot be decided."""

    spec: AgentSpec
    profile: ProfileConfig | None = None  # the profile in effect (the native default included)
    native: bool = False  # no profile selected: the agent's own provider
    reason: str = ""
    error: str | None = None
    native_key: NativeKey | None = None
    key_mode: bool = False
    backends: list[BackendConfig] = field(default_factory=list)
    keys: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # backend -> (key, problem)


def _native_default(spec: AgentSpec, native: NativeKey | None, env: Mapping[str, str]) -> ProfileConfig:
    """The profile a session uses when none is selected (mirrors session.py)."""
    from agentwrap.config.loader import native_profile

    base = spec.native_base_url
    if native is None:
        if spec.name == "codex" and _codex_home(env).joinpath("auth.json").is_file():
            from agentwrap.agents.codex import CHATGPT_BASE_URL

            base = CHATGPT_BASE_URL
        elif spec.name == "gemini":
            from agentwrap.agents.gemini import CODE_ASSIST_BASE_URL

            base = CODE_ASSIST_BASE_URL
    return native_profile(spec.name, spec.protocol, base)


def plan_agent(ctx: Context, spec: AgentSpec, flag: str | None) -> AgentPlan:
    """Select the profile as a session would (flag > AGENTWRAP_PROFILE > project file > native)."""
    from agentwrap.config.loader import select_profile

    plan = AgentPlan(spec=spec, native_key=spec.native_key(ctx.env))
    try:
        profile, plan.reason = select_profile(spec.name, flag, ctx.env, ctx.cwd)
    except ConfigError as exc:
        plan.error = str(exc)
        return plan
    if profile is None:
        plan.native = True
        profile = _native_default(spec, plan.native_key, ctx.env)
    plan.profile = profile
    used = {r.backend for r in profile.routes} | {f for r in profile.routes for f in r.fallbacks}
    plan.backends = [profile.backends[n] for n in sorted(used) if n in profile.backends]
    try:
        check_protocols(profile, spec)  # the launcher's own check: any protocol pair is translated
    except ConfigError as exc:
        plan.error = str(exc)
    plan.key_mode = plan.native_key is not None or any(b.type == "scripted" or b.has_key_source for b in plan.backends)
    return plan


def _backend_key(plan: AgentPlan, backend: BackendConfig, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(key, problem) for a backend with a key source; runs `api_key_cmd` once per plan."""
    from agentwrap.config.keys import backend_key

    if backend.name not in plan.keys:
        try:
            plan.keys[backend.name] = (backend_key(backend, env, source=plan.profile.source if plan.profile else ""), None)
        except ConfigError as exc:
            plan.keys[backend.name] = (None, str(exc))
    return plan.keys[backend.name]


def _upstream_credential(plan: AgentPlan, backend: BackendConfig, env: Mapping[str, str]) -> tuple[tuple[str, str] | None, str]:
    """(header, where it comes from) agentwrap would send to an http backend."""
    from agentwrap.proxy.auth import auth_header

    protocol = backend.protocol or plan.spec.protocol
    if backend.has_key_source:
        key, _ = _backend_key(plan, backend, env)
        if key is None:
            return None, "missing"
        scheme = backend.auth_scheme or ("x-api-key" if protocol == "anthropic_messages" else "bearer")
        name, value = auth_header(protocol, scheme, key)
        return (name.decode(), value.decode()), f"api_key_env {backend.api_key_env}" if backend.api_key_env else "api_key_cmd"
    if plan.key_mode and plan.native_key is not None and backend.protocol == plan.spec.protocol:
        name, value = auth_header(protocol, plan.native_key.scheme, plan.native_key.value)
        return (name.decode(), value.decode()), plan.native_key.variable
    if plan.key_mode:
        return None, "none"
    return None, "login"


# -- environment --------------------------------------------------------------------------------------


def check_loopback() -> Check:
    name = "loopback bind"
    try:
        with socket.create_server(("127.0.0.1", 0)) as sock:
            port = sock.getsockname()[1]
    except OSError as exc:
        return Check(
            name, FAIL, f"cannot listen on 127.0.0.1: {exc.strerror or exc}",
            "agentwrap's proxy needs a loopback listener: bring up the lo interface or allow bind() in your sandbox",
        )
    return _ok(name, f"127.0.0.1:{port} bound and released")


def _existing_ancestor(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path("/")


def _dir_check(name: str, path: Path, *, source: str = "", missing: str = "created on first use", space: bool = False,
               fix_hint: str = "") -> Check:
    if path.exists() and not path.is_dir():
        return Check(name, FAIL, f"{path}{source} exists but is not a directory", f"remove or rename {path}{fix_hint}")
    anchor = _existing_ancestor(path)
    if not os.access(anchor, os.W_OK | os.X_OK):
        state = "is not writable" if anchor == path else f"cannot be created ({anchor} is not writable)"
        return Check(name, FAIL, f"{path}{source} {state}", f"make {anchor} writable for your user{fix_hint}")
    detail = f"{path}{source} ({'exists, writable' if anchor == path else missing})"
    if space:
        free = shutil.disk_usage(anchor).free
        detail += f", {free / 2**30:.1f} GiB free"
        if free < LOW_DISK_BYTES:
            return Check(name, WARN, detail + " (under 100 MB)", f"free disk space on {anchor}{fix_hint}")
    return _ok(name, detail)


def check_capture_dir(ctx: Context) -> Check:
    from agentwrap.capture.runs import default_capture_dir

    configured = ctx.env.get("AGENTWRAP_CAPTURE_DIR")
    path = Path(os.path.expanduser(configured)) if configured else default_capture_dir()
    return _dir_check(
        "capture dir", path, source=" [AGENTWRAP_CAPTURE_DIR]" if configured else "", space=True,
        fix_hint=", or point AGENTWRAP_CAPTURE_DIR / --capture-dir elsewhere (--no-capture records nothing)",
    )


def check_config_dir(ctx: Context) -> Check:
    from agentwrap.config.loader import user_profiles_dir

    path = user_profiles_dir()
    if path.is_dir():
        count = len(list(path.glob("*.toml")))
        return _ok("config dir", f"{path} ({count} profile{'s' if count != 1 else ''})")
    return _dir_check("config dir", path, missing="no profiles yet; `agentwrap profiles new NAME` creates it")


def check_state_dir(ctx: Context) -> Check:
    from platformdirs import user_state_dir

    return _dir_check("state dir", Path(user_state_dir("agentwrap")))


# -- agents on PATH ----------------------------------------------------------------------------------


def check_installed(ctx: Context, spec: AgentSpec, *, required: bool) -> Check:
    name = f"{spec.name} installed"
    binary = shutil.which(spec.binary, path=ctx.env.get("PATH"))
    if not binary:
        return Check(name, FAIL if required else WARN, f"{spec.binary} not found on PATH", f"install it: {spec.install_hint}")
    try:
        proc = subprocess.run(
            [binary, *spec.version_args], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S,
            stdin=subprocess.DEVNULL, env=dict(ctx.env), cwd=ctx.cwd,
        )
    except subprocess.TimeoutExpired:
        return Check(name, WARN, f"{binary}: `{spec.binary} --version` gave no answer within {VERSION_TIMEOUT_S:g} s",
                     f"run `{spec.binary} --version` yourself; reinstall with {spec.install_hint} if it hangs")
    except OSError as exc:
        return Check(name, FAIL, f"{binary} cannot run: {exc.strerror or exc}", f"reinstall it: {spec.install_hint}")
    version = next((line.strip() for line in proc.stdout.splitlines() if line.strip()), "")
    if proc.returncode != 0 or not version:
        last = next((line.strip() for line in reversed(proc.stderr.splitlines()) if line.strip()), "no output")
        return Check(name, WARN, f"{binary}: `--version` exited {proc.returncode}: {ctx.redact(last)[:160]}",
                     f"reinstall it: {spec.install_hint}")
    return _ok(name, f"{version} at {ctx.short(binary)}")


# -- native login state ---------------------------------------------------------------------------------


def _claude_dir(ctx: Context) -> Path:
    configured = ctx.env.get("CLAUDE_CONFIG_DIR")
    return Path(os.path.expanduser(configured)) if configured else ctx.home / ".claude"


def _codex_home(env: Mapping[str, str]) -> Path:
    configured = env.get("CODEX_HOME")
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(os.path.expanduser(configured)) if configured else Path(home) / ".codex"


def _gemini_dir(ctx: Context) -> Path:
    from agentwrap.agents.gemini import real_gemini_dir

    return Path(real_gemini_dir(ctx.env))


def _own_key_note(plan: AgentPlan) -> str | None:
    """Why the agent's own login does not matter for this plan, or None when it does."""
    if plan.native_key is not None:
        return f"{plan.native_key.variable} {mask_key(plan.native_key.value)} is set: agentwrap runs {plan.spec.name} in key mode"
    if plan.key_mode and plan.profile is not None:
        return f'profile "{plan.profile.name}" supplies its own credentials: agentwrap runs {plan.spec.name} in key mode'
    return None


def check_claude_login(ctx: Context, plan: AgentPlan) -> Check:
    name = "claude login"
    path = _claude_dir(ctx) / ".credentials.json"
    data, problem = _read_json(path)
    oauth = _dig(data, "claudeAiOauth")
    login = ""
    expired = False
    if isinstance(oauth, dict):
        expires = _expiry_ms(oauth.get("expiresAt"))
        kind = oauth.get("subscriptionType")
        login = f"Claude.ai login{f' ({kind})' if isinstance(kind, str) and kind else ''} in {ctx.short(path)}"
        if expires is not None:
            expired = expires <= ctx.now
            login += f", token {'expired' if expired else 'valid until'} {_when(expires)}"
    elif problem:
        login = problem
    note = _own_key_note(plan)
    if note is not None:
        return _ok(name, note + (f"; also {login}" if login else ""))
    if problem:
        return Check(name, WARN, ctx.redact(problem), "run `claude /login` to rewrite it, or export ANTHROPIC_API_KEY")
    if not login:
        where = " (on macOS Claude Code keeps it in the Keychain)" if sys.platform == "darwin" else ""
        return Check(name, WARN, f"no key in ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN and no {ctx.short(path)}{where}",
                     "run `claude /login`, export ANTHROPIC_API_KEY, or use a profile with a key (agentwrap profiles list)")
    if expired:
        return Check(name, WARN, login + " (Claude Code refreshes it at start if the refresh token still works)",
                     "if Claude Code asks you to log in, run `claude /login`")
    return _ok(name, login + "; agentwrap passes it through")


def check_codex_login(ctx: Context, plan: AgentPlan) -> Check:
    name = "codex login"
    path = _codex_home(ctx.env) / "auth.json"
    data, problem = _read_json(path)
    note = _own_key_note(plan)
    if problem:
        if note is not None:
            return _ok(name, f"{note}; {problem}")
        return Check(name, FAIL, ctx.redact(problem), "run `codex login` to rewrite it, or export OPENAI_API_KEY")
    if not isinstance(data, dict):
        if note is not None:
            return _ok(name, note)
        store = _codex_config_value(ctx, "cli_auth_credentials_store")
        if isinstance(store, str) and store != "file":
            return Check(name, WARN, "no key variable, and Codex keeps its login in the OS keyring "
                         f'(cli_auth_credentials_store = "{store}"): agentwrap cannot see whether you are logged in',
                         "run `codex login status`; or export OPENAI_API_KEY")
        return Check(name, WARN, f"no key in CODEX_API_KEY / OPENAI_API_KEY and no {ctx.short(path)}",
                     "run `codex login`, export OPENAI_API_KEY, or use a profile with a key (agentwrap profiles list)")
    mode = data.get("auth_mode")
    file_key = data.get("OPENAI_API_KEY")
    tokens = data.get("tokens") if isinstance(data.get("tokens"), dict) else {}
    if not isinstance(mode, str):
        mode = "chatgpt" if tokens else ("apikey" if file_key else "unknown")
    detail = f"{ctx.short(path)}: auth_mode {mode}"
    if isinstance(file_key, str) and file_key:
        detail += f", API key {mask_key(file_key)}"
    exp = _jwt_exp(tokens.get("access_token")) if tokens else None
    if exp is not None:
        detail += f", token {'expired' if exp <= ctx.now else 'valid until'} {_when(exp)}"
    if note is not None:
        return _ok(name, f"{note}; also {detail}")
    api_key_login = mode.lower() == "apikey" or bool(file_key and not tokens)
    if api_key_login and plan.native:
        # session.py takes any auth.json for a ChatGPT login and points the native
        # pass-through at the ChatGPT backend, which rejects API keys.
        return Check(name, FAIL, detail + ": an API-key login, but with no key variable agentwrap's pass-through "
                     "sends Codex to the ChatGPT backend, which rejects API keys",
                     "export OPENAI_API_KEY with that key (agentwrap then runs Codex in key mode), or `codex login` with ChatGPT")
    if not api_key_login and not plan.native and plan.profile is not None:
        return Check(name, WARN, detail + f': with no key, Codex hands its ChatGPT token to profile "{plan.profile.name}" '
                     "backends (login pass-through)",
                     "export OPENAI_API_KEY, or give the profile's backend an api_key_env")
    if exp is not None and exp <= ctx.now:
        return Check(name, WARN, detail + " (Codex refreshes it at start if the refresh token still works)",
                     "if Codex reports an auth error, run `codex login`")
    return _ok(name, detail + "; agentwrap passes the ChatGPT login through")


def _gemini_auth(settings: Any) -> tuple[str | None, str | None]:
    """(selectedType, enforcedType) of a Gemini CLI settings document (legacy key too)."""
    selected = _dig(settings, "security", "auth", "selectedType") or _dig(settings, "selectedAuthType")
    enforced = _dig(settings, "security", "auth", "enforcedType")
    return (selected if isinstance(selected, str) else None, enforced if isinstance(enforced, str) else None)


def check_gemini_login(ctx: Context, plan: AgentPlan) -> Check:
    name = "gemini login"
    gdir = _gemini_dir(ctx)
    settings_path = gdir / "settings.json"
    settings, settings_problem = _read_json(settings_path)
    selected, _ = _gemini_auth(settings)
    creds_path = gdir / "oauth_creds.json"
    creds, creds_problem = _read_json(creds_path)
    login = ""
    refreshable = False
    expired = False
    if isinstance(creds, dict):
        refreshable = bool(creds.get("refresh_token"))
        expires = _expiry_ms(creds.get("expiry_date"))
        login = f"Google login in {ctx.short(creds_path)}"
        if expires is not None:
            expired = expires <= ctx.now
            login += f", access token {'expired' if expired else 'valid until'} {_when(expires)}"
    sel = f"selectedType {selected}" if selected else "no auth type selected"
    note = _own_key_note(plan)
    if note is not None:
        extra = f"; also {login}" if login else ""
        return _ok(name, f"{note} (a private settings copy selects {GEMINI_KEY_TYPE}; your {ctx.short(settings_path)}: {sel}){extra}")
    if settings_problem:
        return Check(name, WARN, ctx.redact(settings_problem),
                     f"fix the JSON in {ctx.short(settings_path)}; Gemini CLI reports it at start")
    if selected == "vertex-ai":
        return Check(name, FAIL, f"{ctx.short(settings_path)}: {sel}: Vertex AI requests ignore agentwrap's endpoints and bypass it",
                     "export GEMINI_API_KEY (agentwrap then points Gemini CLI at itself), or use a profile with a key")
    if selected == GEMINI_KEY_TYPE:
        return Check(name, WARN, f"{ctx.short(settings_path)}: {sel}, but agentwrap sees no GEMINI_API_KEY / GOOGLE_API_KEY "
                     "(a key in a .env file is invisible to agentwrap and would go straight to Google)",
                     "export GEMINI_API_KEY in the shell that runs agentwrap")
    if creds_problem:
        return Check(name, WARN, ctx.redact(creds_problem), "run `gemini` and log in again (Login with Google)")
    if not login:
        return Check(name, WARN, f"no key in GEMINI_API_KEY / GOOGLE_API_KEY and no {ctx.short(creds_path)}; {sel}",
                     "export GEMINI_API_KEY, or run `gemini` and choose Login with Google")
    detail = f"{login}; {sel}"
    if plan.profile is not None and not plan.native:
        return Check(name, WARN, detail + f': with a Google login Gemini CLI speaks Code Assist, which profile "{plan.profile.name}" '
                     "backends do not serve (agentwrap forwards it as pass-through)",
                     "export GEMINI_API_KEY, or give the profile's gemini backend an api_key_env")
    if expired and not refreshable:
        return Check(name, WARN, detail + " and no refresh token", "run `gemini` and log in again (Login with Google)")
    if expired:
        detail += " (normal: Google tokens last an hour; Gemini CLI refreshes it)"
    return _ok(name, detail + "; its Code Assist traffic goes through agentwrap as pass-through")


# -- bypasses ------------------------------------------------------------------------------------------


def _claude_settings_files(ctx: Context) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = [("user", _claude_dir(ctx) / "settings.json")]
    here = ctx.cwd.absolute()
    for d in (here, *here.parents):
        for fname in ("settings.json", "settings.local.json"):
            files.append(("project", d / ".claude" / fname))
        if (d / ".git").exists():
            break
    files += [("managed", p) for p in ctx.claude_managed_settings]
    seen: set[Path] = set()
    out = []
    for kind, path in files:
        try:
            key = path.resolve()
        except OSError:
            key = path
        if key not in seen:
            seen.add(key)
            out.append((kind, path))
    return out


def check_claude_settings(ctx: Context) -> list[Check]:
    """Claude Code settings files whose `env` block would override what agentwrap sets."""
    rows: list[Check] = []
    checked = 0
    for kind, path in _claude_settings_files(ctx):
        data, problem = _read_json(path)
        if problem:
            rows.append(Check(f"claude settings {ctx.short(path)}", WARN, ctx.redact(problem) + " (Claude Code ignores it)",
                              f"fix the JSON in {ctx.short(path)}"))
            continue
        if data is None:
            continue
        checked += 1
        env = data.get("env") if isinstance(data, dict) else None
        if not isinstance(env, dict):
            continue
        name = f"claude settings {ctx.short(path)}"
        bypass = [v for v in CLAUDE_BYPASS_VARS if env.get(v) not in (None, "", "0", "false")]
        keys = [v for v in CLAUDE_KEY_VARS if isinstance(env.get(v), str) and env.get(v)]

        def fix(variables: list[str]) -> str:
            names = " and ".join(variables)
            if kind == "managed":
                return f"ask your administrator to remove {names} from {path}"
            return f"delete {names} from the env block of {ctx.short(path)} (agentwrap sets what the agent needs per session)"

        if bypass:
            shown = ", ".join(
                f"{v}={_url_host(str(env[v]))}" if v == "ANTHROPIC_BASE_URL" else f"{v}={env[v]}" for v in bypass
            )
            rows.append(Check(name, FAIL, f"{kind} settings env sets {shown}: Claude Code sends its requests there, past agentwrap",
                              fix(bypass)))
        if keys:
            shown = ", ".join(f"{v} {mask_key(str(env[v]))}" for v in keys)
            rows.append(Check(name, WARN, f"{kind} settings env sets {shown}: Claude Code sends that key instead of the one "
                              "agentwrap gives it (agentwrap replaces it upstream in key mode, passes it on otherwise)",
                              fix(keys)))
    for v in ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"):
        if ctx.env.get(v) not in (None, "", "0", "false"):
            rows.append(Check(f"claude environment {v}", FAIL, f"{v}={ctx.env[v]} in your environment: Claude Code talks to "
                              "the cloud provider directly, past agentwrap", f"unset {v} when running agentwrap claude"))
    if not rows:
        rows.append(_ok("claude settings", f"no settings env sets ANTHROPIC_BASE_URL, a key or a cloud switch "
                        f"({checked} file{'s' if checked != 1 else ''} read: user, project, managed)"))
    return rows


def _gemini_pin_check(name: str, where: str, settings: Any, plan: AgentPlan, remedy: str) -> Check:
    selected, enforced = _gemini_auth(settings)
    pins = [f"{k}={v}" for k, v in (("selectedType", selected), ("enforcedType", enforced)) if v]
    if not pins:
        return _ok(name, f"{where}: no auth type pinned")
    others = [v for v in (selected, enforced) if v and v != GEMINI_KEY_TYPE]
    if not others:
        return _ok(name, f"{where}: {', '.join(pins)} (what agentwrap selects)")
    if plan.key_mode:
        return Check(name, FAIL, f"{where}: {', '.join(pins)} beats agentwrap's settings, so Gemini CLI ignores the base "
                     "URL agentwrap gives it and goes past it", remedy)
    if all(v in GEMINI_LOGIN_TYPES for v in others):
        return _ok(name, f"{where}: {', '.join(pins)}: a Google login, which agentwrap forwards as pass-through; "
                   "a profile with a key would be overridden")
    return Check(name, FAIL, f"{where}: {', '.join(pins)}: this auth type ignores agentwrap's endpoints",
                 remedy)


def check_gemini_system_settings(ctx: Context, plan: AgentPlan) -> Check:
    """A system settings file beats the user settings agentwrap overrides through its shadow home."""
    name = "gemini system settings"
    configured = ctx.env.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH")
    path = ctx.gemini_system_settings or (Path(configured) if configured else _default_gemini_system())
    data, problem = _read_json(path)
    if problem:
        return Check(name, WARN, problem, f"fix or remove {path}")
    if data is None:
        return _ok(name, f"no {path}")
    ignored = ctx.gemini_system_check(path)
    if ignored:
        return _ok(name, f"{path} is ignored by Gemini CLI: {ignored}")
    return _gemini_pin_check(name, f"{path} (system)", data, plan, f"ask your administrator to remove security.auth from {path}")


def check_gemini_workspace_settings(ctx: Context, plan: AgentPlan) -> Check:
    """`.gemini/settings.json` in the working directory beats user settings in a trusted folder."""
    name = "gemini workspace settings"
    path = ctx.cwd / ".gemini" / "settings.json"
    if path.absolute() == (_gemini_dir(ctx) / "settings.json").absolute():
        return _ok(name, "the working directory is your home: no workspace settings")
    data, problem = _read_json(path)
    if problem:
        return Check(name, WARN, problem, f"fix the JSON in {ctx.short(path)}")
    if data is None:
        return _ok(name, f"no {ctx.short(path)}")
    return _gemini_pin_check(name, f"{ctx.short(path)} (workspace, when the folder is trusted)", data, plan,
                             f"remove security.auth from {ctx.short(path)}")


def _codex_config(ctx: Context) -> tuple[dict | None, str | None]:
    path = _codex_home(ctx.env) / "config.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {ctx.short(path)}: {getattr(exc, 'strerror', None) or exc}"
    except tomllib.TOMLDecodeError as exc:
        return None, f"{ctx.short(path)} is not valid TOML ({exc})"


def _codex_config_value(ctx: Context, key: str) -> Any:
    data, _ = _codex_config(ctx)
    return data.get(key) if data else None


def check_codex_config(ctx: Context) -> list[Check]:
    """Codex config.toml: a profile's model_provider beats agentwrap's root-level `-c` flags."""
    from agentwrap.agents.codex import PROVIDER_ID

    path = _codex_home(ctx.env) / "config.toml"
    where = ctx.short(path)
    data, problem = _codex_config(ctx)
    if problem:
        return [Check("codex config", FAIL, problem + ": Codex refuses to start", f"fix the syntax in {where}")]
    if data is None:
        return [_ok("codex config", f"no {where}")]
    rows: list[Check] = []
    profiles = data.get("profiles") if isinstance(data.get("profiles"), dict) else {}
    default = data.get("profile") if isinstance(data.get("profile"), str) else None
    for pname, pdata in profiles.items():
        provider = pdata.get("model_provider") if isinstance(pdata, dict) else None
        if not isinstance(provider, str) or provider == PROVIDER_ID:
            continue
        if pname == default:
            rows.append(Check(f"codex config [profiles.{pname}]", FAIL,
                              f'{where}: profile = "{pname}" selects [profiles.{pname}] with model_provider = "{provider}", '
                              "which beats agentwrap's -c flags: Codex would go past agentwrap",
                              f'remove profile = "{pname}" from {where}, or model_provider from [profiles.{pname}]'))
        else:
            rows.append(Check(f"codex config [profiles.{pname}]", WARN,
                              f'{where}: [profiles.{pname}] sets model_provider = "{provider}"; `codex --profile {pname}` '
                              "would beat agentwrap's -c flags and go past agentwrap",
                              f"do not pass --profile {pname} through agentwrap, or remove model_provider from [profiles.{pname}]"))
    providers = data.get("model_providers") if isinstance(data.get("model_providers"), dict) else {}
    if PROVIDER_ID in providers:
        rows.append(Check("codex config [model_providers.agentwrap]", WARN,
                          f"{where} defines [model_providers.{PROVIDER_ID}], agentwrap's own provider id; its other keys "
                          "merge into agentwrap's wiring", f"rename [model_providers.{PROVIDER_ID}] in {where}"))
    if not rows:
        root = data.get("model_provider")
        extra = f'; model_provider = "{root}" is overridden by agentwrap\'s -c flags' if isinstance(root, str) else ""
        rows.append(_ok("codex config", f"{where}: no profile pins a model provider{extra}"))
    return rows


# -- profile and keys ---------------------------------------------------------------------------------------


def check_profile(ctx: Context, plan: AgentPlan) -> Check:
    name = f"{plan.spec.name} profile"
    if plan.error:
        return Check(name, FAIL, ctx.redact(plan.error),
                     "fix what the message names (agentwrap profiles show NAME prints the resolved profile), "
                     "then rerun agentwrap doctor")
    assert plan.profile is not None
    if plan.native:
        why = plan.reason.removesuffix(": native pass-through")
        return _ok(name, f"none: native pass-through to {plan.profile.backends['native'].base_url} ({why})")
    return _ok(name, f'"{plan.profile.name}" ({plan.profile.source_kind}): {plan.reason}')


def check_backend_key(ctx: Context, plan: AgentPlan, backend: BackendConfig) -> Check:
    name = f"{plan.spec.name} backend {backend.name}"
    if backend.type == "scripted":
        return _ok(name, f"scripted ({ctx.short(backend.script or '?')}): no key needed")
    target = f"{backend.protocol} at {backend.base_url}"
    if backend.protocol and backend.protocol != plan.spec.protocol:
        target += f" (translated from {plan.spec.protocol})"
    if backend.has_key_source:
        key, problem = _backend_key(plan, backend, ctx.env)
        if problem:
            if backend.api_key_env:
                fix = f"export {backend.api_key_env}=... in the shell that runs agentwrap, or change api_key_env in {plan.profile.source}"
            else:
                fix = "make the command print the key (try it in a shell), or change api_key_cmd"
            return Check(name, FAIL, ctx.redact(problem), fix)
        source = f"${backend.api_key_env}" if backend.api_key_env else "api_key_cmd"
        return _ok(name, f"{target}: key from {source} ({mask_key(key or '')})")
    if plan.key_mode and plan.native_key is not None and backend.protocol == plan.spec.protocol:
        return _ok(name, f"{target}: your {plan.native_key.variable} ({mask_key(plan.native_key.value)})")
    if plan.key_mode:
        if _is_loopback(backend.base_url):
            return _ok(name, f"{target}: no key (a local server)")
        return Check(name, WARN, f"{target}: agentwrap sends no key (the agent's own credentials are replaced in key mode)",
                     f"add api_key_env to [backends.{backend.name}] in {plan.profile.source} if the server needs a key")
    return _ok(name, f"{target}: no key needed here, the agent's own login passes through")


# -- online ----------------------------------------------------------------------------------------------


def _models_url(protocol: str, base_url: str) -> str:
    from agentwrap.protocols.endpoints import upstream_url

    if protocol == "anthropic_messages":
        return upstream_url(protocol, base_url, "/v1/models?limit=1000")
    if protocol == "gemini":
        return upstream_url(protocol, base_url, "/v1beta/models?pageSize=1000")
    return upstream_url(protocol, base_url, "/v1/models")


def _listed_models(protocol: str, doc: Any) -> list[str] | None:
    if not isinstance(doc, dict):
        return None
    if protocol == "gemini":
        items = doc.get("models")
        if not isinstance(items, list):
            return None
        names = []
        for m in items:
            if isinstance(m, dict):
                for key in ("name", "baseModelId"):
                    if isinstance(m.get(key), str):
                        names.append(m[key].removeprefix("models/"))
        return names
    items = doc.get("data")
    if not isinstance(items, list):
        return None
    return [m["id"] for m in items if isinstance(m, dict) and isinstance(m.get("id"), str)]


def _model_known(model: str, listed: list[str]) -> bool:
    """Exact, or an alias of a listed id (claude-sonnet-4-5 for claude-sonnet-4-5-20250929, qwen3 for qwen3:latest)."""
    bare = model.removeprefix("models/")
    return any(m == bare or m.startswith(bare + "-") or m.startswith(bare + ":") for m in listed)


@dataclass(slots=True)
class _Probe:
    name: str
    backend: BackendConfig
    header: tuple[str, str] | None
    source: str
    agents: list[str]
    models: list[str]


def _online_probes(ctx: Context, plans: list[AgentPlan]) -> tuple[list[_Probe], list[Check]]:
    """One probe per distinct http backend (same URL, protocol, key and headers = one request)."""
    probes: dict[tuple, _Probe] = {}
    rows: list[Check] = []
    for plan in plans:
        if plan.profile is None or plan.error:
            rows.append(Check(f"online {plan.spec.name}", SKIP, "no usable profile (see the profile row)",
                              "resolve the profile row above, then rerun with --online"))
            continue
        for backend in plan.backends:
            if backend.type != "http" or not backend.base_url or not backend.protocol:
                continue
            header, source = _upstream_credential(plan, backend, ctx.env)
            label = f"online {backend.name}" + (f" ({plan.spec.name})" if plan.native else "")
            if source == "missing":
                rows.append(Check(label, SKIP, "no key to test with (see the backend row)", "resolve the backend row above, then rerun with --online"))
                continue
            if source == "login":
                rows.append(Check(label, SKIP, f"{backend.base_url}: {plan.spec.name} uses its own login here; "
                                  "agentwrap never handles login tokens, so it cannot test them",
                                  "export the agent's API key to test it"))
                continue
            key = (backend.protocol, backend.base_url, header, backend.headers)
            probe = probes.get(key)
            if probe is None:
                probe = probes[key] = _Probe(label, backend, header, source, [], [])
            probe.agents.append(plan.spec.name)
            for route in plan.profile.routes:
                applies = route.when is None or route.when.agent in (None, plan.spec.name)
                if route.backend == backend.name and route.model and applies and route.model not in probe.models:
                    probe.models.append(route.model)
    return list(probes.values()), rows


def check_online(ctx: Context, probe: _Probe, timeout_s: float) -> Check:
    """One authenticated model-list request to one backend."""
    import httpx

    b = probe.backend
    name = probe.name
    url = _models_url(b.protocol or "", b.base_url or "")
    headers = {k: v for k, v in b.headers}
    headers["accept"] = "application/json"
    if b.protocol == "anthropic_messages":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    if probe.header is not None:
        headers[probe.header[0]] = probe.header[1]
    shown_url = url.split("?", 1)[0]
    keyed = f"key from {probe.source}" if probe.header is not None else "no key"
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
            response = client.get(url, headers=headers)
    except httpx.TimeoutException:
        return Check(name, FAIL, f"unreachable: GET {shown_url} timed out after {timeout_s:g} s",
                     f"check base_url and your network or proxy settings (HTTPS_PROXY); --timeout raises the limit")
    except httpx.HTTPError as exc:
        reason = ctx.redact(str(exc) or type(exc).__name__)[:160]
        return Check(name, FAIL, f"unreachable: GET {shown_url}: {reason}",
                     "check base_url in the profile and that the server is running")
    status = response.status_code
    if status in (401, 403):
        if probe.header is None:
            return Check(name, FAIL, f"key rejected: GET {shown_url} answered HTTP {status} to a request without a key",
                         f"the server wants a key: add api_key_env to [backends.{b.name}]")
        return Check(name, FAIL, f"key rejected: GET {shown_url} answered HTTP {status} ({keyed})",
                     f"check the key ({probe.source}) is valid for {_url_host(b.base_url or '')} and not expired or revoked")
    if status != 200:
        hint = " (OpenAI protocols include /v1 in base_url; Anthropic and Gemini do not)" if status == 404 else ""
        return Check(name, WARN, f"GET {shown_url} answered HTTP {status}{hint}",
                     "check base_url; the server may not serve a model list, which a session does not need")
    try:
        listed = _listed_models(b.protocol or "", response.json())
    except ValueError:
        listed = None
    if listed is None:
        return Check(name, WARN, f"GET {shown_url} answered 200 but not with a model list ({keyed})",
                     "check base_url points at the API root, not a web page")
    unknown = [m for m in probe.models if not _model_known(m, listed)]
    count = f"{len(listed)} model{'s' if len(listed) != 1 else ''}"
    detail = f"GET {shown_url}: 200, {count} ({keyed}; used by {', '.join(probe.agents)})"
    if unknown:
        return Check(name, WARN, detail + f"; route model {', '.join(repr(m) for m in unknown)} not in the list",
                     "check the route's model name against the provider's model list")
    if probe.models:
        detail += f"; route model {', '.join(repr(m) for m in probe.models)} listed"
    return _ok(name, detail)


# -- wire ------------------------------------------------------------------------------------------------------


def _offline_profile() -> tuple[Path, str]:
    """The built-in offline profile's path and the fixed start of its scripted answer."""
    from agentwrap.backends.scripted import ScriptedBackend
    from agentwrap.config.loader import builtin_profiles_dir, load_profile

    path = builtin_profiles_dir() / "offline.toml"
    profile = load_profile(str(path), env={})
    backend = next(b for b in profile.backends.values() if b.type == "scripted")
    script = ScriptedBackend.from_file(backend.script or "").script
    text = next(t.text for t in script.turns if t.text)
    return path, text.split("{", 1)[0].strip()


def _squash(text: str) -> str:
    return " ".join(text.split())


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the wire run's process group (agentwrap tidies up), SIGKILL after a grace period."""
    for sig, wait in ((signal.SIGTERM, WIRE_KILL_GRACE_S), (signal.SIGKILL, WIRE_KILL_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.communicate(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def check_wire(ctx: Context, spec: AgentSpec, timeout_s: float, suspects: list[Check]) -> Check:
    """Run the real agent through agentwrap against the built-in scripted backend.

    Only agentwrap's in-process scripted backend produces the offline script's
    answer, so finding it in the agent's output proves the model call went
    through the proxy. No provider is contacted and no tokens are spent.
    """
    name = f"{spec.name} wire"
    if not shutil.which(spec.binary, path=ctx.env.get("PATH")):
        return Check(name, FAIL, f"{spec.binary} not found on PATH", f"install it: {spec.install_hint}")
    try:
        profile_path, expected = _offline_profile()
    except (ConfigError, OSError, StopIteration) as exc:
        return Check(name, FAIL, f"the built-in offline profile is unusable: {exc}", "reinstall agentwrap")
    import agentwrap

    env = dict(ctx.env)
    package_root = str(Path(agentwrap.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    if spec.name == "claude":
        env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"  # no bootstrap calls to api.anthropic.com
    argv = [sys.executable, "-m", "agentwrap", spec.name, "--profile", str(profile_path), "--no-capture", "-q",
            "--", *WIRE_ARGS[spec.name]]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=ctx.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    except OSError as exc:
        return Check(name, FAIL, f"cannot start {sys.executable}: {exc.strerror or exc}", "reinstall agentwrap")
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        return Check(name, FAIL, f"{spec.name} did not finish within {timeout_s:g} s through agentwrap (offline profile)",
                     _wire_cause(spec, suspects, default=f"run `agentwrap {spec.name} --profile offline -- "
                                 f"{' '.join(WIRE_ARGS[spec.name])}` and watch where it stops"))
    elapsed = time.monotonic() - started
    last = next((line.strip() for line in reversed(err.splitlines()) if line.strip()), "")
    last = ctx.redact(last)[:200]
    found = _squash(expected) in _squash(out)
    if proc.returncode == 0 and found:
        return _ok(name, f"{spec.name} answered from agentwrap's scripted backend in {elapsed:.1f} s: "
                   "its model calls go through the proxy")
    if proc.returncode == 127:
        return Check(name, FAIL, f"agentwrap could not find {spec.binary}: {last}", f"install it: {spec.install_hint}")
    if proc.returncode == 2 and last.startswith("agentwrap:"):
        return Check(name, FAIL, last, "fix what the message names, then rerun agentwrap doctor --wire")
    if proc.returncode == 0:
        return Check(name, FAIL, f"{spec.name} exited 0, but its answer did not come from agentwrap's scripted backend: "
                     "its model requests went somewhere else", _wire_cause(spec, suspects))
    return Check(name, FAIL, f"{spec.name} exited {proc.returncode} through agentwrap: {last or 'no message on stderr'}",
                 _wire_cause(spec, suspects))


_WIRE_CAUSES = {
    "claude": "likely a settings.json env block (ANTHROPIC_BASE_URL) or managed settings; see the claude settings rows",
    "codex": "likely a config.toml profile with another model_provider, or a broken Codex install; see the codex config rows",
    "gemini": "likely a system or workspace settings file pinning another auth type; see the gemini settings rows",
}


def _wire_cause(spec: AgentSpec, suspects: list[Check], default: str | None = None) -> str:
    bad = [c for c in suspects if c.status in (FAIL, WARN)]
    if bad:
        return f"likely cause: {bad[0].name}: {bad[0].fix}"
    return default or _WIRE_CAUSES[spec.name]


# -- the run ------------------------------------------------------------------------------------------------------


def _agent_checks(ctx: Context, plan: AgentPlan, *, required: bool) -> tuple[list[Check], list[Check]]:
    """(rows, bypass rows) for one agent."""
    spec = plan.spec
    rows = [check_installed(ctx, spec, required=required)]
    if spec.name == "claude":
        rows.append(check_claude_login(ctx, plan))
        bypass = check_claude_settings(ctx)
    elif spec.name == "codex":
        rows.append(check_codex_login(ctx, plan))
        bypass = check_codex_config(ctx)
    else:
        rows.append(check_gemini_login(ctx, plan))
        bypass = [check_gemini_system_settings(ctx, plan), check_gemini_workspace_settings(ctx, plan)]
    rows += bypass
    rows.append(check_profile(ctx, plan))
    if not plan.error and not plan.native:  # the login row covers the native pass-through
        rows += [check_backend_key(ctx, plan, b) for b in plan.backends]
    return rows, bypass


def run_checks(opts: DoctorOptions, ctx: Context | None = None, *, progress: Callable[[str], None] | None = None) -> list[Check]:
    """Every check `opts` asks for, in report order."""
    ctx = ctx or Context.current()
    note = progress or (lambda message: None)
    rows = [check_loopback(), check_capture_dir(ctx), check_config_dir(ctx), check_state_dir(ctx)]
    plans: list[AgentPlan] = []
    suspects: dict[str, list[Check]] = {}
    for agent in opts.agents:
        plan = plan_agent(ctx, AGENTS[agent], opts.profile)
        plans.append(plan)
        agent_rows, suspects[agent] = _agent_checks(ctx, plan, required=opts.agents_named)
        rows += agent_rows
    if opts.online:
        probes, skipped = _online_probes(ctx, plans)
        rows += skipped
        for probe in probes:
            note(f"checking {probe.backend.name} at {probe.backend.base_url}")
            rows.append(check_online(ctx, probe, opts.timeout_s))
    if opts.wire:
        for agent in opts.agents:
            spec = AGENTS[agent]
            if not opts.agents_named and not shutil.which(spec.binary, path=ctx.env.get("PATH")):
                rows.append(Check(f"{agent} wire", SKIP, f"{spec.binary} is not installed", f"install it: {spec.install_hint}"))
                continue
            note(f"running {agent} through agentwrap (up to {opts.wire_timeout_s:g} s)")
            rows.append(check_wire(ctx, spec, opts.wire_timeout_s, suspects.get(agent, [])))
    return rows
