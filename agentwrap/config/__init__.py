"""Profiles: schema (pydantic), finding and loading them.

Does file I/O (reads TOML). pydantic is imported only when a profile file is
actually loaded, so the zero-config start-up path stays light.
"""

from agentwrap.config.model import BackendConfig, ProfileConfig, RouteConfig, WhenConfig
from agentwrap.config.loader import builtin_profiles_dir, load_profile, native_profile, user_profiles_dir

__all__ = [
    "BackendConfig",
    "ProfileConfig",
    "RouteConfig",
    "WhenConfig",
    "builtin_profiles_dir",
    "load_profile",
    "native_profile",
    "user_profiles_dir",
]
