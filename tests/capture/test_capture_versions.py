"""Bundles of older format versions, as an older agentwrap wrote them, read with today's reader,
`show`, `runs` and the replay backend (fixtures: tests/fixtures/bundles/, made by make_fixtures.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import shutil
from pathlib import Path

import cbor2
import pytest
from typer.testing import CliRunner

from agentwrap.backends.replay import RecordedExchange, ReplayBackend
from agentwrap.capture.reader import read_bundle, read_header_footer
from agentwrap.capture.writer import FORMAT_VERSION, MAGIC
from agentwrap.cli import _build_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
V1 = FIXTURES / "v1.cbor"


def _maker():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _items(path: Path) -> list:
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    fp = io.BytesIO(data[len(MAGIC):])
    out = []
    while fp.tell() < len(data) - len(MAGIC):
        out.append(cbor2.load(fp))
    return out


def test_the_fixture_is_version_1_with_structured_bodies() -> None:
    """What the fixture must be for the tests below to mean anything."""
    items = [i for i in _items(V1) if isinstance(i, dict)]
    assert items[0]["version"] == 1 < FORMAT_VERSION
    kinds = {i["t"] for i in items}
    assert {"blob", "list"} <= kinds
    bodies = [i["body"] for i in items if i["t"] == "request"]
    assert sum(isinstance(b, dict) and "json" in b for b in bodies) == 5 and isinstance(bodies[-1], bytes)


def test_version_1_bundle_reads_as_written() -> None:
    maker = _maker()
    expected = json.loads((FIXTURES / "v1.expected.json").read_text())
    sent = [b.replace(maker.KEY.encode(), b"[REDACTED]") for b in maker.bodies()]
    bundle = read_bundle(V1)
    assert bundle.version == 1 and bundle.complete and not bundle.truncated
    assert bundle.header["argv"] == ["claude", "-p", "hi", "[REDACTED]"]
    assert bundle.footer["totals"] == expected["footer_totals"]
    assert len(bundle.exchanges) == len(expected["exchanges"]) == len(sent)
    for ex, want, body in zip(bundle.exchanges, expected["exchanges"], sent):
        got = ex.request.body
        assert hashlib.sha256(got.bytes).hexdigest() == want["request_sha256"]
        assert got.exact == want["request_exact"]
        if got.exact:
            assert got.bytes == body
        else:  # version 1 could not rebuild a pretty-printed body's bytes, only its value
            assert json.loads(got.bytes) == json.loads(body)
        assert (got.json is not None) == want["request_json"]
        assert hashlib.sha256(ex.upstream_request.body.bytes).hexdigest() == want["upstream_sha256"]
        assert ex.upstream_request.body.text_field("model") == want["upstream_model"]
        assert ex.response_body.decode() == want["response"] and ex.agent_body.decode() == want["agent_body"]
    header, footer = read_header_footer(V1)
    assert header["run_id"] == "f1x7ure0" and footer["totals"]["requests"] == 6


@pytest.fixture
def cap_with_v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cap = tmp_path / "cap"
    cap.mkdir()
    shutil.copy(V1, cap / "20261120T090000Z-claude-f1x7ure0.cbor")
    monkeypatch.setenv("AGENTWRAP_CAPTURE_DIR", str(cap))
    return cap


def test_show_and_runs_read_a_version_1_bundle(cap_with_v1: Path) -> None:
    app, runner = _build_app(), CliRunner()
    shown = runner.invoke(app, ["show", "--json", "f1x7ure0"])
    assert shown.exit_code == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["run"]["run_id"] == "f1x7ure0" and len(doc["exchanges"]) == 6
    assert [e["requested_model"] for e in doc["exchanges"]] == ["claude-fixture"] * 6
    text = runner.invoke(app, ["show", "f1x7ure0"])
    assert text.exit_code == 0 and "6 requests" in text.stdout
    runs = runner.invoke(app, ["runs", "--json"])
    assert runs.exit_code == 0, runs.stderr
    (row,) = json.loads(runs.stdout)["runs"]
    assert row["run_id"] == "f1x7ure0" and row["requests"] == 6


def test_replay_serves_a_version_1_recording() -> None:
    bundle = read_bundle(V1)
    recorded = [RecordedExchange(i, ex.request.method, ex.path, ex.request.body.bytes, ex.status,
                                 list(ex.upstream_response.headers), ex.agent_stream())
                for i, ex in enumerate(bundle.exchanges)]
    backend = ReplayBackend(recorded)
    for ex in bundle.exchanges:
        answer = backend.respond("POST", ex.path, ex.request.body.bytes)
        assert answer is not None and b"".join(answer.chunks) == ex.agent_body
    assert not backend.divergences and not backend.unused()
