"""`agentwrap runs`, `agentwrap runs prune` and `agentwrap show`: parse options, render.

The work is in `capture/` (`runs.py` lists and finds runs, `retention.py`
prunes, `render.py` shows one). stdout carries the table, transcript or JSON
document (`{"schema": 1, ...}`); errors are one line on stderr with exit code
2 for what the user can fix (a bad option value, an unknown or ambiguous run
id, a broken config file) and 1 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone

import typer

from agentwrap.cli_output import SCHEMA_VERSION, ExitCode, count_text, make_console, print_table

__all__ = ["capture_dir_or_default", "make_runs_app", "register", "resolve_bundle"]

CAPTURE_DIR_HELP = "Capture directory. Default: the platform state dir (~/.local/state/agentwrap/runs on Linux)."


def capture_dir_or_default(capture_dir: str | None) -> str:
    if capture_dir:
        return os.path.expanduser(capture_dir)
    from agentwrap.capture.runs import default_capture_dir

    return str(default_capture_dir())


def resolve_bundle(spec: str, capture_dir: str | None) -> str:
    """A bundle path for a path, `latest` or a run id (prefix); `ConfigError` otherwise."""
    from agentwrap.capture.runs import find_run

    return find_run(capture_dir_or_default(capture_dir), spec)


def _usage(message: str) -> typer.Exit:
    print(f"agentwrap: {message}", file=sys.stderr)
    return typer.Exit(ExitCode.USAGE)


def _guard(action) -> int:
    """agentwrap's own errors as one line on stderr (the same mapping as cli._guarded)."""
    from agentwrap.cli import _guarded

    return _guarded(action)


# -- formatting ------------------------------------------------------------------------


def _local_time(iso: str | None, now: datetime | None = None) -> str:
    """Local start time: `11-26 14:05` this year, `2025-11-26 14:05` before."""
    if not iso:
        return "?"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso[:16]
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone()
    now = (now or datetime.now(timezone.utc)).astimezone()
    return f"{when:%m-%d %H:%M}" if when.year == now.year else f"{when:%Y-%m-%d %H:%M}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _exit(row: dict) -> str:
    if row["error"]:
        return "?"
    if not row["complete"]:
        return "cut"  # no footer: killed, or still running
    return str(row["exit_code"]) if row["exit_code"] is not None else "?"


def _render_runs(rows: list[dict], footer: str) -> None:
    from rich.table import Table
    from rich.text import Text

    from agentwrap.capture.cost import format_cost

    console = make_console()
    # One space between columns: with every column this is ~80 characters wide before
    # the profile and models, which wrap (at commas and dashes) rather than vanish.
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False,
                  padding=(0, 1), collapse_padding=True)
    # The id first: it is what `show` and `replay` take, and a narrow terminal cuts the right edge.
    table.add_column("id", no_wrap=True)
    table.add_column("time", no_wrap=True)
    table.add_column("agent", no_wrap=True)
    table.add_column("profile", overflow="fold", min_width=7)
    table.add_column("models", overflow="fold", min_width=10)
    for name in ("reqs", "errs", "tokens", "cost", "exit", "took"):  # `took` last: the first to go when narrow
        table.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        run_id = r["run_id"] or os.path.basename(r["path"]).rsplit("-", 1)[-1].removesuffix(".cbor")
        if r["error"]:
            table.add_row(run_id, _local_time(r["time"]), "?", "-", Text(f"unreadable: {r['error']}", style="red"),
                          "-", "-", "-", "-", "?", "-")
            continue
        errs = r["errors"]
        table.add_row(
            run_id, _local_time(r["time"]), r["agent"] or "?", Text(r["profile"] or "-"), Text(", ".join(r["models"] or []) or "-"),
            count_text(r["requests"]), Text(count_text(errs), style="red" if errs else ""), count_text(r["tokens"]),
            format_cost(r["cost_usd"], partial=bool(r["unpriced_requests"])),
            Text(_exit(r), style="" if _exit(r) == "0" else "yellow"), _duration(r["duration_s"]),
        )
    print_table(console, table)
    console.print(Text(footer))


def _retention_note(capture_dir: str) -> tuple[dict | None, str]:
    from agentwrap.capture.retention import format_size, load_retention_settings
    from agentwrap.errors import ConfigError

    try:
        s = load_retention_settings()
    except ConfigError as exc:
        print(f"agentwrap: {exc}", file=sys.stderr)
        return None, ""
    doc = {"keep_runs": s.keep_runs, "max_bytes": s.max_bytes}
    if s.keep_runs is None and s.max_bytes is None:
        return doc, "keeping every run"
    parts = []
    if s.keep_runs is not None:
        parts.append(f"the newest {s.keep_runs}")
    if s.max_bytes is not None:
        parts.append(f"within {format_size(s.max_bytes)}")
    return doc, "keeping " + " ".join(parts)


# -- commands ----------------------------------------------------------------------------


def _runs(json_out: bool, limit: int, agent: str | None, profile: str | None, since: str | None, errors: bool,
          grep: str | None, capture_dir: str | None) -> int:
    from agentwrap.capture.retention import format_size, parse_age
    from agentwrap.capture.runs import RunFilter, directory_usage, list_runs

    directory = capture_dir_or_default(capture_dir)
    where = RunFilter(
        agent=agent, profile=profile, since=parse_age(since, "--since") if since else None, errors=errors, grep=grep or None,
    )
    rows = list_runs(directory, limit=limit, where=where, details=True)
    total, size = directory_usage(directory)
    retention, note = _retention_note(directory)
    if json_out:
        doc = {"schema": SCHEMA_VERSION, "capture_dir": directory, "total_runs": total, "total_bytes": size,
               "retention": retention, "runs": rows}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return ExitCode.OK
    if not rows:
        filtered = where != RunFilter()
        what = "no runs match" if filtered and total else "no runs recorded yet"
        print(f"agentwrap: {what} in {directory}", file=sys.stderr)
        return ExitCode.OK
    shown = f"{len(rows)} of {total} runs" if len(rows) < total else f"{total} run{'s' if total != 1 else ''}"
    footer = f"{shown} · {format_size(size)} in {directory}" + (f" · {note}" if note else "")
    _render_runs(rows, footer)
    return ExitCode.OK


def _prune(keep: int | None, older_than: str | None, dry_run: bool, json_out: bool, capture_dir: str | None) -> int:
    from agentwrap.capture.retention import (
        bundle_files, delete_runs, format_size, load_retention_settings, parse_age, plan_prune,
    )

    directory = capture_dir_or_default(capture_dir)
    files = bundle_files(directory)
    if keep is None and older_than is None:
        settings = load_retention_settings()
        keep_runs, max_bytes, cutoff = settings.keep_runs, settings.max_bytes, None
    else:
        keep_runs, max_bytes = keep, None
        cutoff = parse_age(older_than, "--older-than") if older_than else None
    delete, spared = plan_prune(files, keep_runs=keep_runs, max_bytes=max_bytes, older_than=cutoff)
    deleted, failed = (delete, []) if dry_run else delete_runs(delete)
    gone = {b.path for b in deleted}
    left = [b for b in files if b.path not in gone]
    freed = sum(b.size for b in deleted)
    if json_out:
        doc = {
            "schema": SCHEMA_VERSION, "capture_dir": directory, "dry_run": dry_run,
            "deleted": [{"run_id": b.short_id, "path": b.path, "started_at": f"{b.started:%Y-%m-%dT%H:%M:%SZ}",
                         "size_bytes": b.size} for b in deleted],
            "freed_bytes": freed, "kept_runs": len(left), "kept_bytes": sum(b.size for b in left),
            "spared": [{"run_id": b.short_id, "path": b.path} for b in spared],
            "failed": [{"run_id": b.short_id, "path": b.path, "error": why} for b, why in failed],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        verb = "would delete" if dry_run else "deleted"
        for b in deleted:
            agent = b.name.split("-", 1)[1].rsplit("-", 1)[0]
            print(f"{verb}  {b.short_id}  {b.started.astimezone():%Y-%m-%d %H:%M}  {agent}  {format_size(b.size)}")
        summary = f"{verb} {len(deleted)} run{'s' if len(deleted) != 1 else ''} ({format_size(freed)})"
        print(f"{summary}; {len(left)} run{'s' if len(left) != 1 else ''} ({format_size(sum(b.size for b in left))}) "
              f"{'would be ' if dry_run else ''}left in {directory}")
    if spared:
        ids = ", ".join(b.short_id for b in spared)
        print(f"agentwrap: kept {len(spared)} run{'s' if len(spared) != 1 else ''} that may still be running: {ids}",
              file=sys.stderr)
    for b, why in failed:
        print(f"agentwrap: cannot delete {b.path}: {why}", file=sys.stderr)
    return ExitCode.FAILURE if failed else ExitCode.OK


def _show(spec: str, json_out: bool, html: str | None, capture_dir: str | None) -> int:
    from agentwrap.capture.reader import read_bundle
    from agentwrap.capture.render import to_html, to_json, to_text

    if html == "-" and json_out:
        raise _usage("--html - and --json both write to stdout; choose one, or give --html a file name")
    bundle = read_bundle(resolve_bundle(spec, capture_dir))
    if html == "-":
        sys.stdout.write(to_html(bundle))
        return ExitCode.OK
    if html:
        from agentwrap.files import write_private

        write_private(html, to_html(bundle))
        print(f"agentwrap: wrote {html}", file=sys.stderr)
        if not json_out:
            return ExitCode.OK
    if json_out:
        print(json.dumps(to_json(bundle), indent=2, default=str))
    else:
        print(to_text(bundle), end="")
    return ExitCode.OK


def make_runs_app() -> typer.Typer:
    """The `runs` group: listing (no subcommand) and `prune`."""
    app = typer.Typer(
        help="List recent runs, newest first; `agentwrap runs prune` deletes old ones.",
        invoke_without_command=True,
        no_args_is_help=False,
        subcommand_metavar="[prune]",
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback(invoke_without_command=True)
    def runs(
        ctx: typer.Context,
        json_out: bool = typer.Option(False, "--json", help="One JSON document with \"schema\": 1. Default: a table."),
        limit: int = typer.Option(20, "-n", "--limit", metavar="N", show_default=False,
                                  help="Show at most N runs, newest first (N >= 1). Default: 20."),
        agent: str = typer.Option(None, "--agent", metavar="NAME", help="Only runs of this agent: claude, codex or gemini."),
        profile: str = typer.Option(None, "--profile", metavar="NAME", help="Only runs with this profile."),
        since: str = typer.Option(None, "--since", metavar="AGE|DATE",
                                  help="Only runs started since then: 30m, 12h, 7d, 2w, or a date such as 2026-11-20."),
        errors: bool = typer.Option(False, "--errors",
                                    help="Only runs with a failed request, a non-zero exit, or no footer (cut short)."),
        grep: str = typer.Option(None, "--grep", metavar="TEXT",
                                 help="Only runs whose prompts, answers, tool calls, command line or models contain "
                                 "TEXT (any case; reads whole bundles)."),
        capture_dir: str = typer.Option(None, "--capture-dir", metavar="DIR", envvar="AGENTWRAP_CAPTURE_DIR",
                                        help=CAPTURE_DIR_HELP),
    ) -> None:
        """List recent runs, newest first, from the capture directory, with its total size."""
        if ctx.invoked_subcommand is not None:
            return
        if limit < 1:
            raise _usage(f"-n/--limit must be 1 or more, not {limit}")
        from agentwrap.agents import AGENTS

        if agent is not None and agent not in AGENTS:
            raise _usage(f"unknown agent {agent!r} for --agent. Known agents: {', '.join(AGENTS)}")
        raise typer.Exit(_guard(lambda: _runs(json_out, limit, agent, profile, since, errors, grep, capture_dir)))

    @app.command("prune")
    def prune(
        keep: int = typer.Option(None, "--keep", metavar="N",
                                 help="Keep the newest N runs (N >= 0). Default: capture.keep_runs and capture.max_size "
                                 "from config.toml (50 runs, 1 GiB)."),
        older_than: str = typer.Option(None, "--older-than", metavar="AGE|DATE",
                                       help="Delete runs started before then: 30m, 12h, 7d, 2w, or a date."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be deleted; delete nothing."),
        json_out: bool = typer.Option(False, "--json", help="One JSON document with \"schema\": 1."),
        capture_dir: str = typer.Option(None, "--capture-dir", metavar="DIR", envvar="AGENTWRAP_CAPTURE_DIR",
                                        help=CAPTURE_DIR_HELP),
    ) -> None:
        """Delete old runs: beyond --keep N, older than --older-than, or else beyond the configured retention."""
        if keep is not None and keep < 0:
            raise _usage(f"--keep must be 0 or more, not {keep}")
        raise typer.Exit(_guard(lambda: _prune(keep, older_than, dry_run, json_out, capture_dir)))

    return app


def register(app: typer.Typer) -> None:
    """Add `runs` (with `runs prune`) and `show` to the typer app."""
    app.add_typer(make_runs_app(), name="runs")

    @app.command("show")
    def show(
        bundle: str = typer.Argument("latest", metavar="ID|PATH|latest", show_default=False,
                                     help="A run id (or a unique prefix) from `agentwrap runs`, a bundle path, "
                                     "or `latest`. Default: latest."),
        json_out: bool = typer.Option(False, "--json", help="The run as one JSON document with \"schema\": 1."),
        html: str = typer.Option(None, "--html", metavar="FILE",
                                 help="Write a self-contained HTML page to FILE (`-`: to stdout)."),
        capture_dir: str = typer.Option(None, "--capture-dir", metavar="DIR", envvar="AGENTWRAP_CAPTURE_DIR",
                                        help="Where run ids and `latest` are looked for. Default: the platform state dir."),
    ) -> None:
        """Show a recorded run: a transcript with routes, attempts and cost; --json; or --html FILE."""
        raise typer.Exit(_guard(lambda: _show(bundle, json_out, html, capture_dir)))
