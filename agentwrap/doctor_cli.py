"""`agentwrap doctor`: parse options and render the rows; the checks are in the doctor package.

stdout carries the report: a rich table (colour only on a terminal, never with
NO_COLOR) or, with `--json`, one document `{"schema": 1, "checks": [...], "ok": ...}`.
Progress lines go to stderr, and only when stderr is a terminal outside CI.
Exit codes: 0 when no check fails, 1 when one does, 2 for usage errors.
"""

from __future__ import annotations

import json
import os
import sys

import typer

from agentwrap.cli_output import ExitCode, make_console, print_table

__all__ = ["make_doctor_command", "register", "render_table"]

_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
_LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def render_table(checks, file=None) -> None:
    """Print the rows as a table on `file` (stdout), then a one-line count."""
    from rich.table import Table
    from rich.text import Text

    # Piped (not a terminal): no folding at all, so paths stay whole for grep and copy.
    console = make_console(file)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True, overflow="fold")
    table.add_column("detail / fix", overflow="fold")
    for c in checks:
        cell = Text(c.detail)  # Text, not markup: details hold [profiles.x] and paths
        if c.status != "ok" and c.fix:
            cell.append("\nfix: ", style="bold")
            cell.append(c.fix)
        table.add_row(Text(_LABELS.get(c.status, c.status), style=_STYLES.get(c.status, "")), Text(c.name), cell)
    print_table(console, table)
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("ok", "warn", "fail", "skip")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    console.print(Text(summary or "no checks"))


def _progress(message: str) -> None:
    if sys.stderr.isatty() and not os.environ.get("CI"):
        print(f"agentwrap: {message}...", file=sys.stderr, flush=True)


def _usage(message: str) -> typer.Exit:
    print(f"agentwrap: {message}", file=sys.stderr)
    return typer.Exit(ExitCode.USAGE)


def make_doctor_command():
    """The `doctor` command function (register with `app.command("doctor")(make_doctor_command())`)."""

    def doctor(
        agent: str = typer.Option(
            None, "--agent", metavar="NAME",
            help="Check only this agent: claude, codex or gemini. Default: all three (a missing one is a warning).",
        ),
        profile: str = typer.Option(
            None, "--profile", metavar="NAME|PATH",
            help="Check this profile, as `agentwrap AGENT --profile` would use it. Default: the profile each agent gets here.",
        ),
        no_project: bool = typer.Option(
            False, "--no-project", help="Ignore the project file (.agentwrap.toml), as `agentwrap AGENT --no-project`."
        ),
        online: bool = typer.Option(
            False, "--online", help="Send one cheap authenticated request (a model list) to each backend in use. Default: offline."
        ),
        wire: bool = typer.Option(
            False, "--wire",
            help="Run the real agent through agentwrap for one prompt against the built-in scripted backend "
            "(no provider contacted). Default: off.",
        ),
        timeout: float = typer.Option(10.0, "--timeout", min=0.1, metavar="SECONDS", show_default=False, help="Seconds per --online request. Default: 10."),
        wire_timeout: float = typer.Option(120.0, "--wire-timeout", min=1.0, metavar="SECONDS", show_default=False, help="Seconds per --wire run. Default: 120."),
        json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout. Default: a table."),
    ) -> None:
        """Check agents, logins, settings that bypass the proxy, profiles and keys."""
        from agentwrap.agents import AGENTS
        from agentwrap.doctor import DoctorOptions, doctor_document, exit_code, run_checks

        if agent is not None and agent not in AGENTS:
            raise _usage(f"unknown agent {agent!r} for --agent. Known agents: {', '.join(AGENTS)}")
        opts = DoctorOptions(
            agents=(agent,) if agent else tuple(AGENTS),
            profile=profile or None,
            project=not no_project,
            online=online,
            wire=wire,
            timeout_s=timeout,
            wire_timeout_s=wire_timeout,
            agents_named=agent is not None,
        )
        checks = run_checks(opts, progress=None if json_out else _progress)
        if json_out:
            print(json.dumps(doctor_document(checks), indent=2, ensure_ascii=False))
        else:
            render_table(checks)
        raise typer.Exit(exit_code(checks))

    return doctor


def register(app: typer.Typer) -> None:
    """Add `agentwrap doctor` to the typer app."""
    app.command("doctor")(make_doctor_command())
