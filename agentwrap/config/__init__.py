"""Profiles: schema (pydantic-core), finding, merging and loading them, and keys.

Does file I/O (reads TOML; `backend_key` may run a profile's `api_key_cmd`).
pydantic-core is imported only when a profile file is actually validated, so
the zero-config start-up path stays light.
"""

from agentwrap.config.model import (
    CLAUDE_AGENT_ENV_VARS,
    BackendConfig,
    ModelInfo,
    ProfileConfig,
    RouteConfig,
    WhenConfig,
)

# Everything else is imported on first use: this package sits on the start-up
# path, and `import agentwrap.config.model` should not pay for the loader.
_LAZY = {
    "NATIVE_PROFILE_NAME": "loader",
    "PROJECT_FILE_NAME": "loader",
    "ProfileCatalog": "loader",
    "ProfileEntry": "loader",
    "ProjectFile": "loader",
    "builtin_profiles_dir": "loader",
    "find_project_file": "loader",
    "load_profile": "loader",
    "load_project_file": "loader",
    "native_profile": "loader",
    "select_profile": "loader",
    "user_profiles_dir": "loader",
    "agent_environment": "agentenv",
    "context_window": "agentenv",
    "API_KEY_CMD_TIMEOUT_S": "keys",
    "backend_key": "keys",
    "run_key_command": "keys",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentwrap.config' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"agentwrap.config.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "API_KEY_CMD_TIMEOUT_S",
    "CLAUDE_AGENT_ENV_VARS",
    "NATIVE_PROFILE_NAME",
    "PROJECT_FILE_NAME",
    "BackendConfig",
    "ModelInfo",
    "ProfileCatalog",
    "ProfileConfig",
    "ProfileEntry",
    "ProjectFile",
    "RouteConfig",
    "WhenConfig",
    "agent_environment",
    "backend_key",
    "builtin_profiles_dir",
    "context_window",
    "find_project_file",
    "load_profile",
    "load_project_file",
    "native_profile",
    "run_key_command",
    "select_profile",
    "user_profiles_dir",
]
