"""Capture bundles: record a run's exchanges, read them back, show them.

The `Recorder` is the only part that does I/O on the proxy's behalf (a
writer thread appending to one file); redaction, deduplication, encoding,
reading and rendering are plain functions of data. Format: docs/bundle-format.md.

Names are imported on first use, so a session that only records does not pay
for the reader and renderers at start-up.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "FORMAT_NAME": "writer",
    "FORMAT_VERSION": "writer",
    "REDACTED": "redact",
    "Redactor": "redact",
    "Recorder": "recorder",
    "Body": "reader",
    "Bundle": "reader",
    "Chunk": "reader",
    "ErrorRecord": "reader",
    "Exchange": "reader",
    "HttpRequest": "reader",
    "HttpResponse": "reader",
    "read_bundle": "reader",
    "read_header_footer": "reader",
    "to_html": "render",
    "to_json": "render",
    "to_text": "render",
    "bundle_filename": "runs",
    "default_capture_dir": "runs",
    "find_run": "runs",
    "list_runs": "runs",
    "RunFilter": "runs",
    "RetentionSettings": "retention",
    "apply_retention": "retention",
    "load_retention_settings": "retention",
    "request_cost": "cost",
    "summarize": "summary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentwrap.capture' has no attribute {name!r}")
    value = getattr(import_module(f"agentwrap.capture.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
