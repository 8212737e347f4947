"""The `agentwrap` command line: parse and render only; the work is in session.py.

Agent commands (`agentwrap claude|codex|gemini [OPTIONS] -- ARGS`) take a fast
path that does not import typer, because start-to-exec time is part of every
session the user starts. Everything else, including `--help` and malformed
agent commands, goes through the typer app.
"""

from __future__ import annotations

import os
import sys

from agentwrap.cli_output import ExitCode

AGENT_NAMES = ("claude", "codex", "gemini")
COMPLETE_VAR = "_AGENTWRAP_COMPLETE"  # typer's shell-completion protocol, for prog name "agentwrap"


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


_VALUED = {"--profile": ("profile", "NAME|PATH"), "--capture-dir": ("capture_dir", "DIR")}


def _needs_value(agent: str, option: str) -> int:
    return _fail(
        f"option {option} needs a value: agentwrap {agent} {option} {_VALUED[option][1]} -- AGENT_ARGS...",
        ExitCode.USAGE,
    )


def _fast_agent_command(argv: list[str]) -> int | None:
    """Parse `AGENT [--profile X] [--quiet] [-- ARGS...]` without typer; None = let typer handle it."""
    agent, rest = argv[0], argv[1:]
    opts: dict = {"profile": None, "quiet": False, "capture_dir": None, "capture": True, "project": True}
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--":
            return run_agent(agent, rest[i + 1 :], **opts)
        name, eq, value = a.partition("=")
        if name in _VALUED and eq:
            if not value:
                return _needs_value(agent, name)
            opts[_VALUED[name][0]] = value
            i += 1
            continue
        if a in _VALUED:
            # `--profile` last, or followed by `--`: the value is missing (a profile named
            # "--" is not a thing; a value that merely starts with "-" is taken as given).
            if i + 1 >= len(rest) or rest[i + 1] == "--":
                return _needs_value(agent, a)
            opts[_VALUED[a][0]] = rest[i + 1]
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


def _print_version(value: bool) -> None:
    if value:
        import typer

        from agentwrap import __version__

        print(f"agentwrap {__version__}")
        raise typer.Exit(ExitCode.OK)


def _build_app():
    import typer

    from agentwrap.cli_help import TidyGroup

    app = typer.Typer(
        name="agentwrap",
        cls=TidyGroup,
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        version: bool = typer.Option(
            False, "--version", "-V", is_eager=True, callback=_print_version, help="Print agentwrap's version and exit."
        ),
    ) -> None:
        """Run a coding agent behind a private, short-lived proxy.

        agentwrap claude|codex|gemini [--profile NAME|PATH] -- AGENT_ARGS...  ·  agentwrap runs  ·  agentwrap show ID
        """

    def make_agent_command(agent: str):
        def command(
            args: list[str] = typer.Argument(None, metavar="AGENT_ARGS", help="Arguments for the agent, after --."),
            profile: str = typer.Option(
                None, "--profile", metavar="NAME|PATH", envvar="AGENTWRAP_PROFILE",
                help="Profile name or TOML path. Default: the project file's choice, else pass-through to the agent's own provider.",
            ),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary line on exit."),
            capture_dir: str = typer.Option(
                None, "--capture-dir", metavar="DIR", envvar="AGENTWRAP_CAPTURE_DIR",
                help="Where the run's capture bundle goes. Default: the platform state dir (agentwrap runs).",
            ),
            no_capture: bool = typer.Option(False, "--no-capture", help="Record no capture bundle for this run."),
            no_project: bool = typer.Option(
                False, "--no-project", help="Ignore the project file (.agentwrap.toml). (env: AGENTWRAP_NO_PROJECT=1)"
            ),
        ) -> None:
            raise typer.Exit(run_agent(agent, list(args or []), profile, quiet, capture_dir, not no_capture, not no_project))

        command.__doc__ = f"Run {agent} behind the proxy: agentwrap {agent} [OPTIONS] -- AGENT_ARGS..."
        return command

    for agent in AGENT_NAMES:
        app.command(agent)(make_agent_command(agent))

    from agentwrap.profiles_cli import make_profiles_app

    app.add_typer(make_profiles_app(), name="profiles")

    from agentwrap.doctor_cli import register as register_doctor

    register_doctor(app)

    from agentwrap.runs_cli import register as register_runs

    register_runs(app)

    @app.command("replay", context_settings={"allow_extra_args": True})
    def replay(
        bundle: str = typer.Argument(..., metavar="ID|PATH|latest",
                                     help="A run id (or a unique prefix) from `agentwrap runs`, a bundle path, or `latest`."),
        extra: list[str] = typer.Argument(None, metavar="AGENT_ARGS", help="Extra agent arguments, after --."),
        cwd: str = typer.Option(None, "--cwd", metavar="DIR", help="Run the agent here. Default: the recorded directory."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary line on exit."),
        capture_dir: str = typer.Option(
            None, "--capture-dir", metavar="DIR", envvar="AGENTWRAP_CAPTURE_DIR",
            help="Where run ids and `latest` are looked for, and the replay's own bundle goes. Default: the platform state dir.",
        ),
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


def _replay(spec: str, extra: list[str], cwd: str | None, quiet: bool, capture_dir: str | None, capture: bool) -> int:
    from agentwrap.runs_cli import resolve_bundle
    from agentwrap.session import run_replay

    path = resolve_bundle(spec, capture_dir)
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
    if argv in (["--version"], ["-V"]):  # no typer for this either
        from agentwrap import __version__

        print(f"agentwrap {__version__}")
        sys.exit(ExitCode.OK)
    # A shell asking for completions calls agentwrap with its words in the environment.
    completing = COMPLETE_VAR in os.environ
    if argv and argv[0] in AGENT_NAMES and not completing:
        code = _fast_agent_command(argv)
        if code is not None:
            sys.exit(code)
    app = _build_app()
    try:
        app(args=argv, prog_name="agentwrap", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
