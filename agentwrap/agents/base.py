"""The shape of an agent spec and of the wiring it produces."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["AgentSpec", "Resume", "Wiring", "WireContext", "NativeKey", "NativeUpstream", "same_origin", "key_from", "header_value",
           "session_id_like"]


@dataclass(frozen=True, slots=True)
class NativeKey:
    """A provider key found in the user's environment under the agent's usual variable.

    `scheme` says how the upstream expects it: "x-api-key", "bearer" or "x-goog-api-key".
    """

    variable: str
    value: str
    scheme: str


@dataclass(frozen=True, slots=True)
class NativeUpstream:
    """Where the agent would send its requests on its own, and with which credential.

    A session without a profile forwards there (zero-config pass-through), and
    the user's own key (`key`) is only ever sent to this upstream's origin: it
    was configured for this endpoint and no other. `source` says where the
    endpoint came from ("the default", "ANTHROPIC_BASE_URL in your environment",
    a settings file, Codex's selected provider); `login` describes the agent's
    own login when there is no key (its credentials then pass through);
    `headers` are static headers the user's configuration adds (a Codex
    provider's `http_headers`).
    """

    base_url: str
    source: str = "the default"
    key: NativeKey | None = None
    login: str = ""
    headers: tuple[tuple[str, str], ...] = ()


def same_origin(a: str | None, b: str | None) -> bool:
    """True when two URLs share scheme, host and port (a key configured for one may go to the other)."""
    from urllib.parse import urlsplit

    if not a or not b:
        return False
    try:
        x, y = urlsplit(a), urlsplit(b)
        return (x.scheme.lower(), (x.hostname or "").lower(), x.port) == (y.scheme.lower(), (y.hostname or "").lower(), y.port)
    except ValueError:
        return False


def key_from(env: Mapping[str, str], variables: tuple[tuple[str, str], ...]) -> NativeKey | None:
    """The first non-empty key among `(variable, scheme)` pairs."""
    for variable, scheme in variables:
        value = env.get(variable, "").strip()
        if value:
            return NativeKey(variable, value, scheme)
    return None


@dataclass(frozen=True, slots=True)
class WireContext:
    """What an agent's `wire()` gets: the proxy's `origin` (`http://127.0.0.1:PORT`), the
    session `secret`, whether the agent gets the secret as its key (`key_mode`), the
    environment agentwrap runs in, a private temporary directory for files, the user's
    own arguments and the agent's working directory."""

    origin: str
    secret: str
    key_mode: bool
    env: Mapping[str, str]
    tmpdir: str
    args: tuple[str, ...] = ()
    cwd: str = "."


@dataclass(slots=True)
class Wiring:
    """What the child process gets: extra argv before the user's args, env changes, temp files."""

    argv_prefix: list[str] = field(default_factory=list)
    env_set: dict[str, str] = field(default_factory=dict)
    env_unset: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> text, written by the session before spawn
    cleanup: Callable[[], None] | None = None  # run after the agent exits


def header_value(headers, name: bytes) -> str | None:
    """The first value of header `name` (lower case) in a list of (bytes, bytes) pairs."""
    for n, v in headers:
        if n.lower() == name:
            return v.decode("latin-1")
    return None


_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{7,127}")


def session_id_like(value: str | None) -> str | None:
    """`value` if it can be an agent's session id (a UUID or the like: letters, digits, `-`, `_`),
    else None: an id from a request goes into file names and a printed command line."""
    return value if value is not None and _SESSION_ID.fullmatch(value) else None


@dataclass(frozen=True, slots=True)
class Resume:
    """How the user resumes one of the agent's sessions, and how agentwrap learns its id.

    - `from_request(headers)`: the session id a request's headers carry, or None;
      None itself for an agent that does not name its session on the wire;
    - `saved(env, cwd, seen, since)`: after the agent exited, the id of a session it
      saved and can resume: the newest of `seen` (ids from its requests, newest
      first) whose session file exists, or the newest it wrote since `since` (a
      `time.time()`); None when there is none (nothing said, nothing saved);
    - `args(id)`: the agent's own arguments that resume it.
    """

    from_request: Callable[[list], str | None] | None
    saved: Callable[[Mapping[str, str], str, list[str], float], str | None]
    args: Callable[[str], list[str]]


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Everything agentwrap knows about one agent CLI.

    `native(env, cwd)` reads the agent's own configuration (environment, settings
    files, login files) to find where it would send requests without agentwrap.
    `wire(WireContext)` returns the Wiring that points the agent at the proxy: the
    agent must send the session secret as the first path segment or in the
    `x-agentwrap-secret` header, and never in argv (any local user can read a
    command line). In key mode the agent also gets the secret as its API key,
    otherwise its own login passes through.
    """

    name: str
    binary: str
    npm_package: str
    protocol: str
    native_base_url: str  # the provider's default endpoint
    key_variables: tuple[tuple[str, str], ...]  # (variable, scheme), in order of preference
    wire: Callable[[WireContext], Wiring]
    # native(env, cwd): the endpoint and credential the agent would use on its own (reads its config files)
    native: Callable[[Mapping[str, str], str], NativeUpstream]
    version_args: tuple[str, ...] = ("--version",)
    resume: Resume | None = None

    @property
    def install_hint(self) -> str:
        return f"npm install -g {self.npm_package}"
