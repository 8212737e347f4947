"""Find, merge and load profiles; pick the one an agent session uses.

Profiles come from three layers, later beating earlier for the same name:

1. built-ins shipped in `profiles/` (inside the wheel: `agentwrap/_profiles`),
2. the user's `platformdirs.user_config_dir("agentwrap")/profiles/NAME.toml`,
3. `[profiles.NAME]` tables of the project file `.agentwrap.toml`, found by
   walking up from the working directory.

A profile from a higher layer replaces the lower one whole, unless it says
`extends = "NAME"`: then it is deep-merged over NAME (tables merge key by key;
arrays such as `routes` and plain values replace). `extends` naming the
profile's own name means "the one from the layer below".

Which profile an agent uses (`select_profile`): `--profile` > the
`AGENTWRAP_PROFILE` variable > the project file's `[agents.AGENT] profile` >
its top-level `profile` > none (native pass-through). The name `native`
anywhere in that chain means "no profile" explicitly.

Guards: a profile's `[guards]` merge like any table (over `extends`), and the
project file's top-level `[guards]` is laid over the guards of whichever
profile a session in that project uses, native pass-through included
(`ProfileCatalog.resolve`, `ProfileCatalog.with_project_guards`).

Only the files a lookup needs are read, and pydantic-core is imported only when
a profile file is actually validated, so the zero-config path stays light.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agentwrap.config.model import BackendConfig, GuardsConfig, ModelInfo, ProfileConfig, RouteConfig, WhenConfig
from agentwrap.errors import ConfigError

__all__ = [
    "PROJECT_FILE_NAME",
    "NATIVE_PROFILE_NAME",
    "LAYERS",
    "ProfileEntry",
    "ProjectFile",
    "ProfileCatalog",
    "builtin_profiles_dir",
    "user_profiles_dir",
    "find_project_file",
    "load_project_file",
    "find_profile",
    "load_profile",
    "native_profile",
    "select_profile",
    "is_path_spec",
    "guards_config",
]

PROJECT_FILE_NAME = ".agentwrap.toml"
NATIVE_PROFILE_NAME = "native"
LAYERS = ("built-in", "user", "project")  # lowest precedence first


def builtin_profiles_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_profiles"  # inside a wheel
    if packaged.is_dir():
        return packaged
    return here.parent / "profiles"  # a source checkout or editable install


def user_profiles_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("agentwrap")) / "profiles"


def native_profile(agent: str, protocol: str, base_url: str, headers: tuple[tuple[str, str], ...] = ()) -> ProfileConfig:
    """The zero-config profile: the agent talks to its own provider (or the endpoint the user
    configured for it) through the proxy."""
    backend = BackendConfig(name="native", protocol=protocol, base_url=base_url, headers=headers)
    return ProfileConfig(
        name="native",
        source="<built-in native pass-through>",
        backends={"native": backend},
        routes=(RouteConfig(backend="native"),),
        source_kind="native",
    )


def guards_config(data: Mapping[str, Any] | None, base: GuardsConfig = GuardsConfig()) -> GuardsConfig:
    """`base` with a validated `[guards]` table laid over it, key by key."""
    if not data:
        return base
    from dataclasses import replace

    return GuardsConfig(
        loop=replace(base.loop, **data.get("loop", {})),
        tool_loop=replace(base.tool_loop, **data.get("tool_loop", {})),
        tool_repair=replace(base.tool_repair, **data.get("tool_repair", {})),
    )


def is_path_spec(spec: str) -> bool:
    """A profile spec is a path when it has a slash or ends in .toml; otherwise a name."""
    return os.sep in spec or "/" in spec or spec.endswith(".toml")


# -- reading files --------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}. Fix the syntax at that line.") from exc


def _validate(validator_name: str, data: dict[str, Any], path: Path) -> dict[str, Any]:
    from pydantic_core import ValidationError

    from agentwrap.config import schema

    validator = getattr(schema, validator_name)
    try:
        return validator.validate_python(data)
    except ValidationError as exc:
        first = schema.describe_error(exc.errors()[0], project=validator_name == "PROJECT_VALIDATOR")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}: {first}{more}") from exc


def _absolutize_scripts(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Make relative `script` paths absolute against the file that declared them (before merging)."""
    backends = data.get("backends")
    if not backends:
        return data
    fixed = {}
    for name, b in backends.items():
        script = b.get("script")
        if script and "$" not in script and not script.startswith("~") and not Path(script).is_absolute():
            b = {**b, "script": str(base_dir / script)}
        fixed[name] = b
    return {**data, "backends": fixed}


class ProfileEntry:
    """One profile as found in one layer: validated, not merged, not expanded.

    A plain slotted class rather than a dataclass: this module is on the
    start-up path, and each dataclass costs about a millisecond to create.
    """

    __slots__ = ("name", "kind", "path", "data")

    def __init__(self, name: str, kind: str, path: Path, data: dict[str, Any]) -> None:
        self.name = name
        self.kind = kind  # "built-in" | "user" | "project" | "path"
        self.path = path  # the file it is written in
        self.data = data

    def __repr__(self) -> str:
        return f"ProfileEntry({self.name!r}, {self.kind!r}, {str(self.path)!r})"

    @property
    def field_prefix(self) -> str:
        """Where the profile's keys sit inside its file (project profiles live under [profiles.NAME])."""
        return f"profiles.{self.name}." if self.kind == "project" else ""

    @property
    def source(self) -> str:
        return f"{self.path} [profiles.{self.name}]" if self.kind == "project" else str(self.path)

    @property
    def description(self) -> str:
        return self.data.get("description", "")


def _entry_from_file(path: Path, kind: str, name: str | None = None) -> ProfileEntry:
    data = _validate("PROFILE_VALIDATOR", _read_toml(path), path)
    if name is None:
        name = data.get("name") or path.stem
    return ProfileEntry(name=name, kind=kind, path=path, data=_absolutize_scripts(data, path.parent))


class ProjectFile:
    """A validated `.agentwrap.toml`."""

    __slots__ = ("path", "default_profile", "agents", "profiles", "guards")

    def __init__(
        self,
        path: Path,
        default_profile: str | None = None,
        agents: dict[str, str] | None = None,
        profiles: dict[str, ProfileEntry] | None = None,
        guards: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.default_profile = default_profile
        self.agents = agents or {}  # agent -> profile spec
        self.profiles = profiles or {}
        self.guards = guards or {}  # the top-level [guards] table, validated, for every session here

    def __repr__(self) -> str:
        return f"ProjectFile({str(self.path)!r})"

    def choice(self, agent: str) -> tuple[str, str] | None:
        """(profile spec, reason) the project file picks for `agent`, or None."""
        if agent in self.agents:
            return self.agents[agent], f"{self.path} [agents.{agent}]"
        if self.default_profile:
            return self.default_profile, f"{self.path} profile"
        return None


def find_project_file(cwd: Path) -> Path | None:
    """The nearest `.agentwrap.toml` in `cwd` or one of its parents."""
    here = Path(cwd).absolute()
    for d in (here, *here.parents):
        candidate = d / PROJECT_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def load_project_file(path: Path) -> ProjectFile:
    """Read and validate a project file; raises ConfigError naming the file and the field."""
    data = _validate("PROJECT_VALIDATOR", _read_toml(path), path)
    profiles: dict[str, ProfileEntry] = {}
    for name, pdata in (data.get("profiles") or {}).items():
        for bname, b in (pdata.get("backends") or {}).items():
            if "api_key_cmd" in b:
                # A project file comes with a repository you may not have written; running a
                # command from it whenever an agent starts would hand that repository a shell.
                raise ConfigError(
                    f"{path}: profiles.{name}.backends.{bname}.api_key_cmd: not allowed in a project file "
                    f"(it would run a command from the repository); put the backend in a user profile "
                    f"(agentwrap profiles new NAME) and select it here with profile = \"NAME\""
                )
        profiles[name] = ProfileEntry(name=name, kind="project", path=path, data=_absolutize_scripts(pdata, path.parent))
    agents = {agent: choice["profile"] for agent, choice in (data.get("agents") or {}).items()}
    return ProjectFile(path=path, default_profile=data.get("profile"), agents=agents, profiles=profiles, guards=data.get("guards"))


# -- the catalogue ----------------------------------------------------------------


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class ProfileCatalog:
    """Every profile visible from one working directory, layer by layer.

    Files are read on demand and cached, so resolving one name reads one file
    (plus what it `extends`).
    """

    def __init__(
        self,
        cwd: Path | None = None,
        *,
        builtin_dir: Path | None = None,
        user_dir: Path | None = None,
        project_file: Path | None = None,
        search_project: bool = True,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.cwd = Path.cwd() if cwd is None else Path(cwd)
        self.builtin_dir = builtin_dir or builtin_profiles_dir()
        self.user_dir = user_dir or user_profiles_dir()
        self._project_path = project_file if project_file is not None else (find_project_file(self.cwd) if search_project else None)
        self._project: ProjectFile | None = None
        self._files: dict[Path, ProfileEntry] = {}
        # Given `on_warning`, a broken project file is reported there and left out instead of
        # raising: a profile named with --profile must still work in a repository with a broken file.
        self._on_warning = on_warning

    # layers

    @property
    def project_path(self) -> Path | None:
        return self._project_path

    @property
    def project(self) -> ProjectFile | None:
        if self._project is None and self._project_path is not None:
            try:
                self._project = load_project_file(self._project_path)
            except ConfigError as exc:
                if self._on_warning is None:
                    raise
                self._on_warning(f"ignoring the project file: {exc}")
                self._project_path = None
        return self._project

    def _file_entry(self, path: Path, kind: str, name: str | None) -> ProfileEntry:
        cached = self._files.get(path)
        if cached is None:
            cached = self._files[path] = _entry_from_file(path, kind, name)
        return cached

    def _in_layer(self, layer: str, name: str) -> ProfileEntry | None:
        if layer == "project":
            project = self.project
            return project.profiles.get(name) if project else None
        d = self.builtin_dir if layer == "built-in" else self.user_dir
        path = d / f"{name}.toml"
        return self._file_entry(path, layer, name) if path.is_file() else None

    def entry(self, name: str, *, below: str | None = None) -> ProfileEntry:
        """The highest-precedence profile called `name` (only layers under `below`, if given)."""
        layers = LAYERS if below in (None, "path") else LAYERS[: LAYERS.index(below)]
        for layer in reversed(layers):
            found = self._in_layer(layer, name)
            if found is not None:
                return found
        where = f" below the {below} layer" if below not in (None, "path") else ""
        known = ", ".join(self.names()) or "(none)"
        raise ConfigError(f'Profile "{name}" not found{where}. Known profiles: {known}. See: agentwrap profiles list')

    def path_entry(self, spec: str) -> ProfileEntry:
        path = Path(spec).expanduser()
        if not path.is_absolute():
            path = self.cwd / path
        if not path.is_file():
            raise ConfigError(f"Profile file {spec} not found.")
        return self._file_entry(path, "path", None)

    def lookup(self, spec: str) -> ProfileEntry:
        """A name (through the layers) or a path."""
        return self.path_entry(spec) if is_path_spec(spec) else self.entry(spec)

    def names(self) -> list[str]:
        names: set[str] = set()
        for d in (self.builtin_dir, self.user_dir):
            if d.is_dir():
                names.update(p.stem for p in d.glob("*.toml"))
        try:
            project = self.project
        except ConfigError:
            project = None
        if project:
            names.update(project.profiles)
        return sorted(names)

    def entries(self) -> list[ProfileEntry]:
        """The profile in effect for every name, sorted by name (validates every file)."""
        return [self.entry(name) for name in self.names()]

    def shadowed(self, entry: ProfileEntry) -> list[str]:
        """The lower layers that also define `entry.name` (for `profiles list`)."""
        if entry.kind not in LAYERS:
            return []
        return [layer for layer in LAYERS[: LAYERS.index(entry.kind)] if self._exists(layer, entry.name)]

    def _exists(self, layer: str, name: str) -> bool:
        if layer == "project":
            return bool(self.project and name in self.project.profiles)
        d = self.builtin_dir if layer == "built-in" else self.user_dir
        return (d / f"{name}.toml").is_file()

    # merging and building

    def merged(self, entry: ProfileEntry) -> dict[str, Any]:
        """`entry`'s data with its `extends` chain merged in (validated per layer, not expanded)."""
        return self._merged(entry, ())

    def _merged(self, entry: ProfileEntry, chain: tuple[tuple[str, str], ...]) -> dict[str, Any]:
        key = (entry.kind, entry.source)
        if key in chain:
            names = " -> ".join(n for n in [*(c[1] for c in chain), entry.source])
            raise ConfigError(f"{entry.path}: {entry.field_prefix}extends: the chain loops back on itself ({names}); break the loop")
        base_name = entry.data.get("extends")
        own = {k: v for k, v in entry.data.items() if k != "extends"}
        if not base_name:
            return own
        try:
            base = self.entry(base_name, below=entry.kind) if base_name == entry.name else self.entry(base_name)
        except ConfigError as exc:
            raise ConfigError(f"{entry.path}: {entry.field_prefix}extends: {exc}") from exc
        return _deep_merge(self._merged(base, (*chain, key)), own)

    def build(self, entry: ProfileEntry, env: Mapping[str, str]) -> ProfileConfig:
        """Merge, check across fields, expand `${VAR}`s and build the ProfileConfig."""
        return _build(entry, self.merged(entry), env)

    def resolve(self, spec: str, env: Mapping[str, str] | None = None) -> ProfileConfig:
        """Load the profile `spec` (a name or a path) ready for a session (project guards applied)."""
        return self.with_project_guards(self.build(self.lookup(spec), os.environ if env is None else env))

    def with_project_guards(self, profile: ProfileConfig) -> ProfileConfig:
        """`profile` with the project file's top-level `[guards]` laid over its own."""
        project = self.project
        if project is None or not project.guards:
            return profile
        from dataclasses import replace

        return replace(profile, guards=guards_config(project.guards, profile.guards))


def _build(entry: ProfileEntry, data: dict[str, Any], env: Mapping[str, str]) -> ProfileConfig:
    from agentwrap.config.envref import EnvRefError, expand_refs
    from agentwrap.config.schema import check_profile, check_url

    file, prefix = entry.path, entry.field_prefix

    def fail(where: str, message: str) -> ConfigError:
        return ConfigError(f"{file}: {prefix}{where}: {message}")

    problem = check_profile(data)
    if problem is not None:
        raise fail(*problem)

    def expand(value: str, where: str) -> str:
        try:
            out = expand_refs(value, env)
        except EnvRefError as exc:
            raise fail(where, str(exc)) from None
        if any(c in out for c in "\r\n\0"):
            # These values end up in HTTP heads, where a line break would forge a header.
            raise fail(where, "contains a line break or NUL (check the variables it reads); remove it")
        return out

    backends: dict[str, BackendConfig] = {}
    for name, b in data["backends"].items():
        where = f"backends.{name}"
        base_url = None
        if b.get("base_url"):
            base_url = expand(b["base_url"], f"{where}.base_url").rstrip("/")
            bad = check_url(base_url)
            if bad:
                raise fail(f"{where}.base_url", bad)
        script = None
        if b.get("script"):
            script_path = Path(os.path.expandvars(b["script"])).expanduser()
            if not script_path.is_absolute():
                script_path = file.parent / script_path
            if not script_path.is_file():
                raise fail(f"{where}.script", f"file {script_path} not found")
            script = str(script_path)
        headers = tuple((k, expand(v, f"{where}.headers.{k}")) for k, v in (b.get("headers") or {}).items())
        backends[name] = BackendConfig(
            name=name,
            type=b.get("type", "http"),
            protocol=b.get("protocol"),
            base_url=base_url,
            api_key_env=b.get("api_key_env"),
            headers=headers,
            timeout_s=b.get("timeout_s"),
            max_output_tokens=b.get("max_output_tokens"),
            script=script,
            api_key_cmd=expand(b["api_key_cmd"], f"{where}.api_key_cmd") if b.get("api_key_cmd") else None,
            auth_scheme=b.get("auth_scheme"),
            credentials=b.get("credentials"),
            models={m: ModelInfo(**info) for m, info in (b.get("models") or {}).items()},
        )

    routes = []
    for i, r in enumerate(data.get("routes") or []):
        when = r.get("when")
        routes.append(
            RouteConfig(
                backend=r["backend"],
                model=expand(r["model"], f"routes[{i}].model") if r.get("model") else None,
                when=WhenConfig(**when) if when is not None else None,
                fallbacks=tuple(r.get("fallbacks", [])),
            )
        )
    if not routes:
        # No routes: everything goes to the first backend declared.
        routes.append(RouteConfig(backend=next(iter(backends))))

    agent_env: dict[str, dict[str, str]] = {}
    for agent, variables in (data.get("agent_env") or {}).items():
        agent_env[agent] = {
            var: expand(str(value), f"agent_env.{agent}.{var}") for var, value in variables.items()
        }

    if entry.kind == "path":
        name = data.get("name") or entry.name
    else:
        name = entry.name
    return ProfileConfig(
        name=name,
        source=entry.source,
        backends=backends,
        routes=tuple(routes),
        description=data.get("description", ""),
        source_kind=entry.kind,
        agent_env=agent_env,
        guards=guards_config(data.get("guards")),
    )


# -- the public entry points ------------------------------------------------------


def find_profile(spec: str) -> Path:
    """The file of a user or built-in profile, or of a profile path (compatibility helper)."""
    if is_path_spec(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"Profile file {spec} not found.")
        return path
    for d in (user_profiles_dir(), builtin_profiles_dir()):
        candidate = d / f"{spec}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(ProfileCatalog(search_project=False).names()) or "(none)"
    raise ConfigError(f'Profile "{spec}" not found. Known profiles: {known}. See: agentwrap profiles list')


def load_profile(spec: str, *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> ProfileConfig:
    """Load and validate a profile by name (project, user, built-in) or path.

    Raises ConfigError naming the file, the field and the fix.
    """
    return ProfileCatalog(cwd).resolve(spec, env)


def select_profile(
    agent: str,
    flag: str | None,
    env: Mapping[str, str],
    cwd: Path,
    *,
    catalog: ProfileCatalog | None = None,
    project: bool = True,
    warnings: list[str] | None = None,
    native: Callable[[], ProfileConfig] | None = None,
) -> tuple[ProfileConfig | None, str]:
    """The profile `agent` uses in `cwd`, and why.

    Precedence: `--profile` (`flag`) > `AGENTWRAP_PROFILE` > the project file's
    `[agents.AGENT] profile` > its `profile` > none: native pass-through, which
    comes back as None, or, given `native`, as `native()` with the project
    file's `[guards]` laid over it (every profile gets them). `project=False`
    (or `AGENTWRAP_NO_PROJECT=1`) ignores the project file. When a profile is
    named (flag or variable) and `warnings` is a list, a broken project file is
    reported there and ignored. Raises ConfigError.
    """
    project = project and env.get("AGENTWRAP_NO_PROJECT", "") in ("", "0")
    if flag:
        spec, reason = flag, f"--profile {flag}"
    elif env.get("AGENTWRAP_PROFILE"):
        spec = env["AGENTWRAP_PROFILE"]
        reason = f"AGENTWRAP_PROFILE={spec}"
    else:
        spec = None
        reason = ""
    if catalog is None:
        # Without a flag or variable the project file decides; with one, it may still hold the named profile.
        project_path = find_project_file(cwd) if project else None
        catalog = ProfileCatalog(
            cwd, project_file=project_path, search_project=False,
            on_warning=warnings.append if spec is not None and warnings is not None else None,
        )

    def native_choice(why: str) -> tuple[ProfileConfig | None, str]:
        return (catalog.with_project_guards(native()) if native is not None else None), f"{why}: native pass-through"

    if spec is not None and spec == NATIVE_PROFILE_NAME:
        return native_choice(reason)
    if spec is None:
        try:
            found = catalog.project
        except ConfigError as exc:
            raise ConfigError(f"{exc} (or run with --no-project to ignore the project file)") from exc
        choice = found.choice(agent) if found else None
        if choice is None:
            if found:
                where = f"{found.path} picks none for {agent}"
            else:
                where = "no --profile, AGENTWRAP_PROFILE or .agentwrap.toml" if project else "the project file ignored"
            return native_choice(where)
        spec, reason = choice
        if spec == NATIVE_PROFILE_NAME:
            return native_choice(reason)
        if is_path_spec(spec) and not Path(spec).expanduser().is_absolute():
            spec = str(found.path.parent / spec)  # paths in a project file are relative to it
    try:
        profile = catalog.resolve(spec, env)
    except ConfigError as exc:
        if reason.startswith(("--profile", "AGENTWRAP_PROFILE")):
            raise
        raise ConfigError(f"{exc} (selected by {reason})") from exc
    return profile, f"{reason} -> {profile.source}"
