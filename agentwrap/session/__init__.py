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
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentwrap.agents import AGENTS, AgentSpec
from agentwrap.agents.base import WireContext
from agentwrap.errors import AgentNotFound, AgentwrapError, ConfigError
from agentwrap.proxy.auth import UpstreamAuth
from agentwrap.session.launch import SignalForwarder, become_subreaper, children_now, exit_code_of, kill_tree, listen_loopback, set_pdeathsig
from agentwrap.session.plan import SessionPlan, check_protocols, plan_backend, resolve_plan, routed_backends

if TYPE_CHECKING:
    from agentwrap.proxy.addons import AddonChain
    from agentwrap.proxy.addons.stats import Stats
    from agentwrap.proxy.dispatch import Dispatcher
    from agentwrap.proxy.server import ProxyServer

__all__ = [
    "SessionOptions", "SessionResult", "SessionPlan", "Launch", "BoundProxy",
    "run_session", "prepare_launch", "resolve_plan", "bind_proxy",
]


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
    project: bool = True  # False: ignore the project file (.agentwrap.toml)
    replay: object | None = None  # a backends.replay.ReplayBackend: serve a recording instead of routing
    replay_of: str | None = None  # the bundle being replayed, for the new bundle's header


@dataclass(slots=True)
class SessionResult:
    exit_code: int
    requests: int
    errors: int
    duration_s: float
    bundle: str | None = None
    failovers: int = 0
    guard_actions: dict[str, int] = field(default_factory=dict)  # guard -> times it acted


@dataclass(slots=True)
class Launch:
    """Everything decided before anything starts; built without side effects."""

    spec: AgentSpec
    binary: str
    plan: SessionPlan
    scripted: dict = field(default_factory=dict)  # loaded before the agent starts: a broken script stops us there

    @property
    def profile(self):
        return self.plan.profile


def _find_binary(spec: AgentSpec, env: Mapping[str, str]) -> str:
    found = shutil.which(spec.binary, path=env.get("PATH"))
    if not found:
        raise AgentNotFound(f"{spec.binary} not found on PATH. Install it with: {spec.install_hint}")
    return found


def replay_plan(spec: AgentSpec, opts: SessionOptions, env: Mapping[str, str]) -> SessionPlan:
    from agentwrap.config.model import BackendConfig, ProfileConfig, RouteConfig
    from agentwrap.session.plan import BackendPlan

    backend = BackendConfig(name="replay", type="replay")
    profile = ProfileConfig(
        name="replay", source=opts.replay_of or "<replay>", backends={"replay": backend}, routes=(RouteConfig(backend="replay"),)
    )
    native = spec.native(env, opts.cwd or os.getcwd())
    return SessionPlan(
        spec, profile, f"replay of {opts.replay_of}", native, key_mode=True,
        backends={"replay": BackendPlan(backend, UpstreamAuth(None, True), "none")},
    )


def prepare_launch(opts: SessionOptions, env: Mapping[str, str]) -> Launch:
    """Resolve agent, profile and credentials; raises AgentNotFound or ConfigError."""
    spec = AGENTS[opts.agent]
    binary = _find_binary(spec, env)
    if opts.replay is not None:
        plan = replay_plan(spec, opts, env)
    else:
        plan = resolve_plan(spec, opts.profile, env, opts.cwd, project=opts.project)
    return Launch(spec=spec, binary=binary, plan=plan, scripted=scripted_of(plan.profile))


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


def scripted_of(profile) -> dict:
    """The profile's scripted backends, loaded (a broken script is a ConfigError)."""
    names = [n for n, b in profile.backends.items() if b.type == "scripted"]
    if not names:
        return {}
    from agentwrap.backends.scripted import ScriptedBackend

    return {n: ScriptedBackend.from_file(profile.backends[n].script) for n in names}


def bind_proxy(
    spec: AgentSpec,
    plan: SessionPlan,
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
    from agentwrap.proxy.addons.guards import Guards
    from agentwrap.proxy.addons.output_cap import OutputCap
    from agentwrap.proxy.addons.stats import Stats
    from agentwrap.proxy.dispatch import Dispatcher
    from agentwrap.proxy.routes import ProfileSetup, SessionRoutes, SessionServices
    from agentwrap.proxy.server import ProxyServer

    def resolve_auth(backend) -> tuple[UpstreamAuth, str | None]:
        bp = plan_backend(backend, routes.profile, spec, plan.native, env, plan.key_mode)
        return bp.auth, bp.key

    def switch_profile(name: str) -> ProfileSetup:
        """`!/profile(NAME)`: the same session, another profile; the key mode stays what it was."""
        from agentwrap.config.loader import load_profile

        profile = load_profile(name, env=env)
        check_protocols(profile, spec)
        resolved = [plan_backend(b, profile, spec, plan.native, env, plan.key_mode) for b in routed_backends(profile)]
        return ProfileSetup(profile, {bp.name: bp.auth for bp in resolved}, scripted_of(profile), [bp.key for bp in resolved if bp.key])

    def profile_names() -> tuple[str, ...]:
        try:
            from agentwrap.config.loader import ProfileCatalog

            return tuple(ProfileCatalog(os.getcwd()).names())
        except Exception:  # listing is a convenience for !/profile; never fail a session over it
            return ()

    secret = secret or secrets.token_urlsafe(24)
    setup = ProfileSetup(plan.profile, plan.auth, scripted if scripted is not None else scripted_of(plan.profile),
                         list(plan.keys))
    services = SessionServices(switch_profile=switch_profile, resolve_auth=resolve_auth,
                               profile_names=profile_names)  # listed only when `!/profile` needs them
    routes = SessionRoutes(agent=spec.name, setup=setup, transport=HttpTransport(env=env), env=env, replay=replay,
                           services=services)
    stats = Stats()
    # Guards first: their `done` turns the stream filters' reports into notes the others read.
    addons = AddonChain([Guards(routes), stats, Commands(routes), OutputCap()])
    dispatcher = Dispatcher(agent_protocol=spec.protocol, secret=secret, routes=routes, addons=addons)
    server = ProxyServer(dispatcher)
    server.adopt(sock or listen_loopback())
    return BoundProxy(server, dispatcher, secret, stats)


def run_session(opts: SessionOptions, env: Mapping[str, str] | None = None) -> SessionResult:
    """Run the agent behind the proxy and return its exit code and the session's counts."""
    env = dict(os.environ if env is None else env)
    started = time.monotonic()
    launch = prepare_launch(opts, env)
    spec, plan = launch.spec, launch.plan
    if not opts.quiet:
        for warning in plan.warnings:  # before the agent owns the terminal
            print(f"agentwrap: warning: {warning}", file=sys.stderr)

    # Only a socket and a secret before the spawn; the proxy itself is built after it.
    sock = listen_loopback()
    secret = secrets.token_urlsafe(24)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = bound = None

    capture_dir = _capture_dir(opts, env)
    tmpdir = tempfile.mkdtemp(prefix="agentwrap-")
    wiring = None
    recorder = None
    returncode = 1
    signals = SignalForwarder()
    try:
        wiring = spec.wire(WireContext(origin, secret, plan.key_mode, env, tmpdir, tuple(opts.args), opts.cwd or os.getcwd()))
        for path, text in wiring.files.items():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        # Provider keys stay in agentwrap: the variables the profile reads keys from are not passed on.
        withheld = set(wiring.env_unset) | {b.api_key_env for b in plan.profile.backends.values() if b.api_key_env}
        if plan.key_mode and plan.native.key is not None:
            withheld.add(plan.native.key.variable)  # e.g. a Codex provider's env_key
        child_env = {k: v for k, v in env.items() if k not in withheld}
        from agentwrap.config.agentenv import agent_environment

        child_env.update(agent_environment(plan.profile, spec.name))  # e.g. Claude Code's model variables
        child_env.update(wiring.env_set)
        argv = [launch.binary, *wiring.argv_prefix, *opts.args]

        signals.exclude = children_now()  # processes of ours that are not the agent's (never reaped here)
        become_subreaper()  # what the agent leaves behind stays ours to stop
        signals.install()
        try:
            proc = subprocess.Popen(
                argv,
                env=child_env,
                cwd=opts.cwd,
                preexec_fn=set_pdeathsig if sys.platform.startswith("linux") else None,
            )
        except OSError as exc:
            raise AgentwrapError(f"cannot start {launch.binary}: {exc.strerror or exc}") from exc
        signals.attach(proc)
        try:
            bound = bind_proxy(spec, plan, env, sock=sock, secret=secret, scripted=launch.scripted, replay=opts.replay)
        except BaseException:
            kill_tree(proc.pid)  # the agent must not run without its proxy
            raise
        server = bound.server
        if capture_dir is not None:  # after the spawn: not on the start-to-exec path
            from agentwrap.capture.recorder import Capture

            recorder = _open_recorder(capture_dir, launch, opts, env, secret)
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
                    "guard_actions": dict(st.guard_actions),
                    "by_backend": dict(st.by_backend),
                }
            )
            if not recorder.failed:
                _apply_retention(capture_dir, recorder.path)
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
        stats.failovers, dict(stats.guard_actions),
    )
    if not opts.quiet:
        print(summary_line(spec.name, result), file=sys.stderr)
    return result


def summary_line(agent: str, r: SessionResult) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    line = f"agentwrap: {agent} exited {r.exit_code} · {plural(r.requests, 'request')}, {plural(r.errors, 'error')}"
    if r.failovers:
        line += f", {plural(r.failovers, 'failover')}"
    if r.guard_actions:
        which = ", ".join(f"{_GUARD_LABELS.get(g, g)} {n}" for g, n in sorted(r.guard_actions.items()))
        line += f" · {plural(sum(r.guard_actions.values()), 'guard action')} ({which})"
    line += f" · {r.duration_s:.1f} s"
    return line + (f" · {r.bundle}" if r.bundle else "")


_GUARD_LABELS = {"loop": "repetition loop", "tool_loop": "tool-call loop", "tool_repair": "tool-call repair"}



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


def _apply_retention(capture_dir: str, current: str) -> None:
    """The capture directory's caps (`[capture]` in the user config), never deleting this run."""
    from agentwrap.capture.retention import apply_retention

    try:
        apply_retention(capture_dir, current)
    except ConfigError as exc:
        print(f"agentwrap: warning: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"agentwrap: warning: could not prune old runs in {capture_dir}: {exc.strerror or exc}", file=sys.stderr)


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


def _open_recorder(capture_dir: str, launch: Launch, opts: SessionOptions, env: Mapping[str, str], secret: str):
    """Create the run's bundle; every key agentwrap knows is handed over for redaction."""
    import datetime
    import hashlib

    from agentwrap import __version__
    from agentwrap.capture.recorder import Recorder
    from agentwrap.capture.runs import bundle_filename

    now = datetime.datetime.now(datetime.timezone.utc)
    run_id = secrets.token_hex(4)
    plan = launch.plan
    profile = plan.profile
    keys = [secret, *plan.keys]
    keys += [env[b.api_key_env] for b in profile.backends.values() if b.api_key_env and env.get(b.api_key_env)]
    header = {
        "agentwrap_version": __version__,
        "agent": plan.spec.name,
        "agent_version": _agent_version(launch.binary, plan.spec),
        "argv": [plan.spec.name, *opts.args],
        "cwd": os.path.abspath(opts.cwd or os.getcwd()),
        "replay_of": opts.replay_of,
        "profile": profile.name,
        "profile_source": profile.source,
        "profile_reason": plan.reason,
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
