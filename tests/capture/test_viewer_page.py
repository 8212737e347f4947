"""The HTML viewer's parts without a browser: the cURL command (run by a real shell
against a real loopback upstream), the deduplicated data block, what a turn added,
system prompts and tool lists, folded reminders, and text that UTF-8 cannot hold.
The page in a real browser: tests/capture/test_viewer_browser.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agentwrap.capture.html import segments
from agentwrap.capture.raw import curl_command
from agentwrap.capture.reader import read_bundle
from agentwrap.capture.recorder import Recorder
from agentwrap.capture.render import to_html, to_json
from agentwrap.capture.turns import describe, previous_turn, system_prompt, tool_names
from tests.capture.test_capture_shapes import claude_code_bodies, record_session
from tests.support.upstream import ScriptedUpstream

GEMINI_KEY = "AIzaSy-viewer-test-key-0123456789"
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent"


def _data(page: str) -> dict:
    return json.loads(page.split('<script type="application/json" id="raw-data">')[1].split("</script>")[0])


def _rebuild(data: dict, node):
    """The page script's `rebuild`, in Python."""
    if isinstance(node, int):
        return data["values"][node]
    if "a" in node:
        return [data["values"][i] for i in node["a"]]
    return {k: _rebuild(data, v) for k, v in node["o"]}


def _record(path: Path, body: dict, *, target: str, headers: list[tuple[bytes, bytes]], secrets=()) -> Path:
    rec = Recorder(str(path), {"agent": "gemini", "run_id": "00aa11bb"}, list(secrets))
    raw = json.dumps(body).encode()
    xid = rec.exchange("POST", "/[REDACTED]/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
                       [(b"content-type", b"application/json")], raw)
    rec.upstream_request(xid, "POST", target, headers, raw)
    rec.upstream_response(xid, 200, [(b"content-type", b"text/event-stream")])
    rec.chunk(xid, b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"ok"}]}}]}\r\n\r\n')
    rec.end(xid)
    rec.close({"exit_code": 0})
    return path


def test_the_curl_runs_in_a_shell_with_the_key_from_the_environment(tmp_path) -> None:
    """Quoting that survives a shell: a key in the URL and in a header becomes `$GEMINI_API_KEY`,
    a header with quotes and `$` stays literal, and the body arrives as recorded."""
    assert shutil.which("curl") and shutil.which("bash"), "curl and bash are needed"
    body = {"contents": [{"role": "user", "parts": [{"text": "it's $HOME and `date` and \\ and 'quotes'"}]}]}
    path = _record(tmp_path / "run.cbor", body, target=f"{GEMINI_URL}?alt=sse&key={GEMINI_KEY}", secrets=[GEMINI_KEY],
                   headers=[(b"content-type", b"application/json"), (b"x-goog-api-key", GEMINI_KEY.encode()),
                            (b"x-odd", b"it's \"$HOME\" `x`"), (b"content-length", b"999"), (b"host", b"example.com"),
                            (b"accept-encoding", b"gzip")])
    (ex,) = read_bundle(path).exchanges
    curl = curl_command(ex.upstream_request)
    assert GEMINI_KEY not in curl and "[REDACTED]" not in curl and curl.count('"$GEMINI_API_KEY"') == 2
    assert "content-length" not in curl and "host:" not in curl and "accept-encoding" not in curl

    with ScriptedUpstream('[[turns]]\ntext = "again"\n', default_protocol="gemini") as up:
        local = curl.replace("https://generativelanguage.googleapis.com", up.url)
        out = subprocess.run(["bash", "-c", local], env={**os.environ, "GEMINI_API_KEY": "key-from-env"},
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        (got,) = up.requests
    assert got.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=key-from-env"
    assert got.headers["x-goog-api-key"] == "key-from-env" and got.headers["x-odd"] == "it's \"$HOME\" `x`"
    assert got.json == body and "again" in out.stdout


def test_no_curl_for_an_answer_that_went_nowhere(tmp_path) -> None:
    path = _record(tmp_path / "run.cbor", {"contents": []}, target="scripted:offline", headers=[])
    (ex,) = read_bundle(path).exchanges
    assert curl_command(ex.upstream_request) is None
    assert 'class="curl"' not in to_html(read_bundle(path))


def test_the_data_block_holds_a_long_session_once(tmp_path) -> None:
    """100 turns of a Claude Code-shaped session (50 KB of tools and system prompt resent each
    turn): every body comes back whole from the page's data, which stores what was resent once."""
    bodies = list(claude_code_bodies(100))
    path = tmp_path / "run.cbor"
    record_session(path, bodies)
    bundle = read_bundle(path)
    page = to_html(bundle)
    data = _data(page)
    for ex in bundle.exchanges:
        request_leg, upstream_leg = data["ex"][str(ex.id)][:2]
        assert _rebuild(data, request_leg["json"]) == ex.request.body.json
        assert _rebuild(data, upstream_leg["json"]) == ex.upstream_request.body.json
    sent = sum(map(len, bodies))
    size = len(page.encode())
    assert size < 3 * path.stat().st_size and size < sent / 8, (size, path.stat().st_size, sent)


def test_what_a_turn_added_and_the_request_it_follows(tmp_path) -> None:
    """The previous turn is the newest earlier request sharing the longest prefix; a message sent
    again in another form (a text block list, then the plain string) is not new."""
    ask = {"role": "user", "content": [{"type": "text", "text": "fix it"}]}
    ask_again = {"role": "user", "content": "fix it"}
    call = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a.py"}]}
    side = [{"role": "user", "content": "write a title"}]
    earlier = [[ask], side, [ask]]
    assert previous_turn([ask_again, call, result], earlier, "anthropic_messages") == (2, 1)  # the newest of the two
    assert previous_turn([ask_again, call, result], earlier) == (None, 0)  # without the protocol: forms differ
    assert previous_turn([{"role": "user", "content": "other"}], earlier, "anthropic_messages") == (None, 0)
    assert describe("anthropic_messages", ask) == describe("anthropic_messages", ask_again)

    rec_path = tmp_path / "run.cbor"
    rec = Recorder(str(rec_path), {"agent": "claude", "run_id": "0a0b0c0d"}, [])
    for conv in ([ask], side, [ask_again, call, result]):
        xid = rec.exchange("POST", "/v1/messages", [], json.dumps({"model": "m", "system": "S" * 900, "messages": conv}).encode())
        rec.end(xid)
    rec.close({"exit_code": 0})
    doc = to_json(read_bundle(rec_path))
    third = doc["exchanges"][2]
    assert third["previous_request"] == 1 and [m["role"] for m in third["messages_added"]] == ["assistant", "user"]
    assert doc["exchanges"][1]["previous_request"] is None
    page = to_html(read_bundle(rec_path))
    x3 = page.split('id="x3"')[1]
    assert 'added since <a href="#x1">#1</a>: 2 new messages, 1 earlier unchanged' in x3
    assert 'system prompt unchanged since <a href="#x1">#1</a> (900 chars)' in x3


@pytest.mark.parametrize(("protocol", "body", "system", "tools"), [
    ("anthropic_messages", {"system": [{"type": "text", "text": "be terse"}, {"type": "text", "text": "and kind"}],
                            "tools": [{"name": "Bash", "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"}]},
     "be terse\nand kind", ["Bash", "web_search"]),
    ("openai_chat", {"messages": [{"role": "system", "content": "x"}], "tools": [{"type": "function", "function": {"name": "shell"}}]},
     "", ["shell"]),
    ("openai_responses", {"instructions": "be terse", "tools": [{"type": "function", "name": "shell"}, {"type": "web_search"}]},
     "be terse", ["shell", "web_search"]),
    ("gemini", {"systemInstruction": {"parts": [{"text": "be terse"}]},
                "tools": [{"functionDeclarations": [{"name": "run_shell_command"}, {"name": "read_file"}]}]},
     "be terse", ["run_shell_command", "read_file"]),
    ("gemini", {"request": {"systemInstruction": {"parts": [{"text": "code assist"}]},
                            "tools": [{"functionDeclarations": [{"name": "glob"}]}]}}, "code assist", ["glob"]),
    ("anthropic_messages", "not an object", "", []),
])
def test_system_prompt_and_tool_names(protocol, body, system, tools) -> None:
    assert system_prompt(protocol, body) == system
    assert tool_names(protocol, body) == tools


def test_reminders_are_cut_out_to_be_folded() -> None:
    text = "before\n<system-reminder>\nremember this\n</system-reminder>\n\nthe ask\n<system-reminder>two</system-reminder>"
    assert segments(text) == [
        {"text": "before", "reminder": False},
        {"text": "<system-reminder>\nremember this\n</system-reminder>", "reminder": True},
        {"text": "the ask", "reminder": False},
        {"text": "<system-reminder>two</system-reminder>", "reminder": True},
    ]
    assert segments("plain") == [{"text": "plain", "reminder": False}] and segments("") == []


def test_a_lone_surrogate_does_not_stop_the_page(tmp_path) -> None:
    """JSON may escape half a surrogate pair ("\\ud800"); the page shows U+FFFD and is valid UTF-8."""
    body = b'{"contents":[{"role":"user","parts":[{"text":"half \\ud800 pair"}]}]}'
    path = tmp_path / "run.cbor"
    rec = Recorder(str(path), {"agent": "gemini", "run_id": "0e0e0e0e"}, [])
    rec.end(rec.exchange("POST", "/v1beta/models/g:generateContent", [], body))
    rec.close({"exit_code": 0})
    page = to_html(read_bundle(path))
    assert "half \ufffd pair" in page and page.encode("utf-8")
