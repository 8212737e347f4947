"""The project file (`.agentwrap.toml`): found by walking up, which profile each agent uses,
its own profiles and guards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentwrap.config.files import ProfileEntry, absolutize_scripts, read_toml, validate
from agentwrap.errors import ConfigError

__all__ = ["PROJECT_FILE_NAME", "ProjectFile", "find_project_file", "load_project_file"]

PROJECT_FILE_NAME = ".agentwrap.toml"


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
    data = validate("PROJECT_VALIDATOR", read_toml(path), path)
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
        profiles[name] = ProfileEntry(name=name, kind="project", path=path, data=absolutize_scripts(pdata, path.parent))
    agents = {agent: choice["profile"] for agent, choice in (data.get("agents") or {}).items()}
    return ProjectFile(path=path, default_profile=data.get("profile"), agents=agents, profiles=profiles, guards=data.get("guards"))
