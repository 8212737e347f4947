"""Codex rows: its login (auth.json), and config.toml settings that beat agentwrap's wiring.

Which upstream a Codex login means is decided in `agents/codex.py` (through
the session plan); these rows only report it.
"""

from __future__ import annotations

import tomllib
from typing import Any

from agentwrap.agents.codex import PROVIDER_ID, codex_home, login_kind
from agentwrap.doctor.base import FAIL, WARN, Check, Context, jwt_exp, mask_key, ok, read_json, when
from agentwrap.doctor.claude import own_key_note
from agentwrap.session.plan import SessionPlan

__all__ = ["check_codex_login", "check_codex_config"]


def check_codex_login(ctx: Context, plan: SessionPlan) -> Check:
    name = "codex login"
    path = codex_home(ctx.env) / "auth.json"
    data, problem = read_json(path)
    note = own_key_note(plan)
    if problem:
        if note is not None:
            return ok(name, f"{note}; {problem}")
        return Check(name, FAIL, ctx.redact(problem), "run `codex login` to rewrite it, or export OPENAI_API_KEY")
    if not isinstance(data, dict):
        if note is not None:
            return ok(name, note)
        store = _codex_config_value(ctx, "cli_auth_credentials_store")
        if isinstance(store, str) and store != "file":
            return Check(name, WARN, "no key variable, and Codex keeps its login in the OS keyring "
                         f'(cli_auth_credentials_store = "{store}"): agentwrap cannot see whether you are logged in',
                         "run `codex login status`; or export OPENAI_API_KEY")
        return Check(name, WARN, f"no key in CODEX_API_KEY / OPENAI_API_KEY and no {ctx.short(path)}",
                     "run `codex login`, export OPENAI_API_KEY, or use a profile with a key (agentwrap profiles list)")
    kind = login_kind(data) or "unknown"
    file_key = data.get("OPENAI_API_KEY")
    tokens = data.get("tokens") if isinstance(data.get("tokens"), dict) else {}
    mode = data.get("auth_mode") if isinstance(data.get("auth_mode"), str) else kind
    detail = f"{ctx.short(path)}: auth_mode {mode}"
    if isinstance(file_key, str) and file_key:
        detail += f", API key {mask_key(file_key)}"
    exp = jwt_exp(tokens.get("access_token")) if tokens else None
    if exp is not None:
        detail += f", token {'expired' if exp <= ctx.now else 'valid until'} {when(exp)}"
    if note is not None:
        return ok(name, f"{note}; also {detail}")
    if kind == "apikey":
        return ok(name, f"{detail}; agentwrap passes Codex's own key through to {plan.native.base_url}")
    if not plan.native_profile and plan.profile is not None:
        return Check(name, WARN, detail + f': with no key, Codex hands its ChatGPT token to profile "{plan.profile.name}" '
                     "backends (login pass-through)",
                     "export OPENAI_API_KEY, or give the profile's backend an api_key_env")
    if exp is not None and exp <= ctx.now:
        return Check(name, WARN, detail + " (Codex refreshes it at start if the refresh token still works)",
                     "if Codex reports an auth error, run `codex login`")
    return ok(name, detail + f"; agentwrap passes the ChatGPT login through to {plan.native.base_url}")


def _codex_config(ctx: Context) -> tuple[dict | None, str | None]:
    path = codex_home(ctx.env) / "config.toml"
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
    path = codex_home(ctx.env) / "config.toml"
    where = ctx.short(path)
    data, problem = _codex_config(ctx)
    if problem:
        return [Check("codex config", FAIL, problem + ": Codex refuses to start", f"fix the syntax in {where}")]
    if data is None:
        return [ok("codex config", f"no {where}")]
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
        rows.append(ok("codex config", f"{where}: no profile pins a model provider{extra}"))
    return rows
