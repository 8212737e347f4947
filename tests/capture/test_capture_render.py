"""show: JSON, terminal and HTML views of a run; runs: the list of recent runs."""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentwrap.capture import bundle_filename, default_capture_dir, list_runs, read_bundle, to_html, to_json, to_text
from agentwrap.capture.recorder import Recorder
from agentwrap.protocols.codec import codec
from agentwrap.protocols.neutral import MessageStart, Stop, TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage
from tests.capture.test_capture_shapes import SECRET, dumps

EVIL = "<script>alert('x')</script>&"

TARGETS = {
    "anthropic_messages": "/v1/messages",
    "openai_chat": "/v1/chat/completions",
    "openai_responses": "/v1/responses",
    "gemini": "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
}


def _turns(protocol: str) -> list[list]:
    """The conversation of turn 1 and turn 2 (after one tool call and its result)."""
    ask = f"list the files {EVIL}"
    result = "a.py\nb.py"
    if protocol == "anthropic_messages":
        first = [{"role": "user", "content": [{"type": "text", "text": ask}]}]
        call = {"role": "assistant", "content": [{"type": "text", "text": "I'll look."},
                                                  {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}}]}
        res = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": result}]}
    elif protocol == "openai_chat":
        first = [{"role": "system", "content": "be brief"}, {"role": "user", "content": ask}]
        call = {"role": "assistant", "content": "I'll look.",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls"}'}}]}
        res = {"role": "tool", "tool_call_id": "call_1", "content": result}
    elif protocol == "openai_responses":
        first = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": ask}]}]
        call = {"type": "function_call", "call_id": "call_1", "name": "Bash", "arguments": '{"command":"ls"}'}
        res = {"type": "function_call_output", "call_id": "call_1", "output": result}
    else:
        first = [{"role": "user", "parts": [{"text": ask}]}]
        call = {"role": "model", "parts": [{"functionCall": {"name": "Bash", "args": {"command": "ls"}}}]}
        res = {"role": "user", "parts": [{"functionResponse": {"name": "Bash", "response": {"output": result}}}]}
    return [first, first + [call, res]]


def _body(protocol: str, conv: list) -> bytes:
    key = {"openai_responses": "input", "gemini": "contents"}.get(protocol, "messages")
    body = {key: conv, "stream": True, "pad": "p" * 600}
    if protocol != "gemini":
        body["model"] = "model-a"
    return dumps(body)


def _answer(protocol: str, turn: int) -> list[bytes]:
    enc = codec(protocol).StreamEncoder("model-a", "resp_1")
    events: list = [MessageStart("resp_1", "model-a"), Usage(1000 * (turn + 1), 50, 200, 0)]
    if turn == 0:
        events += [TextDelta("I'll "), TextDelta("look."), ToolCallStart(0, "call_1", "Bash"),
                   ToolCallArgsDelta(0, '{"command":'), ToolCallArgsDelta(0, '"ls"}'), ToolCallEnd(0), Stop("tool_use")]
    else:
        events += [TextDelta(f"Two files. {EVIL}"), Stop("end_turn")]
    return [c for c in [enc.feed(e) for e in events] + [enc.finish()] if c]


def _session(path: Path, protocol: str, *, close: bool = True) -> Recorder:
    clock = itertools.count(0, 1_000_000)  # every call moves the clock 1 ms
    header = {"agent": "claude", "agent_version": "2.1.3", "profile": "work", "run_id": "abcdef123456",
              "started_at": "2026-11-26T05:00:00Z", "argv": ["claude", "-p", "hi"], "cwd": "/src"}
    rec = Recorder(str(path), header, [SECRET], clock_ns=clock.__next__)
    for turn, conv in enumerate(_turns(protocol)):
        body = _body(protocol, conv)
        xid = rec.exchange("POST", f"/{SECRET}{TARGETS[protocol]}", [(b"x-api-key", SECRET.encode())], body)
        rec.route(xid, {"backend": "main", "model": "model-a", "reason": "rule 1: model glob"})
        rec.upstream_request(xid, "POST", "https://up.example" + TARGETS[protocol], [], body)
        rec.upstream_response(xid, 200, [(b"content-type", b"text/event-stream")])
        for c in _answer(protocol, turn):
            rec.chunk(xid, c)
        rec.end(xid)
    xid = rec.exchange("POST", f"/{SECRET}{TARGETS[protocol]}", [], b"{}")
    rec.agent_response(xid, 401, [(b"content-type", b"application/json")], b'{"error":{"message":"no secret"}}')
    rec.error(xid, "authentication", "the request did not carry the session secret")
    rec.end(xid)
    if close:
        rec.close({"exit_code": 0, "duration_s": 2.5})
    return rec


@pytest.mark.parametrize("protocol", list(TARGETS))
def test_json_view(tmp_path: Path, protocol: str) -> None:
    path = tmp_path / "run.cbor"
    _session(path, protocol)
    doc = json.loads(json.dumps(to_json(read_bundle(path))))
    assert doc["schema"] == 1 and doc["bundle"]["complete"]
    assert doc["run"]["agent"] == "claude" and doc["run"]["exit_code"] == 0 and doc["run"]["duration_s"] == 2.5
    first, second, refused = doc["exchanges"]
    # The model is the one the upstream request named as sent (a Gemini URL's, here).
    sent = "gemini-2.5-pro" if protocol == "gemini" else "model-a"
    assert (first["model"], first["backend"], first["route_reason"], first["status"]) == (sent, "main", "rule 1: model glob", 200)
    assert first["protocol"] == protocol and first["path"] == TARGETS[protocol]
    assert first["ttfb_ms"] == 4.0 and first["latency_ms"] == 4.0 + len(_answer(protocol, 0))
    assert first["answer"] == "I'll look."
    assert [(c["name"], json.loads(c["arguments"])) for c in first["tool_calls"]] == [("Bash", {"command": "ls"})]
    assert first["tokens"]["input_tokens"] == 1000 and first["tokens"]["output_tokens"] == 50
    assert EVIL in first["messages_added"][-1]["text"]
    assert second["messages_total"] == len(_turns(protocol)[1])
    assert len(second["messages_added"]) == 2  # only the tool call and its result are new
    assert second["messages_added"][0]["tool_calls"][0]["name"] == "Bash"
    assert second["tool_results"][0]["content"] == "a.py\nb.py"
    assert second["answer"] == f"Two files. {EVIL}" and not second["tool_calls"]
    assert refused["status"] == 401 and refused["errors"][0]["kind"] == "authentication"
    assert doc["totals"] == {"requests": 3, "errors": 1,
                             "tokens": {"input_tokens": 3000, "output_tokens": 100, "cache_read_tokens": 400, "cache_write_tokens": 0},
                             "cost_usd": None, "unpriced_requests": 2}  # model-a at up.example has no known price


def test_text_view(tmp_path: Path) -> None:
    path = tmp_path / "run.cbor"
    _session(path, "anthropic_messages")
    text = to_text(read_bundle(path))
    assert "agentwrap run 2026-11-26T05:00:00Z  claude 2.1.3  profile work" in text
    assert "exit 0 · 2.5 s · 3 requests · 1 with errors" in text
    assert "── #1  POST /v1/messages  model-a via main  200" in text
    assert "← tool call Bash (call_1): {\"command\":\"ls\"}" in text
    assert "tool result call_1: a.py\n      b.py" in text
    assert "! authentication: the request did not carry the session secret" in text
    assert "INCOMPLETE" not in text and SECRET not in text
    long = to_text(read_bundle(path), max_chars=5)
    assert "more characters)" in long


def _cut_footer(path: Path) -> None:
    data = path.read_bytes()
    offset = int.from_bytes(data[-8:], "big")
    path.write_bytes(data[:offset + 3])


def test_incomplete_bundles_are_labelled(tmp_path: Path) -> None:
    path = tmp_path / "run.cbor"
    _session(path, "openai_chat")
    _cut_footer(path)
    bundle = read_bundle(path)
    assert not bundle.complete
    assert "INCOMPLETE" in to_text(bundle)
    assert "<b>Incomplete</b>" in to_html(bundle)
    doc = to_json(bundle)
    assert doc["bundle"]["complete"] is False and len(doc["exchanges"]) == 3 and doc["run"]["exit_code"] is None


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    path = tmp_path / "run.cbor"
    _session(path, "anthropic_messages")
    page = to_html(read_bundle(path))
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;" in page
    # The raw data block cannot end its <script> early, and holds the text as recorded.
    data = page.split('<script type="application/json" id="raw-data">')[1].split("</script>")[0]
    assert "<" not in data and EVIL in json.dumps(json.loads(data), ensure_ascii=False)
    assert page.count("<script") == 2  # the data block and the viewer's own script
    # Nothing is loaded: no src, no link, no import; the only links are to the page's own requests.
    assert not re.search(r"\bsrc\s*=", page) and not re.search(r'\bhref\s*=\s*"(?!#x\d+")', page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page
    assert page.count("<details") == page.count("</details>") and page.count('class="ex') == 3
    assert "a.py\nb.py" in page and "rule 1: model glob" in page


def test_bundle_filename_and_default_dir(isolated_env: Path) -> None:
    now = datetime(2026, 11, 26, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    assert bundle_filename("claude", "3f2a9c1e-77aa-4bb0", now) == "20261126T050809Z-claude-3f2a9c1e.cbor"
    assert default_capture_dir() == isolated_env / ".local" / "state" / "agentwrap" / "runs"


def test_list_runs(tmp_path: Path) -> None:
    start = datetime(2026, 11, 26, 5, 0, 0, tzinfo=timezone.utc)
    for i, protocol in enumerate(["anthropic_messages", "openai_chat", "gemini"]):
        _session(tmp_path / bundle_filename("claude", f"run{i}xxxx", start + timedelta(minutes=i)), protocol)
    newest = tmp_path / bundle_filename("codex", "cut00000", start + timedelta(minutes=5))
    _session(newest, "openai_responses")
    _cut_footer(newest)
    (tmp_path / "20200101T000000Z-junk-0000.cbor").write_bytes(b"not a bundle")
    (tmp_path / "notes.txt").write_text("ignored")
    runs = list_runs(tmp_path, limit=10)
    assert [Path(r["path"]).name[:16] for r in runs] == ["20261126T050500Z", "20261126T050200Z", "20261126T050100Z",
                                                        "20261126T050000Z", "20200101T000000Z"]
    assert runs[0]["complete"] is False and runs[0]["exit_code"] is None and runs[0]["agent"] == "claude"
    done = runs[1]
    assert done["complete"] and done["exit_code"] == 0 and done["requests"] == 3 and done["tokens"] == 3100
    assert (done["profile"], done["duration_s"], done["time"]) == ("work", 2.5, "2026-11-26T05:00:00Z")
    assert "not an agentwrap bundle" in runs[-1]["error"]
    assert len(list_runs(tmp_path, limit=2)) == 2
    assert list_runs(tmp_path / "missing") == []
