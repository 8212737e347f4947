"""`--online`: one cheap authenticated request per backend (a model list), with the
credential the session plan gives it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentwrap.config.model import BackendConfig
from agentwrap.doctor.base import FAIL, SKIP, WARN, Check, Context, ok, url_host
from agentwrap.session.plan import SessionPlan

__all__ = ["Probe", "online_probes", "check_online"]

ANTHROPIC_VERSION = "2023-06-01"


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
class Probe:
    name: str
    backend: BackendConfig
    header: tuple[str, str] | None
    source: str
    agents: list[str]
    models: list[str]


def online_probes(ctx: Context, plans: list[SessionPlan]) -> tuple[list[Probe], list[Check]]:
    """One probe per distinct http backend (same URL, protocol, key and headers = one request).
    Backends that get no key are probed too: a local server must answer without one."""
    probes: dict[tuple, Probe] = {}
    rows: list[Check] = []
    for plan in plans:
        if plan.profile is None or plan.error:
            rows.append(Check(f"online {plan.spec.name}", SKIP, "no usable profile (see the profile row)",
                              "resolve the profile row above, then rerun with --online"))
            continue
        for bp in plan.backends.values():
            backend = bp.backend
            if backend.type != "http" or not backend.base_url or not backend.protocol:
                continue
            label = f"online {backend.name}" + (f" ({plan.spec.name})" if plan.native_profile else "")
            if bp.problem:
                rows.append(Check(label, SKIP, "no key to test with (see the backend row)", "resolve the backend row above, then rerun with --online"))
                continue
            if bp.credential == "login":
                rows.append(Check(label, SKIP, f"{backend.base_url}: {plan.spec.name} uses its own login here; "
                                  "agentwrap never handles login tokens, so it cannot test them",
                                  "export the agent's API key to test it"))
                continue
            header = bp.auth.header
            header = (header[0].decode(), header[1].decode()) if header is not None else None
            key = (backend.protocol, backend.base_url, header, backend.headers)
            probe = probes.get(key)
            if probe is None:
                probe = probes[key] = Probe(label, backend, header, bp.source if header else "", [], [])
            probe.agents.append(plan.spec.name)
            for route in plan.profile.routes:
                applies = route.when is None or route.when.agent in (None, plan.spec.name)
                if route.backend == backend.name and route.model and applies and route.model not in probe.models:
                    probe.models.append(route.model)
    return list(probes.values()), rows


def check_online(ctx: Context, probe: Probe, timeout_s: float) -> Check:
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
                     "check base_url and your network or proxy settings (HTTPS_PROXY); --timeout raises the limit")
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
                     f"check the key ({probe.source}) is valid for {url_host(b.base_url or '')} and not expired or revoked")
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
    return ok(name, detail)
