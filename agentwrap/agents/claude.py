"""Claude Code: Anthropic Messages at ANTHROPIC_BASE_URL (path prefix kept).

Claude Code applies the `env` block of its settings files on top of the
process environment, in this order (later wins): user
(`~/.claude/settings.json`, or `$CLAUDE_CONFIG_DIR`), project
(`.claude/settings.json`), local (`.claude/settings.local.json`), the
`--settings` flag, managed settings. Observed with Claude Code 2.1.332: a user
settings `env.ANTHROPIC_BASE_URL` beats the variable agentwrap sets, and a
`--settings FILE` beats the user's settings. So:

- the endpoint and key the user configured for Claude Code (process
  environment, then the settings `env` blocks) are its native upstream, which
  agentwrap chains to;
- when a settings file of the user's sets a variable agentwrap must set, the
  wiring adds `--settings FILE` (a private temporary file; argv carries only
  its path, never the secret) so agentwrap's values win. Managed settings
  still win over that; `agentwrap doctor` reports them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from agentwrap.agents.base import AgentSpec, NativeUpstream, Resume, WireContext, Wiring, header_value, key_from, session_id_like

__all__ = ["CLAUDE", "KEY_VARIABLES", "BYPASS_VARIABLES", "claude_dir", "settings_files", "settings_env", "managed_settings_paths"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
KEY_VARIABLES = (("ANTHROPIC_API_KEY", "x-api-key"), ("ANTHROPIC_AUTH_TOKEN", "bearer"))
# Variables of a settings `env` block that send Claude Code past a proxy.
BYPASS_VARIABLES = ("ANTHROPIC_BASE_URL", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")
# What agentwrap sets for Claude Code; a user settings block setting one of them needs `--settings`.
_WIRED = ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")


def claude_dir(env: Mapping[str, str]) -> Path:
    configured = env.get("CLAUDE_CONFIG_DIR")
    if configured:
        return Path(os.path.expanduser(configured))
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".claude"


def managed_settings_paths() -> tuple[Path, ...]:
    if sys.platform == "darwin":
        return (Path("/Library/Application Support/ClaudeCode/managed-settings.json"),)
    return (Path("/etc/claude-code/managed-settings.json"),)


def settings_files(env: Mapping[str, str], cwd: str | Path, managed: tuple[Path, ...] | None = None) -> list[tuple[str, Path]]:
    """(kind, path) of every settings file Claude Code may read, lowest precedence first:
    user, project and local (from `cwd` up to its git root), managed."""
    files: list[tuple[str, Path]] = [("user", claude_dir(env) / "settings.json")]
    here = Path(cwd).absolute()
    project: list[tuple[str, Path]] = []
    for d in (here, *here.parents):
        project.append(("project", d / ".claude" / "settings.json"))
        project.append(("local", d / ".claude" / "settings.local.json"))
        if (d / ".git").exists():
            break
    files += reversed(project)  # nearer directories win
    files += [("managed", p) for p in (managed_settings_paths() if managed is None else managed)]
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


def _env_block(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    block = data.get("env") if isinstance(data, dict) else None
    if not isinstance(block, dict):
        return {}
    return {k: v for k, v in block.items() if isinstance(k, str) and isinstance(v, str)}


def settings_env(env: Mapping[str, str], cwd: str | Path, *, managed: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """(variables, where each came from) of the settings `env` blocks Claude Code applies,
    merged in precedence order (managed settings only when `managed`)."""
    merged: dict[str, str] = {}
    where: dict[str, str] = {}
    for kind, path in settings_files(env, cwd, None if managed else ()):
        for name, value in _env_block(path).items():
            merged[name] = value
            where[name] = f"the env block of {path}"
    return merged, where


def _native(env: Mapping[str, str], cwd: str) -> NativeUpstream:
    block, where = settings_env(env, cwd)
    effective = {**env, **block}
    key = key_from(effective, KEY_VARIABLES)
    base = effective.get("ANTHROPIC_BASE_URL", "").strip().rstrip("/")
    if base:
        source = where.get("ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL in your environment")
    else:
        base, source = DEFAULT_BASE_URL, "the default"
    return NativeUpstream(base, source, key, login="" if key else "your Claude login")


def _wire(w: WireContext) -> Wiring:
    # The secret is the base URL's first path segment: Claude Code keeps a path prefix,
    # and its own OAuth bearer must pass through untouched in login mode.
    wired = {"ANTHROPIC_BASE_URL": f"{w.origin}/{w.secret}"}
    out = Wiring()
    if w.key_mode:
        # ANTHROPIC_AUTH_TOKEN (sent as Bearer) rather than ANTHROPIC_API_KEY: interactive
        # Claude Code asks the user to approve every new ANTHROPIC_API_KEY value.
        wired["ANTHROPIC_AUTH_TOKEN"] = w.secret
        out.env_unset.append("ANTHROPIC_API_KEY")
    out.env_set.update(wired)
    block, _ = settings_env(w.env, w.cwd)
    clashing = [name for name in _WIRED if name in block]
    if clashing and not any(a == "--settings" or a.startswith("--settings=") for a in w.args):
        # The user's settings would beat the environment: a flag-level settings file beats them.
        override = dict(wired)
        if "ANTHROPIC_API_KEY" in block and w.key_mode:
            override["ANTHROPIC_API_KEY"] = ""  # their key goes upstream from agentwrap, not from the agent
        path = os.path.join(w.tmpdir, "claude-settings.json")
        out.files[path] = json.dumps({"env": override})
        out.argv_prefix += ["--settings", path]
    return out


# Resuming (observed with Claude Code 2.1.332): every request carries the session's id in
# `x-claude-code-session-id` (and in `metadata.user_id`); the session is saved as
# `<config dir>/projects/<cwd, munged>/<id>.jsonl`; `claude --resume ID` resumes it and
# Claude Code prints that command at exit. `/clear` starts a new id: the newest wins.
def _session_of(headers) -> str | None:
    return header_value(headers, b"x-claude-code-session-id")


def _saved_session(env: Mapping[str, str], cwd: str, seen: list[str], since: float) -> str | None:
    projects = claude_dir(env) / "projects"
    for sid in seen:
        if session_id_like(sid) and any(projects.glob(f"*/{sid}.jsonl")):
            return sid
    return None


RESUME = Resume(from_request=_session_of, saved=_saved_session, args=lambda sid: ["--resume", sid])


CLAUDE = AgentSpec(
    name="claude",
    binary="claude",
    npm_package="@anthropic-ai/claude-code",
    protocol="anthropic_messages",
    native_base_url=DEFAULT_BASE_URL,
    key_variables=KEY_VARIABLES,
    wire=_wire,
    native=_native,
    resume=RESUME,
)
