"""Claude Code rows: its login, and settings files whose `env` block matters to agentwrap.

What Claude Code's settings mean for a session (which endpoint it chains to,
when agentwrap adds `--settings`) is decided in `agents/claude.py`; these rows
only report it.
"""

from __future__ import annotations

import sys

from agentwrap.agents.claude import BYPASS_VARIABLES, KEY_VARIABLES, claude_dir, settings_files
from agentwrap.doctor.base import FAIL, WARN, Check, Context, dig, expiry_ms, mask_key, ok, read_json, url_host, when
from agentwrap.session.plan import SessionPlan

__all__ = ["check_claude_login", "check_claude_settings", "own_key_note"]

_KEY_NAMES = tuple(v for v, _ in KEY_VARIABLES)
_CLOUD_SWITCHES = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")


def own_key_note(plan: SessionPlan) -> str | None:
    """Why the agent's own login does not matter for this plan, or None when it does."""
    key = plan.native.key
    if key is not None:
        return f"{key.variable} {mask_key(key.value)} is set: agentwrap runs {plan.spec.name} in key mode"
    if plan.key_mode and plan.profile is not None:
        return (f'no backend of profile "{plan.profile.name}" uses your {plan.spec.name} login: agentwrap runs '
                f"{plan.spec.name} in key mode (it gets the session secret as its key)")
    return None


def check_claude_login(ctx: Context, plan: SessionPlan) -> Check:
    name = "claude login"
    path = claude_dir(ctx.env) / ".credentials.json"
    data, problem = read_json(path)
    oauth = dig(data, "claudeAiOauth")
    login = ""
    expired = False
    if isinstance(oauth, dict):
        expires = expiry_ms(oauth.get("expiresAt"))
        kind = oauth.get("subscriptionType")
        login = f"Claude.ai login{f' ({kind})' if isinstance(kind, str) and kind else ''} in {ctx.short(path)}"
        if expires is not None:
            expired = expires <= ctx.now
            login += f", token {'expired' if expired else 'valid until'} {when(expires)}"
    elif problem:
        login = problem
    note = own_key_note(plan)
    if note is not None:
        return ok(name, note + (f"; also {login}" if login else ""))
    if problem:
        return Check(name, WARN, ctx.redact(problem), "run `claude /login` to rewrite it, or export ANTHROPIC_API_KEY")
    if not login:
        where = " (on macOS Claude Code keeps it in the Keychain)" if sys.platform == "darwin" else ""
        return Check(name, WARN, f"no key in ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN and no {ctx.short(path)}{where}",
                     "run `claude /login`, export ANTHROPIC_API_KEY, or use a profile with a key (agentwrap profiles list)")
    if expired:
        return Check(name, WARN, login + " (Claude Code refreshes it at start if the refresh token still works)",
                     "if Claude Code asks you to log in, run `claude /login`")
    return ok(name, login + "; agentwrap passes it through")


def check_claude_settings(ctx: Context) -> list[Check]:
    """Claude Code settings files whose `env` block sets what agentwrap sets, or a cloud switch."""
    rows: list[Check] = []
    checked = 0
    for kind, path in settings_files(ctx.env, ctx.cwd, ctx.claude_managed_settings):
        data, problem = read_json(path)
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
        bypass = [v for v in BYPASS_VARIABLES if env.get(v) not in (None, "", "0", "false")]
        keys = [v for v in _KEY_NAMES if isinstance(env.get(v), str) and env.get(v)]
        cloud = [v for v in bypass if v in _CLOUD_SWITCHES]
        base = "ANTHROPIC_BASE_URL" in bypass

        def fix(variables: list[str]) -> str:
            names = " and ".join(variables)
            if kind == "managed":
                return f"ask your administrator to remove {names} from {path}"
            return f"delete {names} from the env block of {ctx.short(path)}"

        if cloud:
            shown = ", ".join(f"{v}={env[v]}" for v in cloud)
            rows.append(Check(name, FAIL, f"{kind} settings env sets {shown}: Claude Code talks to the cloud provider "
                              "directly, past agentwrap", fix(cloud)))
        if base and kind == "managed":
            rows.append(Check(name, FAIL, f"managed settings env sets ANTHROPIC_BASE_URL={url_host(str(env['ANTHROPIC_BASE_URL']))}: "
                              "it beats everything agentwrap can set, so Claude Code sends its requests there, past agentwrap",
                              fix(["ANTHROPIC_BASE_URL"])))
        elif base:
            rows.append(ok(name, f"{kind} settings env sets ANTHROPIC_BASE_URL={url_host(str(env['ANTHROPIC_BASE_URL']))}: "
                           "agentwrap forwards there and keeps Claude Code on its proxy with a --settings file of its own"))
        if keys and kind == "managed":
            shown = ", ".join(f"{v} {mask_key(str(env[v]))}" for v in keys)
            rows.append(Check(name, WARN, f"managed settings env sets {shown}: Claude Code sends that key instead of the one "
                              "agentwrap gives it (agentwrap replaces it upstream in key mode, passes it on otherwise)", fix(keys)))
        elif keys:
            shown = ", ".join(f"{v} {mask_key(str(env[v]))}" for v in keys)
            rows.append(ok(name, f"{kind} settings env sets {shown}: agentwrap sends it upstream to the endpoint it was "
                           "configured for and gives Claude Code the session secret instead"))
    for v in _CLOUD_SWITCHES:
        if ctx.env.get(v) not in (None, "", "0", "false"):
            rows.append(Check(f"claude environment {v}", FAIL, f"{v}={ctx.env[v]} in your environment: Claude Code talks to "
                              "the cloud provider directly, past agentwrap", f"unset {v} when running agentwrap claude"))
    if not rows:
        rows.append(ok("claude settings", f"no settings env sets ANTHROPIC_BASE_URL, a key or a cloud switch "
                       f"({checked} file{'s' if checked != 1 else ''} read: user, project, managed)"))
    return rows
