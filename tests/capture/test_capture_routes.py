"""Routing and cost in the records: every attempt, outcome and route reason per request in
`show` (text), `--json` and `--html`, from bundles the real proxy wrote and from Recorder-made
edge cases; request and run costs from the price library, none where the price is unknown."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import anthropic
import pytest

from agentwrap.capture.cost import format_cost, pricing_version, request_cost, run_time
from agentwrap.capture.reader import read_bundle
from agentwrap.capture.recorder import Capture, Recorder
from agentwrap.capture.render import to_html, to_json, to_text
from agentwrap.capture.summary import summarize
from tests.support.bundles import ANTHROPIC, Turn, record_run
from tests.conftest import write_profile

TEXT = "Hello from the scripted upstream."
ENV = {**os.environ, "UP_KEY": "k" * 12}


# -- the real proxy's records ------------------------------------------------------------


@pytest.fixture
def claude_client():
    def make(proxy) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)

    return make


def _ask(client: anthropic.Anthropic, model: str = "claude-sonnet-4-5") -> str:
    with client.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        return "".join(s.text_stream)


def test_failover_through_the_proxy_is_shown_attempt_by_attempt(start_proxy, upstream_factory, claude_client, tmp_path):
    a = upstream_factory(f'[[turns]]\ntext = "{TEXT}"\n')
    b = upstream_factory(f'[[turns]]\ntext = "{TEXT}"\n')
    a.fail_next(503, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    profile = write_profile(
        tmp_path / "p.toml",
        f'[backends.a]\nprotocol = "anthropic_messages"\nbase_url = "{a.url}"\napi_key_env = "UP_KEY"\n'
        f'[backends.b]\nprotocol = "anthropic_messages"\nbase_url = "{b.url}"\napi_key_env = "UP_KEY"\n'
        '[[routes]]\nwhen = { model = "claude-*" }\nbackend = "a"\nmodel = "big-model"\nfallbacks = ["b"]\n',
    )
    proxy = start_proxy("claude", profile, ENV)
    path = tmp_path / "run.cbor"
    rec = Recorder(str(path), {"agent": "claude", "run_id": "f0f0f0f0"}, [])
    proxy.dispatcher.addons.add(Capture(rec))
    client = claude_client(proxy)
    assert _ask(client) == TEXT  # a answers 503, b answers
    assert _ask(client) == TEXT  # a answers
    rec.close({"exit_code": 0})
    bundle = read_bundle(path)
    first, second = bundle.exchanges
    assert [r.info.get("attempt") for r in first.routes] == [None, 1, 2]  # the reader keeps every route item
    assert len(first.upstream_requests) == 2 and [r.status for r in first.upstream_responses] == [503, 200]

    doc = json.loads(json.dumps(to_json(bundle)))
    e1, e2 = doc["exchanges"]
    assert e1["route"] == {"backend": "a", "model": "big-model", "requested_model": "claude-sonnet-4-5",
                           "reason": e1["route_reason"], "fallbacks": ["b"]}
    assert e1["route_reason"] and "claude-*" in e1["route_reason"]
    assert [(x["number"], x["backend"], x["model"], x["outcome"], x["decision"]) for x in e1["attempts"]] == [
        (1, "a", "big-model", "HTTP 503", "failover"),
        (2, "b", "claude-sonnet-4-5", "success", "done"),  # a fallback gets the model the agent asked for
    ]
    assert e1["attempts"][0]["upstream_url"].startswith(a.url) and e1["attempts"][1]["upstream_url"].startswith(b.url)
    assert "trying fallback b" in e1["attempts"][0]["why"]
    assert (e1["model"], e1["requested_model"], e1["backend"], e1["status"]) == ("claude-sonnet-4-5", "claude-sonnet-4-5", "b", 200)
    assert e1["upstream_url"].startswith(b.url)
    assert (e2["model"], e2["backend"]) == ("big-model", "a")
    assert [(x["backend"], x["outcome"], x["why"]) for x in e2["attempts"]] == [("a", "success", "a answered")]
    assert e1["cost_usd"] is None  # a loopback server has no price

    text = to_text(bundle)
    assert "   route: " in text and "→ a, model big-model (asked for claude-sonnet-4-5), fallbacks b" in text
    assert "   attempt 1 on a (big-model): HTTP 503 from a: trying fallback b" in text
    assert "   attempt 2 on b (claude-sonnet-4-5): b answered" in text
    assert "claude-sonnet-4-5 via b  200" in text and "big-model via a  200" in text

    page = to_html(bundle)
    assert page.count('<table class="attempts">') == 1 and "<td>HTTP 503</td><td>failover</td>" in page
    x1, x2 = page.split('id="x1"')[1].split('id="x2"')
    assert "<dt>requested model</dt>" not in x1 and "<dt>requested model</dt><dd>claude-sonnet-4-5</dd>" in x2  # where it differs
    assert "→ a, model big-model, fallbacks b" in page


OPENROUTER = "https://openrouter.ai/api"


def _failover_bundle(tmp_path):
    """OpenRouter unreachable, then Anthropic answers (with the model the agent asked for): priced there."""
    return read_bundle(record_run(tmp_path, turns=[Turn(
        model="claude-sonnet-4-5", routed_model="anthropic/claude-sonnet-4.5",
        failed_attempts=[("openrouter", OPENROUTER, "connection error", None)],
        answering_backend="anthropic", upstream=ANTHROPIC, usage=(1000, 100, 0, 0),
    )]))


def test_a_failover_built_by_hand_reads_the_same_in_all_three_views(tmp_path) -> None:
    bundle = _failover_bundle(tmp_path)
    (ex,) = bundle.exchanges
    doc = to_json(bundle)
    (e,) = doc["exchanges"]
    assert [(a["backend"], a["model"]) for a in e["attempts"]] == [
        ("openrouter", "anthropic/claude-sonnet-4.5"), ("anthropic", "claude-sonnet-4-5")]
    assert e["attempts"][0]["upstream_url"] == OPENROUTER + "/v1/messages"
    assert e["attempts"][1]["upstream_url"] == ANTHROPIC + "/v1/messages"
    assert e["errors"] == [{"kind": "upstream_unreachable", "message": f"cannot connect to {OPENROUTER}"}]
    assert e["backend"] == "anthropic" and e["upstream_url"] == ANTHROPIC + "/v1/messages"
    assert e["model"] == "claude-sonnet-4-5" and e["route"]["model"] == "anthropic/claude-sonnet-4.5"
    text, page = to_text(bundle), to_html(bundle)
    for a in e["attempts"]:
        assert a["why"] in text and json.dumps(a["why"])[1:-1] in page


def test_the_reader_keeps_route_items_it_does_not_know(tmp_path) -> None:
    path = tmp_path / "run.cbor"
    with Recorder(str(path), {"agent": "claude"}, []) as rec:
        xid = rec.exchange("POST", "/v1/messages", [], b"{}")
        rec.route(xid, {"backend": "a", "reason": "first"})
        rec.route(xid, {"attempt": 1, "backend": "a", "outcome": "timeout", "decision": "retry", "extra": [1]})
        rec.route(xid, {"attempt": "two", "backend": None})  # odd values render, never fail
        rec.end(xid)
    bundle = read_bundle(path)
    (ex,) = bundle.exchanges
    assert ex.route == {"backend": "a", "reason": "first"} and len(ex.attempts) == 2
    (e,) = to_json(bundle)["exchanges"]
    assert e["attempts"][0]["outcome"] == "timeout" and e["attempts"][1] == {
        "number": None, "backend": None, "model": None, "upstream_url": None, "outcome": None, "decision": None, "why": None}
    assert "attempt ? on ?: no outcome recorded" in to_text(bundle)


# -- cost ----------------------------------------------------------------------------------


AT = datetime(2026, 11, 20, tzinfo=timezone.utc)


@pytest.mark.parametrize(("model", "url", "usage", "expected"), [
    # Anthropic: sonnet 4.5 $3 in, $0.30 cache read, $3.75 cache write, $15 out (per million)
    ("claude-sonnet-4-5", "https://api.anthropic.com/v1/messages?beta=true", (1000, 100, 200, 50),
     (750 * 3 + 200 * 0.3 + 50 * 3.75 + 100 * 15) / 1e6),
    ("claude-sonnet-4-5-20250929", "https://api.anthropic.com/v1/messages", (1000, 0, 0, 0), 1000 * 3 / 1e6),
    ("gpt-5", "https://api.openai.com/v1/responses", (1000, 100, 0, 0), (1000 * 1.25 + 100 * 10) / 1e6),
    ("gemini-2.5-pro", "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
     (1000, 100, 0, 0), (1000 * 1.25 + 100 * 10) / 1e6),
    ("claude-sonnet-4-5", "https://api.anthropic.com/v1/messages", (0, 0, 0, 0), 0.0),
    # no cost rather than a wrong one:
    ("qwen3-coder", "http://127.0.0.1:8080/v1/chat/completions", (1000, 100, 0, 0), None),  # a local server
    ("gpt-5", "https://chatgpt.com/backend-api/codex/responses", (1000, 100, 0, 0), None),  # a ChatGPT login
    ("claude-sonnet-4-5", "https://api.deepseek.com/v1/chat/completions", (1000, 100, 0, 0), None),  # not sold there
    ("no-such-model-7", "https://api.anthropic.com/v1/messages", (1000, 100, 0, 0), None),
    ("claude-sonnet-4-5", None, (1000, 100, 0, 0), None),  # scripted or replayed: nothing went upstream
    ("claude-sonnet-4-5", "scripted:offline", (1000, 100, 0, 0), None),
    (None, "https://api.anthropic.com/v1/messages", (1000, 100, 0, 0), None),
])
def test_request_cost(model, url, usage, expected) -> None:
    counts = dict(zip(("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"), usage))
    got = request_cost(model, url, counts, AT)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_cost_never_reaches_the_network(monkeypatch) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the price library tried the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert request_cost("claude-haiku-4-5", "https://api.anthropic.com/v1/messages", {"input_tokens": 10, "output_tokens": 1}, AT)


def test_format_cost_and_helpers() -> None:
    assert [format_cost(x) for x in (None, 0, 0.00001, 0.0042, 0.5, 12.345, 4321.0)] == [
        "-", "$0", "<$0.0001", "$0.0042", "$0.50", "$12.35", "$4,321"]
    assert format_cost(0.5, partial=True) == "$0.50+"
    assert run_time("2026-11-20T09:00:00Z") == datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
    assert run_time("soon") is None and run_time(None) is None
    assert pricing_version().startswith("genai-prices ")


def test_run_cost_sums_priced_requests_and_counts_the_rest(tmp_path) -> None:
    bundle = read_bundle(record_run(tmp_path, turns=[
        Turn(usage=(1000, 100, 0, 0)),
        Turn(model="claude-haiku-4-5", usage=(2000, 10, 0, 0)),
        Turn(model="local-model", upstream="http://127.0.0.1:11434", usage=(500, 5, 0, 0)),
        Turn(upstream=None, usage=(10, 1, 0, 0)),  # a scripted answer
        Turn(status=529),  # an error: no usage, no cost
    ]))
    expected = (1000 * 3 + 100 * 15) / 1e6 + (2000 * 1 + 10 * 5) / 1e6
    summary = summarize(bundle)
    assert summary["cost_usd"] == pytest.approx(expected) and summary["unpriced_requests"] == 2
    assert summary["models"] == ["claude-sonnet-4-5", "claude-haiku-4-5", "local-model"]
    assert (summary["requests"], summary["errors"]) == (5, 1)
    doc = to_json(bundle)
    assert doc["totals"]["cost_usd"] == pytest.approx(expected) and doc["totals"]["unpriced_requests"] == 2
    assert [e["cost_usd"] is not None for e in doc["exchanges"]] == [True, True, False, False, False]
    assert f"cost {format_cost(expected)}+" in to_text(bundle)  # + : some requests had no known price
    assert "<dt>cost</dt>" in to_html(bundle)


def test_failover_cost_is_priced_where_the_answer_came_from(tmp_path) -> None:
    bundle = _failover_bundle(tmp_path)
    (e,) = to_json(bundle)["exchanges"]
    expected = (1000 * 3 + 100 * 15) / 1e6  # Anthropic's sonnet 4.5 price, not OpenRouter's
    assert e["cost_usd"] == pytest.approx(expected)
    assert summarize(bundle)["cost_usd"] == pytest.approx(expected)
