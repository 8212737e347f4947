"""The `agentwrap` command line: parse and render only; the work is in session.py.

Agent commands (`agentwrap claude|codex|gemini [OPTIONS] -- ARGS`) take a fast
path that does not import typer, because start-to-exec time is part of every
session the user starts. Everything else, including `--help` and malformed
agent commands, goes through the typer app.
"""

from __future__ import annotations

import os
import sys

from agentwrap.cli_output import SCHEMA_VERSION, ExitCode

AGENT_NAMES = ("claude", "codex", "gemini")


def _debug() -> bool:
    return os.environ.get("AGENTWRAP_DEBUG") == "1"


def _fail(message: str, code: int) -> int:
    print(f"agentwrap: {message}", file=sys.stderr)
    return code


def run_agent(
    agent: str,
    args: list[str],
    profile: str | None,
    quiet: bool,
    capture_dir: str | None = None,
    capture: bool = True,
    project: bool = True,
) -> int:
    """Run one wrapped session; map agentwrap's own errors to one line and an exit code."""
    from agentwrap.errors import AgentNotFound, AgentwrapError, ConfigError
    from agentwrap.session import SessionOptions, run_session

    opts = SessionOptions(
        agent=agent, args=args, profile=profile, quiet=quiet, capture_dir=capture_dir, capture=capture, project=project
    )
    try:
        result = run_session(opts)
    except AgentNotFound as exc:
        return _fail(str(exc), ExitCode.NOT_INSTALLED)
    except ConfigError as exc:
        if _debug():
            raise
        return _fail(str(exc), ExitCode.USAGE)
    except AgentwrapError as exc:
        if _debug():
            raise
        return _fail(str(exc), ExitCode.FAILURE)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return result.exit_code


def _fast_agent_command(argv: list[str]) -> int | None:
    """Parse `AGENT [--profile X] [--quiet] [-- ARGS...]` without typer; None = let typer handle it."""
    agent, rest = argv[0], argv[1:]
    opts: dict = {"profile": None, "quiet": False, "capture_dir": None, "capture": True, "project": True}
    valued = {"--profile": "profile", "--capture-dir": "capture_dir"}
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--":
            return run_agent(agent, rest[i + 1 :], **opts)
        name, eq, value = a.partition("=")
        if name in valued and eq:
            opts[valued[name]] = value
            i += 1
            continue
        if a in valued and i + 1 < len(rest):
            opts[valued[a]] = rest[i + 1]
            i += 2
            continue
        if a in ("--quiet", "-q"):
            opts["quiet"] = True
            i += 1
            continue
        if a == "--no-capture":
            opts["capture"] = False
            i += 1
            continue
        if a == "--no-project":
            opts["project"] = False
            i += 1
            continue
        if a in ("-h", "--help"):
            return None  # typer renders help
        if a.startswith("-"):
            return _fail(
                f"unknown option {a} for agentwrap {agent}. Agent arguments go after --: "
                f"agentwrap {agent} [--profile NAME] [--capture-dir DIR | --no-capture] -- {a} ...",
                ExitCode.USAGE,
            )
        return run_agent(agent, rest[i:], **opts)  # positional: the agent's arguments start here
    return run_agent(agent, [], **opts)


def _build_app():
    import typer

    app = typer.Typer(
        name="agentwrap",
        help="Run a coding agent behind a private, short-lived proxy.",
        no_args_is_help=True,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def make_agent_command(agent: str):
        def command(
            args: list[str] = typer.Argument(None, help="Arguments for the agent, after --."),
            profile: str = typer.Option(
                None, "--profile", envvar="AGENTWRAP_PROFILE", help="Profile name or TOML path. Default: pass-through to the agent's own provider."
            ),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary line on exit."),
            capture_dir: str = typer.Option(
                None, "--capture-dir", envvar="AGENTWRAP_CAPTURE_DIR",
                help="Where the run's capture bundle goes. Default: the platform state dir (agentwrap runs).",
            ),
            no_capture: bool = typer.Option(False, "--no-capture", help="Record no capture bundle for this run."),
            no_project: bool = typer.Option(
                False, "--no-project", help="Ignore the project file (.agentwrap.toml) [env: AGENTWRAP_NO_PROJECT=1]."
            ),
        ) -> None:
            raise typer.Exit(run_agent(agent, list(args or []), profile, quiet, capture_dir, not no_capture, not no_project))

        command.__doc__ = f"Run {agent} behind the proxy: agentwrap {agent} [OPTIONS] -- ARGS..."
        return command

    for agent in AGENT_NAMES:
        app.command(agent)(make_agent_command(agent))

    from agentwrap.profiles_cli import make_profiles_app

    app.add_typer(make_profiles_app(), name="profiles")

    from agentwrap.doctor_cli import register as register_doctor

    register_doctor(app)

    @app.command("runs")
    def runs(
        json_out: bool = typer.Option(False, "--json", help="One JSON document with \"schema\": 1."),
        limit: int = typer.Option(20, "-n", "--limit", help="How many runs, newest first."),
        capture_dir: str = typer.Option(None, "--capture-dir", envvar="AGENTWRAP_CAPTURE_DIR", help="Default: the platform state dir."),
    ) -> None:
        """List recent runs (newest first) from the capture directory."""
        raise typer.Exit(_guarded(lambda: _runs(json_out, limit, capture_dir)))

    @app.command("show")
    def show(
        bundle: str = typer.Argument(..., help="A bundle path, or `latest`."),
        json_out: bool = typer.Option(False, "--json", help="The run as one JSON document with \"schema\": 1."),
        html: str = typer.Option(None, "--html", help="Write a self-contained HTML file here."),
        capture_dir: str = typer.Option(None, "--capture-dir", envvar="AGENTWRAP_CAPTURE_DIR", help="Where `latest` is looked for."),
    ) -> None:
        """Render a capture bundle: terminal transcript, --json, or --html FILE."""
        raise typer.Exit(_guarded(lambda: _show(bundle, json_out, html, capture_dir)))

    @app.command("replay", context_settings={"allow_extra_args": True})
    def replay(
        bundle: str = typer.Argument(..., help="A bundle path, or `latest`."),
        extra: list[str] = typer.Argument(None, help="Extra agent arguments, after --."),
        cwd: str = typer.Option(None, "--cwd", help="Run the agent here instead of the recorded directory."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary line on exit."),
        capture_dir: str = typer.Option(None, "--capture-dir", envvar="AGENTWRAP_CAPTURE_DIR", help="Where the replay's own bundle goes."),
        no_capture: bool = typer.Option(False, "--no-capture", help="Record no bundle for the replay."),
    ) -> None:
        """Re-run a recorded session offline, serving the recorded responses; report any divergence."""
        raise typer.Exit(_guarded(lambda: _replay(bundle, list(extra or []), cwd, quiet, capture_dir, not no_capture)))

    @app.command("version")
    def version() -> None:
        """Print agentwrap's version."""
        from agentwrap import __version__

        print(__version__)

    return app


def _guarded(action) -> int:
    """Run a non-agent command: agentwrap's own errors become one line and an exit code."""
    from agentwrap.errors import AgentNotFound, AgentwrapError, BundleFormatError, ConfigError

    try:
        return action()
    except AgentNotFound as exc:
        return _fail(str(exc), ExitCode.NOT_INSTALLED)
    except (ConfigError, BundleFormatError) as exc:
        if _debug():
            raise
        return _fail(str(exc), ExitCode.USAGE)
    except AgentwrapError as exc:
        if _debug():
            raise
        return _fail(str(exc), ExitCode.FAILURE)
    except OSError as exc:
        if _debug():
            raise
        return _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), ExitCode.FAILURE)


def _capture_dir_or_default(capture_dir: str | None) -> str:
    if capture_dir:
        return os.path.expanduser(capture_dir)
    from agentwrap.capture.runs import default_capture_dir

    return str(default_capture_dir())


def _resolve_bundle(spec: str, capture_dir: str | None) -> str:
    from agentwrap.errors import ConfigError

    if spec != "latest":
        if not os.path.isfile(spec):
            raise ConfigError(f"bundle {spec} not found")
        return spec
    from agentwrap.capture.runs import list_runs

    directory = _capture_dir_or_default(capture_dir)
    rows = list_runs(directory, limit=1)
    if not rows:
        raise ConfigError(f"no runs recorded in {directory} yet")
    return rows[0]["path"]


def _runs(json_out: bool, limit: int, capture_dir: str | None) -> int:
    import json

    from agentwrap.capture.runs import list_runs

    rows = list_runs(_capture_dir_or_default(capture_dir), limit=limit)
    if json_out:
        print(json.dumps({"schema": SCHEMA_VERSION, "runs": rows}, indent=2))
        return ExitCode.OK
    if not rows:
        print("no runs recorded yet", file=sys.stderr)
        return ExitCode.OK
    for r in rows:
        if r.get("error"):
            print(f"{'?':20}  {'-':7}  unreadable: {r['error']}")
            continue
        duration = f"{r['duration_s']:.1f}s" if r.get("duration_s") is not None else "-"
        status = "exit " + str(r["exit_code"]) if r.get("complete") else "incomplete"
        tokens = str(r["tokens"]) if r.get("tokens") is not None else "-"
        print(
            f"{(r.get('time') or '?')[:19]:20} {r.get('agent') or '?':7} {r.get('profile') or '-':12} "
            f"{duration:>8} {status:>10} {r.get('requests') if r.get('requests') is not None else '-':>5} req "
            f"{tokens:>8} tok  {r['path']}"
        )
    return ExitCode.OK


def _show(spec: str, json_out: bool, html: str | None, capture_dir: str | None) -> int:
    import json

    from agentwrap.capture.reader import read_bundle
    from agentwrap.capture.render import to_html, to_json, to_text

    bundle = read_bundle(_resolve_bundle(spec, capture_dir))
    if html:
        fd = os.open(html, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(to_html(bundle))
        print(f"agentwrap: wrote {html}", file=sys.stderr)
        if not json_out:
            return ExitCode.OK
    if json_out:
        print(json.dumps(to_json(bundle), indent=2, default=str))
    else:
        print(to_text(bundle))
    return ExitCode.OK


def _replay(spec: str, extra: list[str], cwd: str | None, quiet: bool, capture_dir: str | None, capture: bool) -> int:
    from agentwrap.session import run_replay

    path = _resolve_bundle(spec, capture_dir)
    r = run_replay(path, extra_args=extra, cwd=cwd, quiet=quiet, capture_dir=capture_dir, capture=capture)
    if r.diverged:
        print(f"agentwrap replay: diverged from {path}:", file=sys.stderr)
        for line in [*r.divergences, *r.unused]:
            print(f"  - {line}", file=sys.stderr)
        return r.session.exit_code or ExitCode.FAILURE
    if not quiet:
        print(f"agentwrap replay: no divergence ({r.served} of {r.recorded} recorded responses served)", file=sys.stderr)
    return r.session.exit_code


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in AGENT_NAMES:
        code = _fast_agent_command(argv)
        if code is not None:
            sys.exit(code)
    app = _build_app()
    try:
        app(args=argv, prog_name="agentwrap", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
