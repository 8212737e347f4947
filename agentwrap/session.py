"""One wrapped run: resolve the profile, start the proxy, spawn the agent, wait, summarise.

Order matters for start-up time and safety: the listening socket is bound
first (so the port is known), the agent is spawned before the proxy thread
starts (so no thread exists at fork time and the child can be tied to our
lifetime with PR_SET_PDEATHSIG), and only then does the proxy loop start;
the agent's first connection waits in the listen backlog meanwhile.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentwrap.agents import AGENTS, AgentSpec
from agentwrap.agents.base import NativeKey
from agentwrap.config.model import ProfileConfig
from agentwrap.errors import AgentNotFound, AgentwrapError, ConfigError
from agentwrap.proxy.auth import UpstreamAuth, auth_header

if TYPE_CHECKING:
    from agentwrap.proxy.addons import AddonChain
    from agentwrap.proxy.addons.stats import Stats
    from agentwrap.proxy.dispatch import Dispatcher
    from agentwrap.proxy.server import ProxyServer

__all__ = [
    "SessionOptions", "SessionResult", "SessionPlan", "BoundProxy", "Routing",
    "run_session", "plan_session", "resolve_routing", "bind_proxy", "backend_auth",
]

FORWARDED_SIGNALS = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
KILL_GRACE_S = 5.0


@dataclass(slots=True)
class SessionOptions:
    agent: str
    args: list[str] = field(default_factory=list)
    profile: str | None = None
    quiet: bool = False
    grace_s: float = 2.0
    capture_dir: str | None = None  # None: AGENTWRAP_CAPTURE_DIR, else the platform state dir
    capture: bool = True
    cwd: str | None = None  # the agent's working directory (default: ours)
    replay: object | None = None  # a backends.replay.ReplayBackend: serve a recording instead of routing
    replay_of: str | None = None  # the bundle being replayed, for the new bundle's header


@dataclass(slots=True)
class SessionResult:
    exit_code: int
    requests: int
    errors: int
    duration_s: float
    bundle: str | None = None


@dataclass(slots=True)
class SessionPlan:
    """Everything decided before anything starts; built without side effects."""

    spec: AgentSpec
    binary: str
    routing: Routing
    scripted: dict = field(default_factory=dict)  # loaded before the agent starts: a broken script stops us there

    @property
    def profile(self) -> ProfileConfig:
        return self.routing.profile


def _find_binary(spec: AgentSpec, env: Mapping[str, str]) -> str:
    found = shutil.which(spec.binary, path=env.get("PATH"))
    if not found:
        raise AgentNotFound(f"{spec.binary} not found on PATH. Install it with: {spec.install_hint}")
    return found


def _codex_chatgpt_login(env: Mapping[str, str]) -> bool:
    """True when Codex's auth.json holds a ChatGPT login (not an API key)."""
    import json

    home = env.get("CODEX_HOME") or os.path.join(env.get("HOME", os.path.expanduser("~")), ".codex")
    try:
        with open(os.path.join(home, "auth.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    mode = str(data.get("auth_mode") or "").lower()
    return mode == "chatgpt" or (not mode and bool(data.get("tokens")) and not data.get("OPENAI_API_KEY"))


def _default_profile(spec: AgentSpec, native: NativeKey | None, env: Mapping[str, str]) -> ProfileConfig:
    from agentwrap.config.loader import native_profile

    base = spec.native_base_url
    if native is None:
        # Own-login pass-through: each agent's login talks to a different endpoint.
        if spec.name == "codex" and _codex_chatgpt_login(env):
            from agentwrap.agents.codex import CHATGPT_BASE_URL

            base = CHATGPT_BASE_URL
        elif spec.name == "gemini":
            from agentwrap.agents.gemini import CODE_ASSIST_BASE_URL

            base = CODE_ASSIST_BASE_URL
    return native_profile(spec.name, spec.protocol, base)


@dataclass(slots=True)
class Routing:
    """How one session routes: the profile, why it was chosen, and the upstream credentials."""

    profile: ProfileConfig
    reason: str
    key_mode: bool
    auth: dict[str, UpstreamAuth]
    keys: list[str]  # every key value agentwrap holds, for redaction


def _routed_backends(profile: ProfileConfig) -> list:
    used = {r.backend for r in profile.routes} | {f for r in profile.routes for f in r.fallbacks}
    return [profile.backends[n] for n in sorted(used)]


def backend_auth(
    backend, profile: ProfileConfig, spec: AgentSpec, env: Mapping[str, str], key_mode: bool
) -> tuple[UpstreamAuth, str | None]:
    """The credential for one backend and the key value it holds (for redaction). Raises ConfigError."""
    from agentwrap.config.keys import backend_key

    if backend.type == "scripted":
        return UpstreamAuth(None, True), None
    if backend.has_key_source:
        value = backend_key(backend, env, source=profile.source)
        protocol = backend.protocol or spec.protocol
        scheme = backend.auth_scheme or ("x-api-key" if protocol == "anthropic_messages" else "bearer")
        return UpstreamAuth(auth_header(protocol, scheme, value), True), value
    if key_mode:
        native = spec.native_key(env)
        if native is not None and backend.protocol == spec.protocol:
            return UpstreamAuth(auth_header(backend.protocol, native.scheme, native.value), True), native.value
        return UpstreamAuth(None, True), None
    return UpstreamAuth(None, False), None


def resolve_routing(spec: AgentSpec, flag: str | None, env: Mapping[str, str], cwd: str | None = None) -> Routing:
    """Select the profile (flag > AGENTWRAP_PROFILE > project file > native) and the
    credentials of every backend it routes to. Raises ConfigError. No side effects
    beyond running a profile's `api_key_cmd`."""
    from pathlib import Path

    from agentwrap.config.loader import select_profile

    native = spec.native_key(env)
    profile, reason = select_profile(spec.name, flag, env, Path(cwd or os.getcwd()))
    if profile is None:
        profile = _default_profile(spec, native, env)
    check_protocols(profile, spec)
    backends = _routed_backends(profile)
    key_mode = native is not None or any(b.type == "scripted" or b.has_key_source for b in backends)
    auth: dict[str, UpstreamAuth] = {}
    keys: list[str] = [native.value] if native is not None else []
    for b in backends:
        auth[b.name], value = backend_auth(b, profile, spec, env, key_mode)
        if value:
            keys.append(value)
    return Routing(profile, reason, key_mode, auth, keys)


def check_protocols(profile: ProfileConfig, spec: AgentSpec) -> None:
    """Every protocol pair is translated, so any backend serves any agent; a routed backend
    must exist (the schema checks that); nothing else to refuse up front."""
    if not _routed_backends(profile):
        raise ConfigError(f'Profile "{profile.name}" ({profile.source}) routes to no backend. Add a [[routes]] entry.')


def plan_session(opts: SessionOptions, env: Mapping[str, str]) -> SessionPlan:
    """Resolve agent, profile and credentials; raises AgentNotFound or ConfigError."""
    spec = AGENTS[opts.agent]
    binary = _find_binary(spec, env)
    if opts.replay is not None:
        from agentwrap.config.model import BackendConfig, RouteConfig

        profile = ProfileConfig(
            name="replay",
            source=opts.replay_of or "<replay>",
            backends={"replay": BackendConfig(name="replay", type="replay")},
            routes=(RouteConfig(backend="replay"),),
        )
        routing = Routing(profile, f"replay of {opts.replay_of}", True, {"replay": UpstreamAuth(None, True)}, [])
    else:
        routing = resolve_routing(spec, opts.profile, env, opts.cwd)
    return SessionPlan(spec=spec, binary=binary, routing=routing, scripted=scripted_of(routing.profile))


@dataclass(slots=True)
class BoundProxy:
    """A proxy whose socket is bound (port known) but whose loop may not run yet."""

    server: "ProxyServer"
    dispatcher: Dispatcher
    secret: str
    stats: "Stats"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/{self.secret}"

    @property
    def addons(self) -> "AddonChain":
        """The proxy's addon chain; add capture here before the server starts."""
        return self.dispatcher.addons


def scripted_of(profile: ProfileConfig) -> dict:
    """The profile's scripted backends, loaded (a broken script is a ConfigError)."""
    names = [n for n, b in profile.backends.items() if b.type == "scripted"]
    if not names:
        return {}
    from agentwrap.backends.scripted import ScriptedBackend

    return {n: ScriptedBackend.from_file(profile.backends[n].script) for n in names}


def listen_loopback() -> socket.socket:
    """A listening socket on 127.0.0.1:<free port>, made with nothing but `socket`, so the
    agent can be spawned before asyncio and h11 are even imported."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def bind_proxy(
    spec: AgentSpec,
    routing: Routing,
    env: Mapping[str, str],
    *,
    sock: socket.socket | None = None,
    secret: str | None = None,
    scripted: dict | None = None,
    replay: object | None = None,
) -> BoundProxy:
    """Build the dispatcher, its routes and addons (stats, in-chat commands, output caps)
    and the server for one session, on `sock` (or a new loopback socket); add capture
    to `addons` if wanted, then call `server.start()`."""
    from agentwrap.backends.http import HttpTransport
    from agentwrap.proxy.addons import AddonChain
    from agentwrap.proxy.addons.commands import Commands
    from agentwrap.proxy.addons.output_cap import OutputCap
    from agentwrap.proxy.addons.stats import Stats
    from agentwrap.proxy.dispatch import Dispatcher
    from agentwrap.proxy.routes import ProfileSetup, SessionRoutes, SessionServices
    from agentwrap.proxy.server import ProxyServer

    def resolve_auth(backend) -> tuple[UpstreamAuth, str | None]:
        return backend_auth(backend, routes.profile, spec, env, routing.key_mode)

    def switch_profile(name: str) -> ProfileSetup:
        """`!/profile(NAME)`: the same session, another profile; the key mode stays what it was."""
        from agentwrap.config.loader import load_profile

        profile = load_profile(name, env=env)
        check_protocols(profile, spec)
        resolved = {b.name: backend_auth(b, profile, spec, env, routing.key_mode) for b in _routed_backends(profile)}
        auth = {n: a for n, (a, _) in resolved.items()}
        return ProfileSetup(profile, auth, scripted_of(profile), [k for _, k in resolved.values() if k])

    def profile_names() -> tuple[str, ...]:
        try:
            from agentwrap.config.loader import ProfileCatalog

            return tuple(ProfileCatalog(os.getcwd()).names())
        except Exception:  # listing is a convenience for !/profile; never fail a session over it
            return ()

    secret = secret or secrets.token_urlsafe(24)
    setup = ProfileSetup(routing.profile, routing.auth, scripted if scripted is not None else scripted_of(routing.profile),
                         list(routing.keys))
    services = SessionServices(switch_profile=switch_profile, resolve_auth=resolve_auth,
                               profile_names=profile_names)  # listed only when `!/profile` needs them
    routes = SessionRoutes(agent=spec.name, setup=setup, transport=HttpTransport(env=env), env=env, replay=replay,
                           services=services)
    stats = Stats()
    addons = AddonChain([stats, Commands(routes), OutputCap()])
    dispatcher = Dispatcher(agent_protocol=spec.protocol, secret=secret, routes=routes, addons=addons)
    server = ProxyServer(dispatcher)
    server.adopt(sock or listen_loopback())
    return BoundProxy(server, dispatcher, secret, stats)


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


def _kill_tree(pid: int, descendants: list | None = None) -> None:
    """Terminate the agent and everything it started; SIGKILL what is left after a grace period."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *(descendants if descendants is not None else root.children(recursive=True))]
    except psutil.NoSuchProcess:
        procs = list(descendants or [])
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=KILL_GRACE_S)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


def exit_code_of(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run_session(opts: SessionOptions, env: Mapping[str, str] | None = None) -> SessionResult:
    """Run the agent behind the proxy and return its exit code and the session's counts."""
    env = dict(os.environ if env is None else env)
    started = time.monotonic()
    plan = plan_session(opts, env)
    spec = plan.spec

    # Only a socket and a secret before the spawn; the proxy itself is built after it.
    sock = listen_loopback()
    secret = secrets.token_urlsafe(24)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/{secret}"
    server = bound = None

    capture_dir = _capture_dir(opts, env)
    tmpdir = tempfile.mkdtemp(prefix="agentwrap-")
    wiring = None
    recorder = None
    returncode = 1
    signals = SignalForwarder()
    try:
        wiring = spec.wire(base, secret, plan.routing.key_mode, env, tmpdir)
        for path, text in wiring.files.items():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        # Provider keys stay in agentwrap: the variables the profile reads keys from are not passed on.
        withheld = set(wiring.env_unset) | {b.api_key_env for b in plan.profile.backends.values() if b.api_key_env}
        child_env = {k: v for k, v in env.items() if k not in withheld}
        from agentwrap.config.agentenv import agent_environment

        child_env.update(agent_environment(plan.profile, spec.name))  # e.g. Claude Code's model variables
        child_env.update(wiring.env_set)
        argv = [plan.binary, *wiring.argv_prefix, *opts.args]

        signals.install()
        try:
            proc = subprocess.Popen(
                argv,
                env=child_env,
                cwd=opts.cwd,
                preexec_fn=_set_pdeathsig if sys.platform.startswith("linux") else None,
            )
        except OSError as exc:
            raise AgentwrapError(f"cannot start {plan.binary}: {exc.strerror or exc}") from exc
        signals.attach(proc)
        try:
            bound = bind_proxy(spec, plan.routing, env, sock=sock, secret=secret, scripted=plan.scripted, replay=opts.replay)
        except BaseException:
            _kill_tree(proc.pid)  # the agent must not run without its proxy
            raise
        server = bound.server
        if capture_dir is not None:  # after the spawn: not on the start-to-exec path
            from agentwrap.capture.recorder import Capture

            recorder = _open_recorder(capture_dir, plan, opts, env, secret)
            bound.addons.add(Capture(recorder))
        server.start()
        returncode = signals.wait()
    finally:
        signals.restore()
        if server is not None:
            server.stop(grace_s=opts.grace_s)
        else:
            sock.close()
        if recorder is not None:
            st = bound.stats
            recorder.close(
                {
                    "exit_code": exit_code_of(returncode),
                    "duration_s": round(time.monotonic() - started, 3),
                    "requests": st.requests,
                    "errors": st.errors,
                    "unauthorized": st.unauthorized,
                    "by_backend": dict(st.by_backend),
                }
            )
        if wiring is not None and wiring.cleanup is not None:
            try:
                wiring.cleanup()
            except OSError as exc:
                print(f"agentwrap: could not tidy up after {spec.name}: {exc}", file=sys.stderr)
        shutil.rmtree(tmpdir, ignore_errors=True)

    stats = bound.stats
    result = SessionResult(
        exit_code_of(returncode), stats.requests, stats.errors, time.monotonic() - started,
        recorder.path if recorder is not None and not recorder.failed else None,
    )
    if not opts.quiet:
        print(summary_line(spec.name, result), file=sys.stderr)
    return result


def summary_line(agent: str, r: SessionResult) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    line = (
        f"agentwrap: {agent} exited {r.exit_code} · {plural(r.requests, 'request')}, "
        f"{plural(r.errors, 'error')} · {r.duration_s:.1f} s"
    )
    return line + (f" · {r.bundle}" if r.bundle else "")



class SignalForwarder:
    """Forward termination signals to the agent; Ctrl-C belongs to the agent.

    SIGINT from the terminal reaches the whole foreground process group, the
    agent included, so agentwrap only ignores it (with a Python handler, not
    SIG_IGN, which the child would inherit). Signals sent to agentwrap alone
    (SIGTERM, SIGHUP, ...) are forwarded; if the agent does not exit within a
    grace period after SIGTERM, its whole process tree is killed.

    Installed *before* the agent is spawned (Python handlers do not survive
    exec in the child), so a signal that arrives while the proxy is still
    being built is held and delivered as soon as the agent exists, instead of
    killing agentwrap with the default action.
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._pending: list[int] = []
        self._killer: tuple | None = None
        self._previous: dict = {}

    def install(self) -> None:
        for name in ("SIGINT", *FORWARDED_SIGNALS):
            sig = getattr(signal, name, None)
            if sig is not None:
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def attach(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        pending, self._pending = self._pending, []
        for signum in pending:
            self._forward(signum)

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        if signum == signal.SIGINT:
            return
        if self.proc is None:
            self._pending.append(signum)
        else:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        proc = self.proc
        assert proc is not None
        if signum in (signal.SIGTERM, signal.SIGHUP) and self._killer is None:
            # Snapshot the tree now: once the agent exits its children are re-parented.
            import threading

            try:
                import psutil

                tree = psutil.Process(proc.pid).children(recursive=True)
            except Exception:
                tree = []
            timer = threading.Timer(KILL_GRACE_S, _kill_tree, args=(proc.pid, tree))
            timer.daemon = True
            timer.start()
            self._killer = (timer, tree)
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        """Wait for the agent; after a forwarded termination, reap what is left of its tree."""
        assert self.proc is not None
        returncode = self.proc.wait()
        if self._killer is not None:
            timer, tree = self._killer
            timer.cancel()
            leftovers = [p for p in tree if p.is_running()]
            if leftovers:
                _kill_tree(self.proc.pid, leftovers)
        return returncode


def _capture_dir(opts: SessionOptions, env: Mapping[str, str]) -> str | None:
    """The capture directory, made private and checked writable before the agent starts."""
    if not opts.capture:
        return None
    path = opts.capture_dir or env.get("AGENTWRAP_CAPTURE_DIR")
    if not path:
        from agentwrap.capture.runs import default_capture_dir

        path = str(default_capture_dir())
    path = os.path.expanduser(path)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"capture directory {path} cannot be created: {exc.strerror}. Use --capture-dir DIR or --no-capture."
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"capture directory {path} is not writable. Use --capture-dir DIR or --no-capture.")
    return path


def _agent_version(binary: str, spec: AgentSpec) -> str | None:
    """The agent's version from its npm package.json, when the binary lives in one (cheap: no exec)."""
    import json

    path = os.path.realpath(binary)
    for _ in range(6):
        path = os.path.dirname(path)
        candidate = os.path.join(path, "package.json")
        if os.path.isfile(candidate):
            try:
                with open(candidate, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError):
                return None
            return data.get("version") if data.get("name") == spec.npm_package else None
    return None


def _open_recorder(capture_dir: str, plan: SessionPlan, opts: SessionOptions, env: Mapping[str, str], secret: str):
    """Create the run's bundle; every key agentwrap knows is handed over for redaction."""
    import datetime
    import hashlib

    from agentwrap import __version__
    from agentwrap.capture.recorder import Recorder
    from agentwrap.capture.runs import bundle_filename

    now = datetime.datetime.now(datetime.timezone.utc)
    run_id = secrets.token_hex(4)
    profile = plan.profile
    keys = [secret, *plan.routing.keys]
    keys += [env[b.api_key_env] for b in profile.backends.values() if b.api_key_env and env.get(b.api_key_env)]
    header = {
        "agentwrap_version": __version__,
        "agent": plan.spec.name,
        "agent_version": _agent_version(plan.binary, plan.spec),
        "argv": [plan.spec.name, *opts.args],
        "cwd": os.path.abspath(opts.cwd or os.getcwd()),
        "replay_of": opts.replay_of,
        "profile": profile.name,
        "profile_source": profile.source,
        "profile_reason": plan.routing.reason,
        "profile_hash": hashlib.sha256(repr(profile).encode()).hexdigest()[:16],
        "started_at": now.isoformat().replace("+00:00", "Z"),
        "run_id": run_id,
    }

    def on_error(message: str) -> None:
        print(f"agentwrap: {message}", file=sys.stderr)

    path = os.path.join(capture_dir, bundle_filename(plan.spec.name, run_id, now))
    return Recorder(path, header, keys, on_error=on_error)


@dataclass(slots=True)
class ReplayResult:
    session: SessionResult
    served: int
    recorded: int
    divergences: list[str]
    unused: list[str]

    @property
    def diverged(self) -> bool:
        return bool(self.divergences or self.unused)


def run_replay(
    bundle_path: str,
    *,
    extra_args: list[str] | None = None,
    cwd: str | None = None,
    quiet: bool = False,
    capture_dir: str | None = None,
    capture: bool = True,
    env: Mapping[str, str] | None = None,
) -> ReplayResult:
    """Re-run a recorded session offline: same agent, same args (plus `extra_args`), same
    cwd unless `cwd`, with the recorded responses served instead of any backend."""
    from agentwrap.backends.replay import RecordedExchange, ReplayBackend
    from agentwrap.capture.reader import read_bundle

    bundle = read_bundle(bundle_path)
    header = bundle.header
    agent = header.get("agent")
    if agent not in AGENTS:
        raise ConfigError(f"{bundle_path}: the recorded agent {agent!r} is not one agentwrap runs")
    argv = list(header.get("argv") or [agent])
    recorded = []
    for ex in bundle.exchanges:
        if ex.request is None or not ex.complete or ex.status is None:
            continue
        response = ex.agent_response or ex.upstream_response
        recorded.append(
            RecordedExchange(
                index=len(recorded), method=ex.request.method, path=ex.path, body=ex.request.body.bytes,
                status=ex.status, headers=list(response.headers) if response else [], chunks=ex.agent_stream(),
            )
        )
    backend = ReplayBackend(recorded)
    opts = SessionOptions(
        agent=agent,
        args=[*argv[1:], *(extra_args or [])],
        quiet=quiet,
        capture_dir=capture_dir,
        capture=capture,
        cwd=cwd or header.get("cwd"),
        replay=backend,
        replay_of=os.path.abspath(bundle_path),
    )
    result = run_session(opts, env)
    return ReplayResult(
        session=result,
        served=backend.served,
        recorded=len(recorded),
        divergences=[str(d) for d in backend.divergences],
        unused=[f"recorded exchange {ex.index + 1} ({ex.method} {ex.path}) was never requested" for ex in backend.unused()],
    )
