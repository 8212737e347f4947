"""The doctor's rows and what every check looks at: `Check`, statuses, `Context`, small readers.

No checks here; no I/O beyond reading files the checks ask for.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentwrap.agents import AGENTS
from agentwrap.cli_output import SCHEMA_VERSION

__all__ = [
    "OK", "WARN", "FAIL", "SKIP", "STATUSES", "Check", "Context", "DoctorOptions",
    "doctor_document", "exit_code", "mask_key", "gemini_system_file_problem", "ok", "read_json", "dig", "when",
    "expiry_ms", "jwt_exp", "is_loopback", "url_host", "default_gemini_system",
]

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
STATUSES = (OK, WARN, FAIL, SKIP)

ONLINE_TIMEOUT_S = 10.0
WIRE_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Check:
    """One row of the doctor's report."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix if self.status != OK else ""}


def ok(name: str, detail: str) -> Check:
    return Check(name, OK, detail)


def mask_key(value: str) -> str:
    """A key as its last four characters; short keys are not even that."""
    value = value.strip()
    if len(value) < 12:
        return f"({len(value)} characters)"
    return "…" + value[-4:]


def doctor_document(checks: list[Check]) -> dict[str, Any]:
    """The `--json` document."""
    return {
        "schema": SCHEMA_VERSION,
        "checks": [c.as_dict() for c in checks],
        "ok": not any(c.status == FAIL for c in checks),
    }


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed, 1 otherwise."""
    return 1 if any(c.status == FAIL for c in checks) else 0


# -- context -------------------------------------------------------------------------------------


def _default_claude_managed() -> tuple[Path, ...]:
    from agentwrap.agents.claude import managed_settings_paths

    return managed_settings_paths()


def default_gemini_system() -> Path:
    if sys.platform == "darwin":
        return Path("/Library/Application Support/GeminiCli/settings.json")
    return Path("/etc/gemini-cli/settings.json")


def gemini_system_file_problem(path: Path) -> str | None:
    """Why Gemini CLI would skip `path` as a system settings file, or None if it reads it.

    Gemini CLI 0.61 reads a system settings file only when the file and every
    parent directory (also of its resolved path) are owned by root and not
    writable by group or others ("Security Warning: Skipping system settings file").
    """
    try:
        real = path.resolve()
    except OSError as exc:
        return f"cannot resolve {path}: {exc.strerror or exc}"
    paths = [path, *path.absolute().parents]
    if real != path:
        paths += [real, *real.parents]
    for p in dict.fromkeys(paths):
        try:
            st = p.stat()
        except OSError as exc:
            return f"cannot stat {p}: {exc.strerror or exc}"
        if st.st_uid != 0:
            return f"{p} is not owned by root"
        if st.st_mode & 0o022:
            return f"{p} is writable by group or others"
    return None


@dataclass(slots=True)
class Context:
    """What the checks look at: the environment, the working directory, system paths."""

    env: Mapping[str, str]
    cwd: Path
    now: float = field(default_factory=time.time)
    claude_managed_settings: tuple[Path, ...] = field(default_factory=_default_claude_managed)
    gemini_system_settings: Path | None = None  # None: GEMINI_CLI_SYSTEM_SETTINGS_PATH or the platform's
    gemini_system_check: Callable[[Path], str | None] = gemini_system_file_problem

    @classmethod
    def current(cls) -> "Context":
        return cls(env=dict(os.environ), cwd=Path.cwd())

    @property
    def home(self) -> Path:
        return Path(self.env.get("HOME") or os.path.expanduser("~"))

    def short(self, path: Path | str) -> str:
        """A path for display, with the home directory as ~."""
        text, home = str(path), str(self.home)
        if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
            return "~" + text[len(home):]
        return text

    def redact(self, text: str) -> str:
        """`text` with every key-like value of the environment replaced."""
        for name, value in self.env.items():
            if len(value) >= 8 and any(w in name.upper() for w in ("KEY", "TOKEN", "SECRET", "PASSWORD")) and value in text:
                text = text.replace(value, mask_key(value))
        return text


@dataclass(slots=True)
class DoctorOptions:
    agents: tuple[str, ...] = tuple(AGENTS)
    profile: str | None = None  # as `agentwrap AGENT --profile`
    project: bool = True  # False: ignore the project file, as `agentwrap AGENT --no-project`
    online: bool = False
    wire: bool = False
    timeout_s: float = ONLINE_TIMEOUT_S
    wire_timeout_s: float = WIRE_TIMEOUT_S
    agents_named: bool = False  # the user asked for these agents: a missing one is a failure


# -- small readers -----------------------------------------------------------------------------


def read_json(path: Path) -> tuple[Any, str | None]:
    """(data, problem): data is None when the file is missing or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"{path} is not valid JSON ({exc})"


def dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def when(ms_or_s: float) -> str:
    return datetime.fromtimestamp(ms_or_s, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def expiry_ms(value: Any) -> float | None:
    return float(value) / 1000 if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def jwt_exp(token: Any) -> float | None:
    """The `exp` claim of a JWT, read without verifying it (only to report expiry)."""
    import base64

    if not isinstance(token, str) or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def is_loopback(url: str | None) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url or "").hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def url_host(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "(unparsable URL)"
