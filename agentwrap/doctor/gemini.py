"""Gemini CLI rows: its login, and settings files that pin an auth type past agentwrap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentwrap.agents.gemini import API_KEY_AUTH_TYPE, LOGIN_AUTH_TYPES, real_gemini_dir
from agentwrap.doctor.base import FAIL, WARN, Check, Context, default_gemini_system, dig, expiry_ms, gemini_system_file_problem, ok, read_json, when
from agentwrap.doctor.claude import own_key_note
from agentwrap.session.plan import SessionPlan

__all__ = ["check_gemini_login", "check_gemini_system_settings", "check_gemini_workspace_settings", "gemini_system_file_problem"]


def _gemini_auth(settings: Any) -> tuple[str | None, str | None]:
    """(selectedType, enforcedType) of a Gemini CLI settings document (legacy key too)."""
    selected = dig(settings, "security", "auth", "selectedType") or dig(settings, "selectedAuthType")
    enforced = dig(settings, "security", "auth", "enforcedType")
    return (selected if isinstance(selected, str) else None, enforced if isinstance(enforced, str) else None)


def check_gemini_login(ctx: Context, plan: SessionPlan) -> Check:
    name = "gemini login"
    gdir = Path(real_gemini_dir(ctx.env))
    settings_path = gdir / "settings.json"
    settings, settings_problem = read_json(settings_path)
    selected, _ = _gemini_auth(settings)
    creds_path = gdir / "oauth_creds.json"
    creds, creds_problem = read_json(creds_path)
    login = ""
    refreshable = False
    expired = False
    if isinstance(creds, dict):
        refreshable = bool(creds.get("refresh_token"))
        expires = expiry_ms(creds.get("expiry_date"))
        login = f"Google login in {ctx.short(creds_path)}"
        if expires is not None:
            expired = expires <= ctx.now
            login += f", access token {'expired' if expired else 'valid until'} {when(expires)}"
    sel = f"selectedType {selected}" if selected else "no auth type selected"
    note = own_key_note(plan)
    if note is not None:
        extra = f"; also {login}" if login else ""
        return ok(name, f"{note} (a private settings copy selects {API_KEY_AUTH_TYPE}; your {ctx.short(settings_path)}: {sel}){extra}")
    if settings_problem:
        return Check(name, WARN, ctx.redact(settings_problem),
                     f"fix the JSON in {ctx.short(settings_path)}; Gemini CLI reports it at start")
    if selected == "vertex-ai":
        return Check(name, FAIL, f"{ctx.short(settings_path)}: {sel}: Vertex AI requests ignore agentwrap's endpoints and bypass it",
                     "export GEMINI_API_KEY (agentwrap then points Gemini CLI at itself), or use a profile with a key")
    if selected == API_KEY_AUTH_TYPE:
        return Check(name, WARN, f"{ctx.short(settings_path)}: {sel}, but agentwrap sees no GEMINI_API_KEY / GOOGLE_API_KEY "
                     "(a key in a .env file is invisible to agentwrap and would go straight to Google)",
                     "export GEMINI_API_KEY in the shell that runs agentwrap")
    if creds_problem:
        return Check(name, WARN, ctx.redact(creds_problem), "run `gemini` and log in again (Login with Google)")
    if not login:
        return Check(name, WARN, f"no key in GEMINI_API_KEY / GOOGLE_API_KEY and no {ctx.short(creds_path)}; {sel}",
                     "export GEMINI_API_KEY, or run `gemini` and choose Login with Google")
    detail = f"{login}; {sel}"
    if plan.profile is not None and not plan.native_profile:
        return Check(name, WARN, detail + f': with a Google login Gemini CLI speaks Code Assist, which profile "{plan.profile.name}" '
                     "backends do not serve (agentwrap forwards it as pass-through)",
                     "export GEMINI_API_KEY, or give the profile's gemini backend an api_key_env")
    if expired and not refreshable:
        return Check(name, WARN, detail + " and no refresh token", "run `gemini` and log in again (Login with Google)")
    if expired:
        detail += " (normal: Google tokens last an hour; Gemini CLI refreshes it)"
    return ok(name, detail + "; its Code Assist traffic goes through agentwrap as pass-through")


def _gemini_pin_check(name: str, where: str, settings: Any, plan: SessionPlan, remedy: str) -> Check:
    selected, enforced = _gemini_auth(settings)
    pins = [f"{k}={v}" for k, v in (("selectedType", selected), ("enforcedType", enforced)) if v]
    if not pins:
        return ok(name, f"{where}: no auth type pinned")
    others = [v for v in (selected, enforced) if v and v != API_KEY_AUTH_TYPE]
    if not others:
        return ok(name, f"{where}: {', '.join(pins)} (what agentwrap selects)")
    if plan.key_mode:
        return Check(name, FAIL, f"{where}: {', '.join(pins)} beats agentwrap's settings, so Gemini CLI ignores the base "
                     "URL agentwrap gives it and goes past it", remedy)
    if all(v in LOGIN_AUTH_TYPES for v in others):
        return ok(name, f"{where}: {', '.join(pins)}: a Google login, which agentwrap forwards as pass-through; "
                   "a profile with a key would be overridden")
    return Check(name, FAIL, f"{where}: {', '.join(pins)}: this auth type ignores agentwrap's endpoints",
                 remedy)


def check_gemini_system_settings(ctx: Context, plan: SessionPlan) -> Check:
    """A system settings file beats the user settings agentwrap overrides through its shadow home."""
    name = "gemini system settings"
    configured = ctx.env.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH")
    path = ctx.gemini_system_settings or (Path(configured) if configured else default_gemini_system())
    data, problem = read_json(path)
    if problem:
        return Check(name, WARN, problem, f"fix or remove {path}")
    if data is None:
        return ok(name, f"no {path}")
    ignored = ctx.gemini_system_check(path)
    if ignored:
        return ok(name, f"{path} is ignored by Gemini CLI: {ignored}")
    return _gemini_pin_check(name, f"{path} (system)", data, plan, f"ask your administrator to remove security.auth from {path}")


def check_gemini_workspace_settings(ctx: Context, plan: SessionPlan) -> Check:
    """`.gemini/settings.json` in the working directory beats user settings in a trusted folder."""
    name = "gemini workspace settings"
    path = ctx.cwd / ".gemini" / "settings.json"
    if path.absolute() == (Path(real_gemini_dir(ctx.env)) / "settings.json").absolute():
        return ok(name, "the working directory is your home: no workspace settings")
    data, problem = read_json(path)
    if problem:
        return Check(name, WARN, problem, f"fix the JSON in {ctx.short(path)}")
    if data is None:
        return ok(name, f"no {ctx.short(path)}")
    return _gemini_pin_check(name, f"{ctx.short(path)} (workspace, when the folder is trusted)", data, plan,
                             f"remove security.auth from {ctx.short(path)}")
