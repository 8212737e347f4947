"""`agentwrap doctor`: prove that each agent, its credentials and the chosen backends
will work before a session starts.

Each check is a small function returning one `Check` row (a few return several):
a name, a status (ok, warn, fail, skip), a one-line detail and a one-line fix
(empty when the status is ok). `run_checks` runs them in order and knows
nothing of typer; `doctor_cli.py` renders the rows. What a session would do
(profile, native upstream, key mode, each backend's credential) comes from
`session.plan.plan_session`, the same function the session runs: doctor
renders that plan and never derives it again.

Modules, by section of the report: `environment` (loopback, directories,
agents on PATH), `claude` / `codex` / `gemini` (each agent's login and the
settings that could send it past agentwrap), `profile` (the plan's profile and
backends), `online` (`--online`), `wire` (`--wire`).

Does I/O: reads the agents' own credential and settings files, runs each
agent's `--version`, a profile's `api_key_cmd`, and (only when asked) one HTTP
request per backend (`online`) or the real agent through agentwrap against the
built-in scripted backend (`wire`). Nothing leaves the machine unless `online`
is set. Secrets are never part of a row: keys appear only as their last four
characters, credential files only as their mode and expiry.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from agentwrap.agents import AGENTS
from agentwrap.doctor.base import (
    FAIL,
    OK,
    SKIP,
    STATUSES,
    WARN,
    Check,
    Context,
    DoctorOptions,
    doctor_document,
    exit_code,
    gemini_system_file_problem,
    mask_key,
)
from agentwrap.doctor.claude import check_claude_login, check_claude_settings
from agentwrap.doctor.codex import check_codex_config, check_codex_login
from agentwrap.doctor.environment import check_capture_dir, check_config_dir, check_installed, check_loopback, check_state_dir
from agentwrap.doctor.gemini import check_gemini_login, check_gemini_system_settings, check_gemini_workspace_settings
from agentwrap.doctor.profile import check_backend, check_plan_warnings, check_profile
from agentwrap.session.plan import SessionPlan, plan_session

__all__ = [
    "OK",
    "WARN",
    "FAIL",
    "SKIP",
    "STATUSES",
    "Check",
    "Context",
    "DoctorOptions",
    "run_checks",
    "doctor_document",
    "exit_code",
    "mask_key",
    "gemini_system_file_problem",
]

# Per agent: its login row, and its settings rows (the suspects when the wire check fails).
_AGENT_ROWS: dict[str, tuple[Callable[[Context, SessionPlan], Check], Callable[[Context, SessionPlan], list[Check]]]] = {
    "claude": (check_claude_login, lambda ctx, plan: check_claude_settings(ctx)),
    "codex": (check_codex_login, lambda ctx, plan: check_codex_config(ctx)),
    "gemini": (
        check_gemini_login,
        lambda ctx, plan: [check_gemini_system_settings(ctx, plan), check_gemini_workspace_settings(ctx, plan)],
    ),
}


def _agent_checks(ctx: Context, plan: SessionPlan, *, required: bool) -> tuple[list[Check], list[Check]]:
    """(rows, settings rows) for one agent."""
    login, settings = _AGENT_ROWS[plan.spec.name]
    rows = [check_installed(ctx, plan.spec, required=required), login(ctx, plan)]
    bypass = settings(ctx, plan)
    rows += bypass
    rows += check_plan_warnings(plan)
    rows.append(check_profile(ctx, plan))
    if not plan.error and not plan.native_profile:  # the login row covers the native pass-through
        rows += [check_backend(ctx, plan, bp) for bp in plan.backends.values()]
    return rows, bypass


def run_checks(opts: DoctorOptions, ctx: Context | None = None, *, progress: Callable[[str], None] | None = None) -> list[Check]:
    """Every check `opts` asks for, in report order."""
    ctx = ctx or Context.current()
    note = progress or (lambda message: None)
    rows = [check_loopback(), check_capture_dir(ctx), check_config_dir(ctx), check_state_dir(ctx)]
    plans: list[SessionPlan] = []
    suspects: dict[str, list[Check]] = {}
    for agent in opts.agents:
        plan = plan_session(AGENTS[agent], opts.profile, ctx.env, ctx.cwd, project=opts.project)
        plans.append(plan)
        agent_rows, suspects[agent] = _agent_checks(ctx, plan, required=opts.agents_named)
        rows += agent_rows
    if opts.online:
        from agentwrap.doctor.online import check_online, online_probes

        probes, skipped = online_probes(ctx, plans)
        rows += skipped
        for probe in probes:
            note(f"checking {probe.backend.name} at {probe.backend.base_url}")
            rows.append(check_online(ctx, probe, opts.timeout_s))
    if opts.wire:
        from agentwrap.doctor.wire import check_wire

        for agent in opts.agents:
            spec = AGENTS[agent]
            if not opts.agents_named and not shutil.which(spec.binary, path=ctx.env.get("PATH")):
                rows.append(Check(f"{agent} wire", SKIP, f"{spec.binary} is not installed", f"install it: {spec.install_hint}"))
                continue
            note(f"running {agent} through agentwrap (up to {opts.wire_timeout_s:g} s)")
            rows.append(check_wire(ctx, spec, opts.wire_timeout_s, suspects.get(agent, [])))
    return rows
