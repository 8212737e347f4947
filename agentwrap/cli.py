"""The `agentwrap` command line: parse and render only; the work is in session.py.

Agent commands (`agentwrap claude|codex|gemini [OPTIONS] -- ARGS`) take a fast
path that does not import typer, because start-to-exec time is part of every
session the user starts. Everything else, including `--help` and malformed
agent commands, goes through the typer app.
"""

from __future__ import annotations

import enum
import os
import sys

AGENT_NAMES = ("claude", "codex", "gemini")


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_INSTALLED = 127
    INTERRUPTED = 130


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
) -> int:
    """Run one wrapped session; map agentwrap's own errors to one line and an exit code."""
    from agentwrap.errors import AgentNotFound, AgentwrapError, ConfigError
    from agentwrap.session import SessionOptions, run_session

    opts = SessionOptions(agent=agent, args=args, profile=profile, quiet=quiet, capture_dir=capture_dir, capture=capture)
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
    opts: dict = {"profile": None, "quiet": False, "capture_dir": None, "capture": True}
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
        ) -> None:
            raise typer.Exit(run_agent(agent, list(args or []), profile, quiet, capture_dir, not no_capture))

        command.__doc__ = f"Run {agent} behind the proxy: agentwrap {agent} [OPTIONS] -- ARGS..."
        return command

    for agent in AGENT_NAMES:
        app.command(agent)(make_agent_command(agent))

    @app.command("version")
    def version() -> None:
        """Print agentwrap's version."""
        from agentwrap import __version__

        print(__version__)

    return app


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
