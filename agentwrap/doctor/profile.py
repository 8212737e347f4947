"""Profile and backend rows: a rendering of the session plan (`session/plan.py`), never a
second derivation of it."""

from __future__ import annotations

from agentwrap.doctor.base import FAIL, WARN, Check, Context, is_loopback, mask_key, ok
from agentwrap.session.plan import BackendPlan, SessionPlan

__all__ = ["check_profile", "check_backend", "check_plan_warnings"]


def check_profile(ctx: Context, plan: SessionPlan) -> Check:
    name = f"{plan.spec.name} profile"
    if plan.error:
        return Check(name, FAIL, ctx.redact(plan.error),
                     "fix what the message names (agentwrap profiles show NAME prints the resolved profile), "
                     "then rerun agentwrap doctor")
    assert plan.profile is not None
    if plan.native_profile:
        why = plan.reason.removesuffix(": native pass-through")
        native = plan.native
        where = "" if native.source == "the default" else f", from {ctx.short(native.source)}"
        return ok(name, f"none: native pass-through to {native.base_url}{where} ({why})")
    return ok(name, f'"{plan.profile.name}" ({plan.profile.source_kind}): {plan.reason}')


def check_plan_warnings(plan: SessionPlan) -> list[Check]:
    """What the session would warn about before starting (a broken project file it ignores)."""
    return [Check(f"{plan.spec.name} profile selection", WARN, w, "fix the file, or run with --no-project")
            for w in plan.warnings]


def check_backend(ctx: Context, plan: SessionPlan, bp: BackendPlan) -> Check:
    backend = bp.backend
    name = f"{plan.spec.name} backend {backend.name}"
    if backend.type == "scripted":
        return ok(name, f"scripted ({ctx.short(backend.script or '?')}): no key needed")
    target = f"{backend.protocol} at {backend.base_url}"
    if bp.translated:
        target += f" (translated from {plan.spec.protocol})"
    source = plan.profile.source if plan.profile else ""
    if bp.problem:
        if backend.api_key_env:
            fix = f"export {backend.api_key_env}=... in the shell that runs agentwrap, or change api_key_env in {source}"
        else:
            fix = "make the command print the key (try it in a shell), or change api_key_cmd"
        return Check(name, FAIL, ctx.redact(bp.problem), fix)
    if bp.credential == "key":
        return ok(name, f"{target}: key from {bp.source} ({mask_key(bp.key or '')})")
    if bp.credential == "native key":
        return ok(name, f"{target}: your {bp.source} ({mask_key(bp.key or '')}), configured for this endpoint")
    if bp.credential == "login":
        return ok(name, f"{target}: {bp.source or 'the agent login'} passes through")
    if is_loopback(backend.base_url):
        return ok(name, f"{target}: no key (a local server); {plan.spec.name} gets the session secret")
    if backend.credentials == "none":
        return ok(name, f"{target}: no key (credentials = \"none\")")
    return Check(name, WARN, f"{target}: agentwrap sends no key (your own key and login go only to the endpoint they "
                 "were configured for)",
                 f"add api_key_env to [backends.{backend.name}] in {source} if the server needs a key, "
                 'or credentials = "agent" to hand it your own')
