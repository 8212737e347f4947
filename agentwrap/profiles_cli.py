"""`agentwrap profiles list|show|path|new`: parse and render; the work is in config/.

stdout carries results (tables, TOML, `--json` documents with `"schema": 1`);
errors are one line on stderr with exit code 2. Keys are never printed: `show`
prints `${VAR}` references unexpanded, `api_key_env` names, an `api_key_cmd`
as its command (never run here), and literal values of credential-like headers
as "<redacted>".
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import typer

from agentwrap.cli_output import SCHEMA_VERSION, ExitCode
from agentwrap.config.starter import STARTER_DATA, leading_comments, starter_text

__all__ = ["make_profiles_app"]

REDACTED = "<redacted>"

_SECRET_NAME = re.compile(r"(auth|key|token|secret|password|passwd|cookie|credential|signature|sig)", re.I)
_PURE_REF = re.compile(r"^(?:(?:Bearer|Basic|Token)\s+)?\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _fail(message: str, code: int = ExitCode.USAGE) -> typer.Exit:
    print(f"agentwrap: {message}", file=sys.stderr)
    return typer.Exit(code)


def _print_json(doc: dict[str, Any]) -> None:
    print(json.dumps({"schema": SCHEMA_VERSION, **doc}, indent=2, ensure_ascii=False))


# -- redaction -----------------------------------------------------------------------


def redact_header(name: str, value: str) -> str:
    """A header value safe to print: credential-like headers only as `${VAR}` references."""
    if _SECRET_NAME.search(name) and not _PURE_REF.match(value):
        return REDACTED
    return value


def redact_url(url: str) -> str:
    """A URL safe to print: no password, no key-like query values."""
    if "${" in url and "@" not in url and "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if _SECRET_NAME.search(k) and not _PURE_REF.match(v) else v) for k, v in pairs], safe="<>${}:-")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redacted_profile(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    backends = {}
    for name, b in (data.get("backends") or {}).items():
        b = dict(b)
        if "base_url" in b:
            b["base_url"] = redact_url(b["base_url"])
        if "headers" in b:
            b["headers"] = {k: redact_header(k, v) for k, v in b["headers"].items()}
        backends[name] = b
    if backends:
        out["backends"] = backends
    return out


# -- rendering -------------------------------------------------------------------------


def _backend_summary(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": name, "type": b.get("type", "http"), "protocol": b.get("protocol")}
        for name, b in (data.get("backends") or {}).items()
    ]


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths[:-1])] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _env_refs(data: Any) -> list[str]:
    from agentwrap.config.envref import refs_in

    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.update(refs_in(value))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    return sorted(found)


def _guards(data: dict[str, Any]) -> dict[str, Any]:
    """The profile's guards in effect: its `[guards]` over the defaults (all on)."""
    from dataclasses import asdict

    from agentwrap.config.loader import guards_config

    return asdict(guards_config(data.get("guards")))


def _project_guards(catalog) -> tuple[str, dict[str, Any]] | None:
    """(project file, its top-level [guards]) when it sets any; they apply over every profile's."""
    project = catalog.project
    if project is None or not project.guards:
        return None
    return str(project.path), project.guards


def _show_doc(catalog, entry, data: dict[str, Any], project_guards: tuple[str, dict[str, Any]] | None) -> dict[str, Any]:
    safe = _redacted_profile(data)
    backends = {}
    for name, b in (safe.get("backends") or {}).items():
        backends[name] = {
            "type": b.get("type", "http"),
            "protocol": b.get("protocol"),
            "base_url": b.get("base_url"),
            "api_key_env": b.get("api_key_env"),
            "api_key_cmd": b.get("api_key_cmd"),
            "auth_scheme": b.get("auth_scheme"),
            "headers": b.get("headers", {}),
            "timeout_s": b.get("timeout_s"),
            "max_output_tokens": b.get("max_output_tokens"),
            "script": b.get("script"),
            "models": b.get("models", {}),
        }
    routes = []
    for r in safe.get("routes") or [{"backend": next(iter(backends))}]:
        routes.append({"backend": r["backend"], "model": r.get("model"), "fallbacks": r.get("fallbacks", []), "when": r.get("when", {})})
    return {
        "name": entry.name,
        "source": entry.kind,
        "path": str(entry.path),
        "description": safe.get("description", ""),
        "extends": entry.data.get("extends"),
        "overrides": catalog.shadowed(entry),
        "backends": backends,
        "routes": routes,
        "agent_env": safe.get("agent_env", {}),
        "guards": _guards(data),
        "project_guards": project_guards[1] if project_guards else {},
        "env_refs": _env_refs(safe),
    }


# -- the app --------------------------------------------------------------------------------


def make_profiles_app() -> typer.Typer:
    """The `agentwrap profiles` sub-app (register with `app.add_typer(make_profiles_app(), name="profiles")`)."""
    app = typer.Typer(
        help="List, show and create profiles.",
        no_args_is_help=True,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def catalog():
        """The profiles seen from here; a broken project file is one warning on stderr, not a failure."""
        from agentwrap.config.loader import ProfileCatalog

        def warn(message: str) -> None:
            print(f"agentwrap: warning: {message}", file=sys.stderr)

        return ProfileCatalog(Path.cwd(), on_warning=warn)

    @app.command("list")
    def list_(json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout. Default: a table.")) -> None:
        """List the profiles in effect: name, source, backends, description."""
        from agentwrap.errors import ConfigError

        try:
            cat = catalog()
            rows = []
            for entry in cat.entries():
                data = cat.merged(entry)
                rows.append(
                    {
                        "name": entry.name,
                        "source": entry.kind,
                        "path": str(entry.path),
                        "description": data.get("description", ""),
                        "backends": _backend_summary(data),
                        "overrides": cat.shadowed(entry),
                    }
                )
        except ConfigError as exc:
            raise _fail(str(exc)) from None
        if json_out:
            _print_json({"profiles": rows})
            return
        if not rows:
            print("No profiles found. Create one with: agentwrap profiles new NAME", file=sys.stderr)
            return
        table = [["NAME", "SOURCE", "BACKENDS", "DESCRIPTION"]]
        for r in rows:
            source = r["source"] + (f" (over {', '.join(r['overrides'])})" if r["overrides"] else "")
            table.append([r["name"], source, ",".join(b["name"] for b in r["backends"]), r["description"]])
        print(_table(table))

    @app.command("show")
    def show(
        name: str = typer.Argument(..., metavar="NAME|PATH", help="Profile name or TOML path."),
        json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout. Default: TOML."),
    ) -> None:
        """Show a profile as resolved (extends merged; keys never shown, api_key_cmd never run)."""
        from agentwrap.config.schema import check_profile
        from agentwrap.errors import ConfigError

        try:
            cat = catalog()
            entry = cat.lookup(name)
            data = cat.merged(entry)
            problem = check_profile(data)
            if problem is not None:
                raise ConfigError(f"{entry.path}: {entry.field_prefix}{problem[0]}: {problem[1]}")
            project_guards = _project_guards(cat)
        except ConfigError as exc:
            raise _fail(str(exc)) from None
        doc = _show_doc(cat, entry, data, project_guards)
        if json_out:
            _print_json({"profile": doc})
            return
        import tomli_w

        safe = {**_redacted_profile(data), "guards": doc["guards"]}  # guards with their defaults
        print(f"# profile {entry.name!r} ({entry.kind}): {entry.source}")
        if entry.data.get("extends"):
            print(f"# extends {entry.data['extends']!r}; shown merged")
        if doc["env_refs"]:
            print(f"# reads environment variables: {', '.join(doc['env_refs'])}")
        if project_guards is not None:
            over = ", ".join(f"{name}.{key} = {json.dumps(value)}" for name, table in project_guards[1].items() for key, value in table.items())
            print(f"# sessions under {project_guards[0]} use these guards with its [guards] over them: {over or '(none)'}")
        print(tomli_w.dumps(safe), end="")

    @app.command("path")
    def path(json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
        """Print where profiles are read from: your profiles dir and the project file in effect."""
        from agentwrap.config.loader import builtin_profiles_dir, find_project_file, user_profiles_dir

        user = user_profiles_dir()
        project = find_project_file(Path.cwd())
        if json_out:
            _print_json(
                {
                    "user_profiles_dir": str(user),
                    "project_file": str(project) if project else None,
                    "builtin_profiles_dir": str(builtin_profiles_dir()),
                }
            )
            return
        print(f"user profiles: {user}")
        print(f"project file:  {project if project else '(none found from the current directory up)'}")
        print(f"built-ins:     {builtin_profiles_dir()}")

    @app.command("new")
    def new(
        name: str = typer.Argument(..., help="Name of the new profile (its file is NAME.toml in your profiles dir)."),
        from_: str = typer.Option(None, "--from", metavar="NAME|PATH", help="Start from this profile (name or path). Default: a small Anthropic starter."),
    ) -> None:
        """Write a commented starter profile into your profiles dir (never overwrites)."""
        from agentwrap.config.loader import NATIVE_PROFILE_NAME, builtin_profiles_dir, user_profiles_dir
        from agentwrap.errors import ConfigError

        if not _NAME.match(name) or name.endswith(".toml"):
            raise _fail(f"{name!r} is not a valid profile name; use letters, digits, '.', '_' and '-' (no .toml suffix)")
        if name == NATIVE_PROFILE_NAME:
            raise _fail(f'"{NATIVE_PROFILE_NAME}" is reserved (it means: no profile); pick another name')
        target = user_profiles_dir() / f"{name}.toml"
        if target.exists():
            raise _fail(f"{target} already exists; not overwriting it. Edit it, or pick another name.")
        origin = None
        comments: list[str] = []
        data = STARTER_DATA
        if from_:
            try:
                cat = catalog()
                entry = cat.lookup(from_)
                data = {k: v for k, v in cat.merged(entry).items() if k != "name"}
            except ConfigError as exc:
                raise _fail(str(exc)) from None
            origin = f"{entry.kind} profile {entry.name!r} ({entry.source})"
            if entry.kind != "project":
                comments = leading_comments(entry.path)
        text = starter_text(name, data, origin, comments)
        try:
            from agentwrap.files import write_private

            write_private(target, text, exclusive=True)
        except FileExistsError:
            raise _fail(f"{target} already exists; not overwriting it. Edit it, or pick another name.") from None
        except OSError as exc:
            raise _fail(f"cannot write {target}: {exc.strerror or exc}", 1) from None
        if (builtin_profiles_dir() / f"{name}.toml").is_file():
            print(f"agentwrap: note: {name} now overrides the built-in profile of that name", file=sys.stderr)
        print(target)

    return app
