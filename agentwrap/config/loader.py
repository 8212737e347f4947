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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agentwrap.config.build import build_profile, guards_config, native_profile
from agentwrap.config.files import ProfileEntry, entry_from_file
from agentwrap.config.model import ProfileConfig
from agentwrap.config.project import PROJECT_FILE_NAME, ProjectFile, find_project_file, load_project_file
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


def is_path_spec(spec: str) -> bool:
    """A profile spec is a path when it has a slash or ends in .toml; otherwise a name."""
    return os.sep in spec or "/" in spec or spec.endswith(".toml")


# -- reading files --------------------------------------------------------------


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
            cached = self._files[path] = entry_from_file(path, kind, name)
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
        return build_profile(entry, self.merged(entry), env)

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
