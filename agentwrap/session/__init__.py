"""One wrapped run: resolve the profile, start the proxy, spawn the agent, wait, summarise.

Order matters for start-up time and safety: the listening socket is bound
first (so the port is known), the agent is spawned before the proxy thread
starts (so no thread exists at fork time and the child can be tied to our
lifetime with PR_SET_PDEATHSIG), and only then does the proxy loop start;
the agent's first connection waits in the listen backlog meanwhile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from agentwrap.agents import AGENTS, AgentSpec
from agentwrap.agents.base import WireContext
from agentwrap.cli_output import count_text
from agentwrap.errors import AgentNotFound, AgentwrapError
from agentwrap.files import write_private
from agentwrap.proxy.auth import UpstreamAuth
from agentwrap.session.launch import SignalForwarder, become_subreaper, children_now, exit_code_of, kill_tree, listen_loopback, set_pdeathsig
from agentwrap.session.plan import SessionPlan, resolve_plan
from agentwrap.session.records import apply_retention, capture_dir_of, open_recorder
from agentwrap.session.wiring import BoundProxy, bind_proxy, scripted_of

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
    models: dict[str, list[str]] = field(default_factory=dict)  # backend -> models it answered with, in order of first use
    tokens: dict[str, int] | None = None  # summed usage (TOKEN_FIELDS); None when no answer reported any
    cost_usd: float | None = None  # list price of what could be priced (not computed with `quiet`)
    unpriced: int = 0  # requests with usage that could not be priced
    resume: list[str] | None = None  # agentwrap's command line that resumes the agent's session


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
    from agentwrap.config.model import (
        BackendConfig, GuardsConfig, LoopGuardConfig, ProfileConfig, RouteConfig, ToolLoopGuardConfig, ToolRepairConfig,
    )
    from agentwrap.session.plan import BackendPlan

    backend = BackendConfig(name="replay", type="replay")
    # The record holds what the agent got, guards' work included: nothing acts on it again.
    off = GuardsConfig(LoopGuardConfig(enabled=False), ToolLoopGuardConfig(enabled=False), ToolRepairConfig(enabled=False))
    profile = ProfileConfig(
        name="replay", source=opts.replay_of or "<replay>", backends={"replay": backend}, routes=(RouteConfig(backend="replay"),),
        guards=off,
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


def run_session(opts: SessionOptions, env: Mapping[str, str] | None = None) -> SessionResult:
    """Run the agent behind the proxy and return its exit code and the session's counts."""
    env = dict(os.environ if env is None else env)
    started = time.monotonic()
    started_wall = time.time()
    launch = prepare_launch(opts, env)
    spec, plan = launch.spec, launch.plan
    if not opts.quiet:
        for warning in plan.warnings:  # before the agent owns the terminal
            print(f"agentwrap: warning: {warning}", file=sys.stderr)

    # Only a socket and a secret before the spawn; the proxy itself is built after it.
    sock = listen_loopback()
    secret = os.urandom(24).hex()  # (`secrets` would import hashlib: ~5 ms of start-up)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = bound = None

    capture_dir = capture_dir_of(opts, env)
    tmpdir = tempfile.mkdtemp(prefix="agentwrap-")
    wiring = None
    recorder = None
    returncode = 1
    signals = SignalForwarder()
    try:
        wiring = spec.wire(WireContext(origin, secret, plan.key_mode, env, tmpdir, tuple(opts.args), opts.cwd or os.getcwd()))
        for path, text in wiring.files.items():
            write_private(path, text)
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
            bound = bind_proxy(spec, plan, env, sock=sock, secret=secret, scripted=launch.scripted, replay=opts.replay,
                               session_of=spec.resume.from_request if spec.resume is not None else None)
        except BaseException:
            kill_tree(proc.pid)  # the agent must not run without its proxy
            raise
        server = bound.server
        if capture_dir is not None:  # after the spawn: not on the start-to-exec path
            from agentwrap.capture.recorder import Capture

            recorder = open_recorder(capture_dir, launch, opts, env, secret)
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
                    "agent_left": st.agent_left,
                    "guard_actions": dict(st.guard_actions),
                    "by_backend": dict(st.by_backend),
                }
            )
            if not recorder.failed:
                apply_retention(capture_dir, recorder.path)
        if wiring is not None and wiring.cleanup is not None:
            try:
                wiring.cleanup()
            except OSError as exc:
                print(f"agentwrap: could not tidy up after {spec.name}: {exc}", file=sys.stderr)
        shutil.rmtree(tmpdir, ignore_errors=True)

    stats = bound.stats
    uses = stats.uses  # (built from the counts on each read)
    cost, unpriced = None, 0
    if not opts.quiet:  # pricing may import the price library: only for a line that is shown
        from agentwrap.capture.cost import run_cost

        cost, unpriced = run_cost((u.model, u.url, u.usage) for u in uses)
    models: dict[str, list[str]] = {}
    for use in uses:
        names = models.setdefault(use.backend, [])
        if use.model and use.model not in names:
            names.append(use.model)
    result = SessionResult(
        exit_code_of(returncode), stats.requests, stats.errors, time.monotonic() - started,
        recorder.path if recorder is not None and not recorder.failed else None,
        stats.failovers, dict(stats.guard_actions), models, stats.tokens, cost, unpriced,
        _resume_command(spec, opts, env, list(reversed(stats.session_ids)), started_wall),
    )
    if not opts.quiet:
        print(summary_line(spec.name, result), file=sys.stderr)
        if result.resume:
            import shlex

            print(f"agentwrap: resume with: {shlex.join(result.resume)}", file=sys.stderr)
    return result


def _resume_command(spec: AgentSpec, opts: SessionOptions, env: Mapping[str, str], seen: list[str], since: float) -> list[str] | None:
    """`agentwrap AGENT [OPTIONS] -- ARGS` resuming the session the agent saved, so that
    the resumed session runs through agentwrap too (the agent's own hint would not)."""
    if spec.resume is None or opts.replay is not None:
        return None
    try:
        sid = spec.resume.saved(env, opts.cwd or os.getcwd(), seen, since)
    except OSError:
        return None
    if not sid:
        return None
    cmd = ["agentwrap", spec.name]
    if opts.profile:
        cmd += ["--profile", opts.profile]
    if not opts.project:
        cmd.append("--no-project")
    if not opts.capture:
        cmd.append("--no-capture")
    elif opts.capture_dir:
        cmd += ["--capture-dir", opts.capture_dir]
    return [*cmd, "--", *spec.resume.args(sid)]


def summary_line(agent: str, r: SessionResult) -> str:
    """The run in one line: exit, requests and errors, models by backend, tokens, cost,
    guard actions, duration, bundle."""
    def plural(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    parts = [f"agentwrap: {agent} exited {r.exit_code}"]
    counts = f"{plural(r.requests, 'request')}, {plural(r.errors, 'error')}"
    if r.failovers:
        counts += f", {plural(r.failovers, 'failover')}"
    parts.append(counts)
    used = [f"{', '.join(models)} on {backend}" for backend, models in r.models.items() if models]
    if used:
        parts.append("; ".join(used))
    if r.tokens:
        t = r.tokens
        cache = [f"{count_text(t[k])} {label}" for k, label in (("cache_read_tokens", "cache reads"), ("cache_write_tokens", "cache writes"))
                 if t.get(k)]
        parts.append(f"tokens {count_text(t.get('input_tokens', 0))} in" + (f" ({', '.join(cache)})" if cache else "")
                     + f", {count_text(t.get('output_tokens', 0))} out")
    if r.cost_usd is not None:
        from agentwrap.capture.cost import format_cost

        parts.append(format_cost(r.cost_usd, partial=r.unpriced > 0))
    if r.guard_actions:
        which = ", ".join(f"{_GUARD_LABELS.get(g, g)} {n}" for g, n in sorted(r.guard_actions.items()))
        parts.append(f"{plural(sum(r.guard_actions.values()), 'guard action')} ({which})")
    parts.append(f"{r.duration_s:.1f} s")
    if r.bundle:
        parts.append(r.bundle)
    return " · ".join(parts)


_GUARD_LABELS = {"loop": "repetition loop", "tool_loop": "tool-call loop", "tool_repair": "tool-call repair"}


def __getattr__(name: str):
    # `agentwrap replay` lives in its own module, imported only by that command.
    if name in ("run_replay", "ReplayResult"):
        from agentwrap.session import replay

        return getattr(replay, name)
    raise AttributeError(f"module 'agentwrap.session' has no attribute {name!r}")
