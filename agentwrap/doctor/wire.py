"""`--wire`: run the real agent through agentwrap against the built-in scripted backend,
with the arguments a user runs (no switches the user would not pass)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentwrap.agents import AgentSpec
from agentwrap.doctor.base import FAIL, WARN, Check, Context, ok
from agentwrap.errors import ConfigError

__all__ = ["WIRE_ARGS", "check_wire"]

WIRE_KILL_GRACE_S = 5.0
GEMINI_UNTRUSTED_EXIT = 55  # Gemini CLI 0.61, headless in a folder the user has not trusted

# The non-interactive arguments for the `wire` check: one trivial prompt, no tools, and
# nothing the user's own command would lack (no --skip-trust: doctor checks what they run).
WIRE_ARGS: dict[str, tuple[str, ...]] = {
    "claude": ("-p", "reply ok"),
    "codex": ("-c", "analytics.enabled=false", "-c", "features.plugins=false", "exec", "--skip-git-repo-check", "reply ok"),
    "gemini": ("-p", "reply ok"),
}


def _offline_profile() -> tuple[Path, str]:
    """The built-in offline profile's path and the fixed start of its scripted answer."""
    from agentwrap.backends.scripted import ScriptedBackend
    from agentwrap.config.loader import builtin_profiles_dir, load_profile

    path = builtin_profiles_dir() / "offline.toml"
    profile = load_profile(str(path), env={})
    backend = next(b for b in profile.backends.values() if b.type == "scripted")
    script = ScriptedBackend.from_file(backend.script or "").script
    text = next(t.text for t in script.turns if t.text)
    return path, text.split("{", 1)[0].strip()


def _squash(text: str) -> str:
    return " ".join(text.split())


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the wire run's process group (agentwrap tidies up), SIGKILL after a grace period."""
    for sig, wait in ((signal.SIGTERM, WIRE_KILL_GRACE_S), (signal.SIGKILL, WIRE_KILL_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.communicate(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def check_wire(ctx: Context, spec: AgentSpec, timeout_s: float, suspects: list[Check]) -> Check:
    """Run the real agent through agentwrap against the built-in scripted backend.

    Only agentwrap's in-process scripted backend produces the offline script's
    answer, so finding it in the agent's output proves the model call went
    through the proxy. No provider is contacted and no tokens are spent.
    """
    name = f"{spec.name} wire"
    if not shutil.which(spec.binary, path=ctx.env.get("PATH")):
        return Check(name, FAIL, f"{spec.binary} not found on PATH", f"install it: {spec.install_hint}")
    try:
        profile_path, expected = _offline_profile()
    except (ConfigError, OSError, StopIteration) as exc:
        return Check(name, FAIL, f"the built-in offline profile is unusable: {exc}", "reinstall agentwrap")
    import agentwrap

    env = dict(ctx.env)
    package_root = str(Path(agentwrap.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    if spec.name == "claude":
        env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"  # no bootstrap calls to api.anthropic.com
    argv = [sys.executable, "-m", "agentwrap", spec.name, "--profile", str(profile_path), "--no-capture", "-q",
            "--", *WIRE_ARGS[spec.name]]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=ctx.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    except OSError as exc:
        return Check(name, FAIL, f"cannot start {sys.executable}: {exc.strerror or exc}", "reinstall agentwrap")
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        return Check(name, FAIL, f"{spec.name} did not finish within {timeout_s:g} s through agentwrap (offline profile)",
                     _wire_cause(spec, suspects, default=f"run `agentwrap {spec.name} --profile offline -- "
                                 f"{' '.join(WIRE_ARGS[spec.name])}` and watch where it stops"))
    elapsed = time.monotonic() - started
    last = next((line.strip() for line in reversed(err.splitlines()) if line.strip()), "")
    last = ctx.redact(last)[:200]
    found = _squash(expected) in _squash(out)
    if proc.returncode == 0 and found:
        return ok(name, f"{spec.name} answered from agentwrap's scripted backend in {elapsed:.1f} s: "
                   "its model calls go through the proxy")
    if spec.name == "gemini" and proc.returncode == GEMINI_UNTRUSTED_EXIT:
        return Check(name, FAIL, f"Gemini CLI refuses to run in {ctx.short(ctx.cwd)}: the folder is not trusted "
                     f"(exit {GEMINI_UNTRUSTED_EXIT}; the same without agentwrap)",
                     "trust the folder (run `gemini` there once and accept, or export GEMINI_CLI_TRUST_WORKSPACE=true), "
                     "or add --skip-trust to the agent's arguments: agentwrap gemini -- --skip-trust ...")
    if proc.returncode == 127:
        return Check(name, FAIL, f"agentwrap could not find {spec.binary}: {last}", f"install it: {spec.install_hint}")
    if proc.returncode == 2 and last.startswith("agentwrap:"):
        return Check(name, FAIL, last, "fix what the message names, then rerun agentwrap doctor --wire")
    if proc.returncode == 0:
        return Check(name, FAIL, f"{spec.name} exited 0, but its answer did not come from agentwrap's scripted backend: "
                     "its model requests went somewhere else", _wire_cause(spec, suspects))
    return Check(name, FAIL, f"{spec.name} exited {proc.returncode} through agentwrap: {last or 'no message on stderr'}",
                 _wire_cause(spec, suspects))


_WIRE_CAUSES = {
    "claude": "likely a settings.json env block (ANTHROPIC_BASE_URL) or managed settings; see the claude settings rows",
    "codex": "likely a config.toml profile with another model_provider, or a broken Codex install; see the codex config rows",
    "gemini": "likely a system or workspace settings file pinning another auth type; see the gemini settings rows",
}


def _wire_cause(spec: AgentSpec, suspects: list[Check], default: str | None = None) -> str:
    bad = [c for c in suspects if c.status in (FAIL, WARN)]
    if bad:
        return f"likely cause: {bad[0].name}: {bad[0].fix}"
    return default or _WIRE_CAUSES[spec.name]
