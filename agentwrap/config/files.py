"""Reading profile files: TOML, validation against the schema, one file's entry."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from agentwrap.errors import ConfigError

__all__ = ["ProfileEntry", "entry_from_file", "read_toml", "validate", "absolutize_scripts"]


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}. Fix the syntax at that line.") from exc


def validate(validator_name: str, data: dict[str, Any], path: Path) -> dict[str, Any]:
    from pydantic_core import ValidationError

    from agentwrap.config import schema

    validator = getattr(schema, validator_name)
    try:
        return validator.validate_python(data)
    except ValidationError as exc:
        first = schema.describe_error(exc.errors()[0], project=validator_name == "PROJECT_VALIDATOR")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}: {first}{more}") from exc


def absolutize_scripts(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
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


def entry_from_file(path: Path, kind: str, name: str | None = None) -> ProfileEntry:
    data = validate("PROFILE_VALIDATOR", read_toml(path), path)
    if name is None:
        name = data.get("name") or path.stem
    return ProfileEntry(name=name, kind=kind, path=path, data=absolutize_scripts(data, path.parent))
