"""Where bundles live, what they are called, the list of recent runs, and finding one.

`list_runs` reads only each bundle's header and footer (the footer is found
through the locator at the end of the file), so listing stays fast however
long the runs were. The models and cost of a run (`details=True`) need the
whole bundle: they are read once and kept in a small index in the capture
directory (`.runs-index.json`, keyed by file name, size and modification
time), so a second listing reads no bundle again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from platformdirs import user_state_dir

from agentwrap.capture.retention import BundleFile, bundle_files
from agentwrap.errors import CaptureError, ConfigError
from agentwrap.files import write_private

__all__ = [
    "BUNDLE_SUFFIX", "INDEX_FILE_NAME", "RunFilter", "bundle_filename", "default_capture_dir", "directory_usage",
    "find_run", "list_runs",
]

BUNDLE_SUFFIX = ".cbor"
SHORT_ID_CHARS = 8
INDEX_FILE_NAME = ".runs-index.json"
INDEX_VERSION = 1
AMBIGUOUS_SHOWN = 5  # matches named in an "ambiguous run id" message


def default_capture_dir() -> Path:
    """The platform's per-user state directory for agentwrap, `runs/` inside it."""
    return Path(user_state_dir("agentwrap")) / "runs"


def bundle_filename(agent: str, run_id: str, now_utc: datetime) -> str:
    """`<YYYYmmddTHHMMSSZ>-<agent>-<short id>.cbor`; sorting names sorts runs by start time."""
    if now_utc.tzinfo is not None:
        now_utc = now_utc.astimezone(timezone.utc)
    short = "".join(c for c in run_id if c.isalnum())[:SHORT_ID_CHARS] or "run"
    safe_agent = "".join(c if c.isalnum() or c in "-_" else "_" for c in agent) or "agent"
    return f"{now_utc:%Y%m%dT%H%M%SZ}-{safe_agent}-{short}{BUNDLE_SUFFIX}"


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs `list_runs` returns; every condition given must hold.

    `errors`: runs with a failed request, a non-zero exit, or no footer (cut
    short, or still running), and unreadable files. `grep`: text found,
    ignoring case, in the run's command line, directory, profile, id, models,
    prompts, answers, tool calls and results, or errors (this reads whole bundles).
    """

    agent: str | None = None
    profile: str | None = None
    since: datetime | None = None
    errors: bool = False
    grep: str | None = None


def _tokens(totals: dict) -> int | None:
    tokens = totals.get("tokens")
    if not isinstance(tokens, dict):
        return None
    return sum(v for k, v in tokens.items() if k in ("input_tokens", "output_tokens") and isinstance(v, int))


def _row(b: BundleFile) -> dict:
    # Imported here: sessions call default_capture_dir() on the start-up path, and
    # the reader (cbor2 and friends) is not needed there.
    from agentwrap.capture.reader import read_header_footer

    row: dict = {
        "time": None, "agent": None, "profile": None, "duration_s": None, "exit_code": None,
        "requests": None, "errors": None, "tokens": None, "models": None, "cost_usd": None, "unpriced_requests": None,
        "path": b.path, "size_bytes": b.size, "complete": False, "run_id": None, "error": None,
    }
    try:
        header, footer = read_header_footer(b.path)
    except CaptureError as exc:
        row["error"] = str(exc)
        return row
    row.update(time=header.get("started_at"), agent=header.get("agent"), profile=header.get("profile"),
               run_id=header.get("run_id"))
    if footer is not None:
        totals = footer.get("totals") if isinstance(footer.get("totals"), dict) else {}
        duration = footer.get("duration_s")
        if duration is None and isinstance(footer.get("at"), int):
            duration = round(footer["at"] / 1e9, 3)
        row.update(complete=True, duration_s=duration, exit_code=footer.get("exit_code"),
                   requests=totals.get("requests"), errors=totals.get("errors"), tokens=_tokens(totals))
    return row


def _had_problems(row: dict) -> bool:
    return bool(
        row["error"] or not row["complete"] or (row["errors"] or 0) > 0 or row["exit_code"] not in (0, None)
    )


def _texts(doc: dict):
    """The strings `--grep` looks in, from a `render.to_json` document."""
    run = doc["run"]
    yield from (str(a) for a in run.get("argv") or [])
    yield from (str(run.get(k) or "") for k in ("cwd", "profile", "run_id", "agent"))
    for err in doc["errors"]:
        yield err["message"]
    for e in doc["exchanges"]:
        yield from (str(x) for x in (e["model"], e["requested_model"], e["answer"], e["thinking"]) if x)
        for m in e["messages_added"]:
            yield m["text"]
            yield m["thinking"]
            for c in m["tool_calls"]:
                yield c["name"]
                yield c["arguments"]
            for r in m["tool_results"]:
                yield r["content"]
        for c in e["tool_calls"]:
            yield c["name"]
            yield c["arguments"]
        for err in e["errors"]:
            yield err["message"]


def _grep(path: str, needle: str) -> bool:
    from agentwrap.capture.reader import read_bundle
    from agentwrap.capture.render import to_json

    try:
        doc = to_json(read_bundle(path))
    except CaptureError:
        return False
    needle = needle.casefold()
    return any(needle in t.casefold() for t in _texts(doc) if t)


class _SummaryIndex:
    """Run summaries (`summary.summarize`) kept in the capture directory between listings.

    Entries are keyed by file name, size and modification time, and the whole
    index by the price data's version, so a changed bundle or a new price list
    is read again. A directory that cannot be written just gets no index.
    """

    def __init__(self, directory: Path) -> None:
        from agentwrap import __version__
        from agentwrap.capture.cost import pricing_version

        self.path = directory / INDEX_FILE_NAME
        # A new agentwrap may read bundles differently, new price data prices them differently.
        self.pricing = f"agentwrap {__version__}; {pricing_version()}"
        self.entries: dict[str, dict] = {}
        self.dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == INDEX_VERSION and data.get("pricing") == self.pricing:
            runs = data.get("runs")
            self.entries = runs if isinstance(runs, dict) else {}

    def summary(self, b: BundleFile) -> dict | None:
        entry = self.entries.get(b.name)
        if isinstance(entry, dict) and entry.get("size") == b.size and entry.get("mtime_ns") == b.mtime_ns:
            summary = entry.get("summary")
            if isinstance(summary, dict):
                return summary
        from agentwrap.capture.reader import read_bundle
        from agentwrap.capture.summary import summarize

        try:
            summary = summarize(read_bundle(b.path))
        except CaptureError:
            return None
        self.entries[b.name] = {"size": b.size, "mtime_ns": b.mtime_ns, "summary": summary}
        self.dirty = True
        return summary

    def save(self, present: set[str]) -> None:
        if not self.dirty:
            return
        runs = {k: v for k, v in self.entries.items() if k in present}
        data = json.dumps({"version": INDEX_VERSION, "pricing": self.pricing, "runs": runs}, separators=(",", ":"))
        tmp = self.path.with_name(f"{INDEX_FILE_NAME}.{os.getpid()}.tmp")
        try:
            write_private(tmp, data)
            os.replace(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def list_runs(
    capture_dir: str | os.PathLike,
    limit: int | None = 20,
    *,
    where: RunFilter | None = None,
    details: bool = False,
) -> list[dict]:
    """Recent runs, newest first, at most `limit` (None: all) that pass `where`.

    One dict per bundle (`complete` False for cut-short runs, `error` set for
    files that are not readable bundles). `details` adds `models`, `cost_usd`
    and `unpriced_requests` (and `requests`, `errors`, `tokens` for runs without
    a footer), read from the whole bundle once and then from the index.
    A missing directory has no runs.
    """
    directory = Path(capture_dir)
    if directory.exists() and not directory.is_dir():
        raise CaptureError(f"Cannot list capture directory {directory}: not a directory")
    try:
        files = bundle_files(directory)
    except OSError as exc:
        raise CaptureError(f"Cannot list capture directory {directory}: {exc.strerror or exc}") from exc
    where = where or RunFilter()
    index = _SummaryIndex(directory) if details else None
    rows: list[dict] = []
    for b in files:
        if limit is not None and len(rows) >= limit:
            break
        if where.since is not None and b.started < where.since:
            break  # names sort by start time: every later file is older
        row = _row(b)
        if where.agent is not None and row["agent"] != where.agent:
            continue
        if where.profile is not None and row["profile"] != where.profile:
            continue
        if where.errors and not _had_problems(row):
            continue
        if where.grep and (row["error"] or not _grep(b.path, where.grep)):
            continue
        if index is not None and not row["error"]:
            summary = index.summary(b)
            if summary is not None:
                row.update(models=summary["models"], cost_usd=summary["cost_usd"],
                           unpriced_requests=summary["unpriced_requests"])
                if not row["complete"]:
                    row.update(requests=summary["requests"], errors=summary["errors"],
                               tokens=_tokens({"tokens": summary["tokens"]}))
        rows.append(row)
    if index is not None:
        index.save({b.name for b in files})
    return rows


def directory_usage(capture_dir: str | os.PathLike) -> tuple[int, int]:
    """(number of bundles, their total size in bytes) in the capture directory."""
    files = bundle_files(capture_dir)
    return len(files), sum(b.size for b in files)


def _describe(b: BundleFile) -> str:
    return f"{b.short_id} ({b.started:%Y-%m-%d %H:%M:%S}Z {b.name.split('-', 1)[1].rsplit('-', 1)[0]})"


def find_run(capture_dir: str | os.PathLike, spec: str) -> str:
    """The bundle path for `spec`: a path to a bundle file, `latest`, or a run id or a
    unique prefix of one (as `agentwrap runs` shows it).

    Raises `ConfigError` when nothing matches or a prefix matches several runs
    (naming them).
    """
    directory = Path(capture_dir)
    if spec == "latest":
        files = bundle_files(directory)
        if not files:
            raise ConfigError(f"no runs recorded in {directory} yet")
        return files[0].path
    if os.path.isfile(spec):
        return spec
    if os.sep in spec or (os.altsep is not None and os.altsep in spec) or not spec:
        raise ConfigError(f"bundle {spec} not found")
    if spec.endswith(BUNDLE_SUFFIX):  # a bundle's file name, as `runs --json` shows it
        if (directory / spec).is_file():
            return str(directory / spec)
        raise ConfigError(f"bundle {spec} not found (not here, nor in {directory})")
    files = bundle_files(directory)
    key = spec.casefold()
    matches = [b for b in files if b.name.casefold() == key + BUNDLE_SUFFIX]  # a file name without .cbor
    if not matches:
        matches = [b for b in files if b.short_id.casefold().startswith(key[:SHORT_ID_CHARS])]
        if len(key) > SHORT_ID_CHARS:
            matches = [b for b in matches if _run_id(b).casefold().startswith(key)]
    if not matches:
        raise ConfigError(
            f"no run {spec!r} in {directory}: give a run id from `agentwrap runs`, `latest`, or a bundle path"
        )
    if len(matches) > 1:
        shown = ", ".join(_describe(b) for b in matches[:AMBIGUOUS_SHOWN])
        more = f" and {len(matches) - AMBIGUOUS_SHOWN} more" if len(matches) > AMBIGUOUS_SHOWN else ""
        raise ConfigError(f"run id {spec!r} is ambiguous: it matches {len(matches)} runs: {shown}{more}. Give more characters.")
    return matches[0].path


def _run_id(b: BundleFile) -> str:
    from agentwrap.capture.reader import read_header_footer

    try:
        header, _ = read_header_footer(b.path)
    except CaptureError:
        return b.short_id
    run_id = header.get("run_id")
    return run_id if isinstance(run_id, str) else b.short_id
