"""The run's records: the capture directory, the recorder and its bundle header, retention."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agentwrap.agents import AgentSpec
from agentwrap.errors import ConfigError
from agentwrap.files import make_private_dirs

if TYPE_CHECKING:
    from agentwrap.session import Launch, SessionOptions

__all__ = ["capture_dir_of", "open_recorder", "apply_retention"]


def capture_dir_of(opts: "SessionOptions", env: Mapping[str, str]) -> str | None:
    """The capture directory, made private and checked writable before the agent starts."""
    if not opts.capture:
        return None
    path = opts.capture_dir or env.get("AGENTWRAP_CAPTURE_DIR")
    if not path:
        from agentwrap.capture.runs import default_capture_dir

        path = str(default_capture_dir())
    path = os.path.expanduser(path)
    try:
        make_private_dirs(path)
    except OSError as exc:
        raise ConfigError(
            f"capture directory {path} cannot be created: {exc.strerror}. Use --capture-dir DIR or --no-capture."
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"capture directory {path} is not writable. Use --capture-dir DIR or --no-capture.")
    return path


def apply_retention(capture_dir: str, current: str) -> None:
    """The capture directory's caps (`[capture]` in the user config), never deleting this run."""
    from agentwrap.capture import retention

    try:
        retention.apply_retention(capture_dir, current)
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


def open_recorder(capture_dir: str, launch: "Launch", opts: "SessionOptions", env: Mapping[str, str], secret: str):
    """Create the run's bundle; every key agentwrap knows is handed over for redaction."""
    import datetime
    import hashlib

    from agentwrap import __version__
    from agentwrap.capture.recorder import Recorder
    from agentwrap.capture.runs import bundle_filename

    now = datetime.datetime.now(datetime.timezone.utc)
    run_id = os.urandom(4).hex()
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
