"""The shape of an agent spec and of the wiring it produces."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["AgentSpec", "Wiring", "NativeKey"]


@dataclass(frozen=True, slots=True)
class NativeKey:
    """A provider key found in the user's environment under the agent's usual variable.

    `scheme` says how the upstream expects it: "x-api-key", "bearer" or "x-goog-api-key".
    """

    variable: str
    value: str
    scheme: str


@dataclass(slots=True)
class Wiring:
    """What the child process gets: extra argv before the user's args, env changes, temp files."""

    argv_prefix: list[str] = field(default_factory=list)
    env_set: dict[str, str] = field(default_factory=dict)
    env_unset: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> text, written by the session before spawn
    cleanup: Callable[[], None] | None = None  # run after the agent exits


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Everything agentwrap knows about one agent CLI.

    `wire(origin, secret, key_mode, env, tmpdir, args)` returns the Wiring that points
    the agent at the proxy: `origin` is `http://127.0.0.1:PORT`; the agent must send
    the session `secret` as the first path segment or in the `x-agentwrap-secret`
    header, and never in argv (any local user can read a command line). In key mode
    the agent also gets the secret as its API key, otherwise its own login passes
    through. `args` are the user's own arguments, for agents whose flags must not clash.
    """

    name: str
    binary: str
    npm_package: str
    protocol: str
    native_base_url: str
    key_variables: tuple[tuple[str, str], ...]  # (variable, scheme), in order of preference
    wire: Callable[[str, str, bool, Mapping[str, str], str, list[str]], Wiring]
    version_args: tuple[str, ...] = ("--version",)

    def native_key(self, env: Mapping[str, str]) -> NativeKey | None:
        for variable, scheme in self.key_variables:
            value = env.get(variable, "").strip()
            if value:
                return NativeKey(variable, value, scheme)
        return None

    @property
    def install_hint(self) -> str:
        return f"npm install -g {self.npm_package}"
