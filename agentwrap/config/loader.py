"""Find and load profiles: `--profile NAME|PATH`, the user's config dir, built-ins."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from agentwrap.config.model import BackendConfig, ProfileConfig, RouteConfig, WhenConfig
from agentwrap.errors import ConfigError

__all__ = ["load_profile", "native_profile", "builtin_profiles_dir", "user_profiles_dir", "find_profile"]


def builtin_profiles_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_profiles"  # inside a wheel
    if packaged.is_dir():
        return packaged
    return here.parent / "profiles"  # a source checkout or editable install


def user_profiles_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("agentwrap")) / "profiles"


def native_profile(agent: str, protocol: str, base_url: str) -> ProfileConfig:
    """The zero-config profile: the agent talks to its own provider through the proxy."""
    backend = BackendConfig(name="native", protocol=protocol, base_url=base_url)
    return ProfileConfig(
        name="native",
        source="<built-in native pass-through>",
        backends={"native": backend},
        routes=(RouteConfig(backend="native"),),
    )


def _known_profiles() -> list[str]:
    names: set[str] = set()
    for d in (user_profiles_dir(), builtin_profiles_dir()):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def find_profile(spec: str) -> Path:
    """A profile spec is a path (has a slash or ends in .toml) or a name."""
    looks_like_path = os.sep in spec or "/" in spec or spec.endswith(".toml")
    if looks_like_path:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"Profile file {spec} not found.")
        return path
    for d in (user_profiles_dir(), builtin_profiles_dir()):
        candidate = d / f"{spec}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(_known_profiles()) or "(none)"
    raise ConfigError(f'Profile "{spec}" not found. Known profiles: {known}. See: agentwrap profiles list')


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def load_profile(spec: str) -> ProfileConfig:
    """Load and validate a profile; raises ConfigError naming the file, the field and the fix."""
    path = find_profile(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read profile: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}. Fix the syntax at that line.") from exc

    from pydantic_core import ValidationError

    from agentwrap.config.schema import PROFILE_VALIDATOR, check_profile

    try:
        valid = PROFILE_VALIDATOR.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _field_path(tuple(err.get("loc", ())))
        msg = err.get("msg", "invalid value")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}: {where}: {msg}{more}") from exc
    problem = check_profile(valid)
    if problem is not None:
        raise ConfigError(f"{path}: {problem[0]}: {problem[1]}")

    backends: dict[str, BackendConfig] = {}
    for name, b in valid["backends"].items():
        script = None
        if b.get("script"):
            script_path = Path(os.path.expandvars(b["script"])).expanduser()
            if not script_path.is_absolute():
                script_path = path.parent / script_path
            if not script_path.is_file():
                raise ConfigError(f"{path}: backends.{name}.script: file {script_path} not found")
            script = str(script_path)
        backends[name] = BackendConfig(
            name=name,
            type=b.get("type", "http"),
            protocol=b.get("protocol"),
            base_url=b["base_url"].rstrip("/") if b.get("base_url") else None,
            api_key_env=b.get("api_key_env"),
            headers=tuple(b.get("headers", {}).items()),
            timeout_s=b.get("timeout_s"),
            script=script,
        )
    routes = tuple(
        RouteConfig(
            backend=r["backend"],
            model=r.get("model"),
            when=WhenConfig(**r["when"]) if "when" in r else None,
            fallbacks=tuple(r.get("fallbacks", [])),
        )
        for r in valid.get("routes", [])
    )
    if not routes:
        # No routes: everything goes to the first backend declared.
        routes = (RouteConfig(backend=next(iter(backends))),)
    return ProfileConfig(name=valid.get("name") or path.stem, source=str(path), backends=backends, routes=routes)
