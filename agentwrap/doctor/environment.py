"""Environment rows: loopback, capture/config/state directories, each agent on PATH."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from agentwrap.agents import AgentSpec
from agentwrap.doctor.base import FAIL, WARN, Check, Context, ok

__all__ = ["check_loopback", "check_capture_dir", "check_config_dir", "check_state_dir", "check_installed"]

VERSION_TIMEOUT_S = 10.0
LOW_DISK_BYTES = 100 * 1024 * 1024


def check_loopback() -> Check:
    name = "loopback bind"
    try:
        with socket.create_server(("127.0.0.1", 0)) as sock:
            port = sock.getsockname()[1]
    except OSError as exc:
        return Check(
            name, FAIL, f"cannot listen on 127.0.0.1: {exc.strerror or exc}",
            "agentwrap's proxy needs a loopback listener: bring up the lo interface or allow bind() in your sandbox",
        )
    return ok(name, f"127.0.0.1:{port} bound and released")


def _existing_ancestor(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path("/")


def _dir_check(name: str, path: Path, *, source: str = "", missing: str = "created on first use", space: bool = False,
               fix_hint: str = "") -> Check:
    if path.exists() and not path.is_dir():
        return Check(name, FAIL, f"{path}{source} exists but is not a directory", f"remove or rename {path}{fix_hint}")
    anchor = _existing_ancestor(path)
    if not os.access(anchor, os.W_OK | os.X_OK):
        state = "is not writable" if anchor == path else f"cannot be created ({anchor} is not writable)"
        return Check(name, FAIL, f"{path}{source} {state}", f"make {anchor} writable for your user{fix_hint}")
    detail = f"{path}{source} ({'exists, writable' if anchor == path else missing})"
    if space:
        free = shutil.disk_usage(anchor).free
        detail += f", {free / 2**30:.1f} GiB free"
        if free < LOW_DISK_BYTES:
            return Check(name, WARN, detail + " (under 100 MB)", f"free disk space on {anchor}{fix_hint}")
    return ok(name, detail)


def check_capture_dir(ctx: Context) -> Check:
    from agentwrap.capture.runs import default_capture_dir

    configured = ctx.env.get("AGENTWRAP_CAPTURE_DIR")
    path = Path(os.path.expanduser(configured)) if configured else default_capture_dir()
    return _dir_check(
        "capture dir", path, source=" [AGENTWRAP_CAPTURE_DIR]" if configured else "", space=True,
        fix_hint=", or point AGENTWRAP_CAPTURE_DIR / --capture-dir elsewhere (--no-capture records nothing)",
    )


def check_config_dir(ctx: Context) -> Check:
    from agentwrap.config.loader import user_profiles_dir

    path = user_profiles_dir()
    if path.is_dir():
        count = len(list(path.glob("*.toml")))
        return ok("config dir", f"{path} ({count} profile{'s' if count != 1 else ''})")
    return _dir_check("config dir", path, missing="no profiles yet; `agentwrap profiles new NAME` creates it")


def check_state_dir(ctx: Context) -> Check:
    from platformdirs import user_state_dir

    return _dir_check("state dir", Path(user_state_dir("agentwrap")))


def check_installed(ctx: Context, spec: AgentSpec, *, required: bool) -> Check:
    name = f"{spec.name} installed"
    binary = shutil.which(spec.binary, path=ctx.env.get("PATH"))
    if not binary:
        return Check(name, FAIL if required else WARN, f"{spec.binary} not found on PATH", f"install it: {spec.install_hint}")
    try:
        proc = subprocess.run(
            [binary, *spec.version_args], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S,
            stdin=subprocess.DEVNULL, env=dict(ctx.env), cwd=ctx.cwd,
        )
    except subprocess.TimeoutExpired:
        return Check(name, WARN, f"{binary}: `{spec.binary} --version` gave no answer within {VERSION_TIMEOUT_S:g} s",
                     f"run `{spec.binary} --version` yourself; reinstall with {spec.install_hint} if it hangs")
    except OSError as exc:
        return Check(name, FAIL, f"{binary} cannot run: {exc.strerror or exc}", f"reinstall it: {spec.install_hint}")
    version = next((line.strip() for line in proc.stdout.splitlines() if line.strip()), "")
    if proc.returncode != 0 or not version:
        last = next((line.strip() for line in reversed(proc.stderr.splitlines()) if line.strip()), "no output")
        return Check(name, WARN, f"{binary}: `--version` exited {proc.returncode}: {ctx.redact(last)[:160]}",
                     f"reinstall it: {spec.install_hint}")
    return ok(name, f"{version} at {ctx.short(binary)}")
