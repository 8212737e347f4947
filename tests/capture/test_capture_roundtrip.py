"""A written bundle reads back exactly: every leg, every chunk, every offset, every body."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentwrap.capture.reader import read_bundle
from agentwrap.capture.render import to_html, to_json, to_text
from agentwrap.capture.recorder import Recorder
from agentwrap.capture.writer import MAGIC
from tests.capture.test_capture_shapes import claude_code_bodies, dumps, synthetic_bodies

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=300)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=20)
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": json_values}), max_size=6
)
json_bodies = st.fixed_dictionaries(
    {"model": st.text(max_size=20), "messages": messages},
    optional={"system": st.text(min_size=200, max_size=600), "tools": st.lists(json_values, max_size=3),
              "stream": st.booleans(), "input": messages, "contents": messages},
)


@st.composite
def bodies(draw) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["raw", "compact", "ascii", "python", "pretty", "padded"]))
    if kind == "raw":
        return draw(st.binary(max_size=800)), kind
    obj = draw(json_bodies)
    if kind == "padded":  # big enough to be stored as JSON
        obj["pad"] = "p" * 600
    text = {
        "compact": lambda: json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
        "ascii": lambda: json.dumps(obj, separators=(",", ":")),
        "python": lambda: json.dumps(obj),
        "pretty": lambda: json.dumps(obj, indent=2),
        "padded": lambda: json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
    }[kind]()
    return text.encode("utf-8", "surrogatepass"), kind


headers = st.lists(st.tuples(st.sampled_from([b"content-type", b"x-a", b"user-agent"]), st.binary(max_size=30)), max_size=4)

exchanges = st.lists(
    st.fixed_dictionaries({
        "method": st.sampled_from(["POST", "GET"]),
        "target": st.sampled_from(["/v1/messages", "/v1/responses", "/v1beta/models/g:streamGenerateContent?alt=sse", "/x"]),
        "headers": headers,
        "body": bodies(),
        "route": st.none() | st.dictionaries(st.sampled_from(["backend", "model", "reason"]), st.text(max_size=10)),
        "upstream": st.sampled_from(["same", "other", None]),
        "status": st.sampled_from([200, 400, 429, 500]),
        "chunks": st.lists(st.binary(min_size=1, max_size=200), max_size=6),
        "agent_chunks": st.lists(st.binary(min_size=1, max_size=50), max_size=2),
        "agent_body": st.none() | st.binary(max_size=100),
        "errors": st.lists(st.tuples(st.text(max_size=10), st.text(max_size=40)), max_size=2),
        "end": st.booleans(),
    }),
    max_size=6,
)


def _expect_body(got, raw: bytes, kind: str) -> None:
    if kind in ("raw", "compact", "ascii", "python", "padded") or len(raw) < 512:
        assert got.bytes == raw
    else:
        assert json.loads(got.bytes) == json.loads(raw)
    if len(raw) >= 512 and kind != "raw":
        assert got.json == json.loads(raw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(exchanges)
def test_bundle_reads_back_exactly(spec: list[dict]) -> None:
    clock = itertools.count(0, 1000)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "run.cbor"
        rec = Recorder(str(path), {"agent": "codex", "run_id": "r1"}, [], clock_ns=clock.__next__)
        expected = []
        for ex in spec:
            raw, kind = ex["body"]
            xid = rec.exchange(ex["method"], ex["target"], ex["headers"], raw)
            if ex["route"] is not None:
                rec.route(xid, ex["route"])
            up_body = raw if ex["upstream"] == "same" else raw + b" "
            if ex["upstream"]:
                rec.upstream_request(xid, "POST", "https://up.example" + ex["target"], ex["headers"], up_body)
                rec.upstream_response(xid, ex["status"], [(b"content-type", b"text/event-stream")])
            for c in ex["chunks"]:
                rec.chunk(xid, c)
            for c in ex["agent_chunks"]:
                rec.agent_chunk(xid, c)
            if ex["agent_body"] is not None:
                rec.agent_response(xid, 502, [(b"content-type", b"application/json")], ex["agent_body"])
            for kind_, msg in ex["errors"]:
                rec.error(xid, kind_, msg)
            if ex["end"]:
                rec.end(xid)
            expected.append((xid, up_body))
        rec.close({"exit_code": 3})
        bundle = read_bundle(path)
    # the views never fail on what was recorded, however odd
    json.dumps(to_json(bundle))
    to_text(bundle)
    to_html(bundle)
    assert bundle.complete and bundle.footer["exit_code"] == 3
    assert bundle.footer["totals"]["requests"] == len(spec)
    assert [e.id for e in bundle.exchanges] == [x for x, _ in expected]
    prev_at = -1
    for ex, got, (_, up_body) in zip(spec, bundle.exchanges, expected):
        raw, kind = ex["body"]
        assert got.request.method == ex["method"] and got.request.target == ex["target"]
        assert got.request.headers == [(n.decode("latin-1"), v.decode("latin-1")) for n, v in ex["headers"]]
        assert got.request.at_ns > prev_at
        prev_at = got.request.at_ns
        _expect_body(got.request.body, raw, kind)
        assert got.route == ex["route"]
        if ex["upstream"]:
            _expect_body(got.upstream_request.body, up_body, kind if ex["upstream"] == "same" else "raw-ish")
            assert got.upstream_response.status == ex["status"]
        else:
            assert got.upstream_request is None and got.upstream_response is None
        assert [c.data for c in got.chunks] == ex["chunks"]
        assert [c.data for c in got.agent_chunks] == ex["agent_chunks"]
        assert all(c.after == len(ex["chunks"]) for c in got.agent_chunks)
        assert [(e.kind, e.message) for e in got.errors] == ex["errors"]
        assert got.complete == ex["end"]
        if ex["agent_body"] is not None:
            assert got.agent_response.status == 502 and got.agent_response.body.bytes == ex["agent_body"]
            assert got.agent_body == ex["agent_body"]
        else:
            assert got.agent_body == b"".join(ex["chunks"] + ex["agent_chunks"])


def _record(path: Path, bodies_: list[bytes], **kw) -> None:
    with Recorder(str(path), {}, [], **kw) as rec:
        for body in bodies_:
            xid = rec.exchange("POST", "/v1/messages", [], body)
            rec.upstream_request(xid, "POST", "https://u/v1/messages", [], body)
            rec.end(xid)


@pytest.mark.parametrize("shape", [synthetic_bodies, claude_code_bodies])
def test_deduplicated_sessions_read_back_byte_exact(tmp_path: Path, shape) -> None:
    sent = list(shape(30))
    _record(tmp_path / "b.cbor", sent)
    got = read_bundle(tmp_path / "b.cbor").exchanges
    assert [e.request.body.bytes for e in got] == sent
    assert all(e.request.body.exact and e.upstream_request.body is e.request.body for e in got)


def test_odd_json_bodies(tmp_path: Path) -> None:
    """Bodies are stored as bytes (or parts of earlier bodies' bytes): whatever JSON they hold
    or fail to hold, they read back byte for byte, and `json` parses them as `json.loads` does."""
    deep = json.loads("[" * 100 + "]" * 100)
    sent = [
        ('{"messages":[{"role":"user","content":"\\ud800 lone surrogate ' + "x" * 600 + '"}]}').encode(),
        dumps({"messages": [], "deep": deep, "pad": "x" * 600}),
        dumps({"messages": [], "deep": json.loads("[" * 200 + "]" * 200), "pad": "x" * 600}),
        ('{"a":1,"a":2,"pad":"' + "y" * 600 + '"}').encode(),  # duplicate keys
        ('{"n":1E5,"pad":"' + "z" * 600 + '"}').encode(),
        ("{" + '"x":' * 5000 + "1" + "}" * 5000).encode(),  # not JSON (and too deep to parse)
        b"{not json" + b"!" * 600,
        json.dumps({"model": "m", "pad": "p" * 600}, indent=2).encode(),  # pretty-printed
    ]
    _record(tmp_path / "b.cbor", sent)
    got = [e.request.body for e in read_bundle(tmp_path / "b.cbor").exchanges]
    assert [b.bytes for b in got] == sent
    assert all(b.exact and not b.is_json for b in got)
    assert got[0].json["messages"][0]["content"].startswith("\ud800")
    assert got[3].json == {"a": 2, "pad": "y" * 600} and got[4].json == {"n": 1e5, "pad": "z" * 600}
    assert got[5].json is None and got[6].json is None
    assert got[7].text_field("model") == "m"


def test_agent_leg_rules(tmp_path: Path) -> None:
    path = tmp_path / "b.cbor"
    with Recorder(str(path), {}, []) as rec:
        a = rec.exchange("POST", "/v1/messages", [], b"{}")  # upstream stream + an appended error event
        rec.upstream_response(a, 200, [])
        rec.chunk(a, b"one")
        rec.chunk(a, b"two")
        rec.agent_chunk(a, b"ERR")
        rec.end(a)
        b = rec.exchange("POST", "/v1/messages", [], b"{}")  # a local answer
        rec.agent_response(b, 401, [(b"content-type", b"application/json")], b'{"error":1}')
        rec.end(b)
        c = rec.exchange("POST", "/v1/messages", [], b"{}")  # a re-encoded stream replaces upstream's
        rec.upstream_response(c, 200, [])
        rec.chunk(c, b"upstream")
        rec.agent_response(c, 200, [])
        rec.agent_chunk(c, b"re-")
        rec.agent_chunk(c, b"encoded")
        rec.end(c)
    a_, b_, c_ = read_bundle(path).exchanges
    assert a_.agent_stream() == [b"one", b"two", b"ERR"] and a_.status == 200
    assert b_.agent_body == b'{"error":1}' and b_.status == 401
    assert c_.agent_stream() == [b"re-", b"encoded"] and c_.response_body == b"upstream"


def test_unknown_item_types_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "future.cbor"
    items = [
        {"t": "header", "format": "agentwrap-bundle", "version": 1},
        {"t": "request", "x": 1, "at": 5, "method": "GET", "target": "/", "headers": [], "body": b""},
        {"t": "hologram", "x": 1, "at": 6, "beam": True},
        {"t": "weather", "at": 7},
    ]
    path.write_bytes(MAGIC + b"".join(cbor2.dumps(i) for i in items))
    bundle = read_bundle(path)
    assert bundle.exchanges[0].other[0]["beam"] is True
    assert bundle.other == [{"t": "weather", "at": 7}]
    assert not bundle.complete and not bundle.truncated


def test_offsets_come_from_the_injected_clock(tmp_path: Path) -> None:
    ticks = iter([100, 105, 110, 120, 130, 150])
    path = tmp_path / "b.cbor"
    with Recorder(str(path), {}, [], clock_ns=ticks.__next__) as rec:
        x = rec.exchange("POST", "/v1/messages", [], b"")
        rec.chunk(x, b"a")
        rec.chunk(x, b"b")
        rec.end(x)
    ex = read_bundle(path).exchanges[0]
    assert (ex.request.at_ns, [c.at_ns for c in ex.chunks], ex.end_ns) == (5, [10, 20], 30)
    assert read_bundle(path).footer["at"] == 50
