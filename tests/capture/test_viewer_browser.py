"""The HTML viewer in a real headless Chromium.

A real Claude Code run through agentwrap: the route's backend answers 429 and the
fallback answers (both "api.anthropic.com", reached over TLS through a CONNECT proxy
to a loopback upstream, so the run has a price), the first answer is a tool call with
broken arguments that tool repair fixes and Claude Code runs, the second a text. Then
`agentwrap show --html FILE`, and the page loaded in Chromium with every request but
the file itself refused: no console error, nothing fetched, search filters the
requests and their messages, expand and collapse work, the raw legs and the cURL hold
what was sent (the cURL with no secret), and the second request shows only the
messages it added. The test saves its screenshot as docs/viewer.png (the README's).

Chromium is Debian's (`apt-get install chromium`, as .ci/run does), driven by
Playwright for Python; a missing browser fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from playwright.sync_api import Browser, Page, expect, sync_playwright

from agentwrap.capture.reader import read_bundle
from agentwrap.protocols import neutral as ev
from tests.conftest import AGENTS_BIN, PROVIDER_VARS, REPO
from tests.support.guard_upstream import GuardUpstream, call_events, python_args, shell_call, text_events
from tests.agents.test_agents_e2e import agent_env, run_agentwrap
from tests.support.upstream import ConnectProxy

pytestmark = pytest.mark.agents

CHROMIUM = os.environ.get("AGENTWRAP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# As root on a machine with no network: no sandbox (root), and none of Chromium's own
# background traffic (which the closed network refuses).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--no-first-run", "--disable-domain-reliability"]
SECRET = "sk-ant-viewer-secret-0123456789abcdef"
PROMPT = "write the viewer note"
MARKER = "WROTE-THE-NOTE"
COMMAND = "echo viewer-check > note.txt"
SCREENSHOT = REPO / "docs" / "viewer.png"


def _with_usage(events: list, usage: ev.Usage) -> list:
    return [usage if e.kind == "usage" else e for e in events]


def _scenario(req):
    if req.turn == 0:
        name, kind, args = shell_call(req, COMMAND)
        events = call_events(name, kind, python_args(args), lead="I will write the note.")  # repaired by agentwrap
        return _with_usage(events, ev.Usage(12000, 80, 9000, 2000))
    return _with_usage(text_events(f"Wrote note.txt; the marker is {MARKER}."), ev.Usage(12400, 25, 11000, 300))


def _env(root: Path) -> dict[str, str]:
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".local" / "state"),
               XDG_DATA_HOME=str(home / ".local" / "share"), XDG_CACHE_HOME=str(home / ".cache"),
               PATH=f"{AGENTS_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return {**agent_env("claude", home), **env}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The recorded run: its page, its bundle, and what the upstream received."""
    assert shutil.which("claude", path=str(AGENTS_BIN)), "claude missing: run scripts/install-agents.sh"
    root = tmp_path_factory.mktemp("viewer")
    env = _env(root)
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("api.anthropic.com").configure_cert(server_ctx)
    ca_file = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    profile = root / "viewer.toml"
    profile.write_text("""
[backends.main]
protocol = "anthropic_messages"
base_url = "https://api.anthropic.com"
api_key_env = "UP_KEY"

[backends.spare]
protocol = "anthropic_messages"
base_url = "https://api.anthropic.com"
api_key_env = "UP_KEY"

[[routes]]
backend = "main"
model = "claude-sonnet-4-5"
fallbacks = ["spare"]
""")
    work = root / "work"
    work.mkdir()
    with GuardUpstream(_scenario, ssl_context=server_ctx) as up, ConnectProxy(up.port) as proxy:
        up.fail_next(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        env.update(UP_KEY=SECRET, HTTPS_PROXY=proxy.url, NO_PROXY="127.0.0.1,localhost", SSL_CERT_FILE=str(ca_file))
        proc = run_agentwrap(["claude", "--profile", str(profile), "--", "-p", PROMPT, "--allowedTools", "Bash"],
                             cwd=work, env=env, timeout=180)
        received = up.model_bodies()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "note.txt").read_text().strip() == "viewer-check", proc.stderr[-3000:]
    assert MARKER in proc.stdout and "1 failover" in proc.stderr and "tool-call repair 1" in proc.stderr
    page = root / "run.html"
    shown = subprocess.run([sys.executable, "-m", "agentwrap", "show", "latest", "--html", str(page)],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    (bundle_path,) = Path(env["XDG_STATE_HOME"], "agentwrap", "runs").glob("*.cbor")
    return {"page": page, "bundle": read_bundle(bundle_path), "received": received}


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).is_file(), f"Chromium not found at {CHROMIUM}: apt-get install chromium (see .ci/run)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Loaded:
    def __init__(self, page: Page, requests: list[str], problems: list[str]) -> None:
        self.page, self.requests, self.problems = page, requests, problems


@pytest.fixture
def loaded(run, browser: Browser):
    """The page in a fresh context where every request but the file's own is refused."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, permissions=["clipboard-read", "clipboard-write"])
    url = run["page"].as_uri()
    requests: list[str] = []
    problems: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url)
    page.wait_for_load_state("load")
    yield Loaded(page, requests, problems)
    context.close()


def _rows(page: Page) -> list[str]:
    return [d.get_attribute("id") for d in page.locator("details.ex").all() if d.is_visible()]


def test_the_page_loads_offline_with_no_error_and_fetches_nothing(run, loaded) -> None:
    page = loaded.page
    expect(page.locator("details.ex")).to_have_count(2)
    assert page.locator("#count").inner_text() == "2 requests"  # the script ran
    assert loaded.problems == []
    assert loaded.requests == [run["page"].as_uri()]
    html = run["page"].read_text()
    assert SECRET not in html and "[REDACTED]" in html
    assert "1 failover" in page.locator("header .stats").inner_text()
    assert "cost $" in page.locator("header .stats").inner_text()


def test_search_filters_requests_and_their_messages(loaded) -> None:
    page = loaded.page
    q = page.locator("#q")
    q.fill(MARKER.lower())  # only in the second answer
    assert _rows(page) == ["x2"] and page.locator("#count").inner_text() == "1 of 2 requests"
    q.fill("viewer-check")  # the tool call: the first answer, and the second request's assistant message
    assert _rows(page) == ["x1", "x2"]
    shown = [m.locator(".role").inner_text().lower() for m in page.locator("#x2 section.added .msg").all() if m.is_visible()]
    assert shown == ["assistant"]  # the tool result's message holds no match: filtered out
    q.fill("no such words anywhere")
    assert _rows(page) == [] and page.locator("#none").is_visible()
    q.fill("")
    assert _rows(page) == ["x1", "x2"] and page.locator("#count").inner_text() == "2 requests"
    assert not page.locator("#x1 .inner").is_visible()  # as it was before the search
    assert loaded.problems == []


def test_expand_collapse_and_the_raw_legs(run, loaded) -> None:
    page = loaded.page
    inner = page.locator("#x1 .inner")
    assert not inner.is_visible()
    page.locator("#x1 > summary").click()
    assert inner.is_visible()
    table = page.locator("#x1 table.attempts").inner_text()
    assert "HTTP 429" in table and "trying fallback spare" in table and "spare answered" in table
    assert not page.locator("#x1 details.system pre").first.is_visible()  # the long system prompt: folded
    assert page.locator("#x1 details.reminder").count() >= 1 and not page.locator("#x1 details.reminder pre").first.is_visible()
    guard = page.locator("#x1 .guard").inner_text()
    assert "tool_repair · repaired" in guard and "single_quotes" in guard

    leg = page.locator("#x1 details.leg.request")
    leg.locator("summary").click()
    expect(leg).to_have_attribute("data-filled", "1")  # the body is built on the (asynchronous) toggle event
    sent = json.loads(leg.locator("pre.body").inner_text())
    assert sent == run["bundle"].exchanges[0].request.body.json  # the agent's request, whole
    assert PROMPT in json.dumps(sent["messages"][0])

    page.locator("#collapse").click()
    assert not inner.is_visible() and not page.locator("#x2 .inner").is_visible()
    page.locator("#expand").click()
    assert inner.is_visible() and page.locator("#x2 .inner").is_visible()
    assert loaded.problems == []


def test_the_diff_shows_only_what_the_turn_added(loaded) -> None:
    page = loaded.page
    page.locator("#expand").click()
    first = page.locator("#x1 section.added")
    assert first.locator("h3").inner_text().lower() == "new conversation: 2 messages"
    second = page.locator("#x2 section.added")
    assert second.locator("h3").inner_text().lower() == "added since #1: 2 new messages, 2 earlier unchanged"
    roles = [r.lower() for r in second.locator(".msg .role").all_inner_texts()]
    assert roles == ["assistant", "user"]  # the tool call and its result; not the prompt again
    text = second.inner_text()
    assert "viewer-check" in text and "tool result call_guard_1" in text and PROMPT not in text
    assert "system prompt unchanged since #1" in page.locator("#x2 .readable").inner_text()


def test_the_curl_is_what_was_sent_without_the_key(run, loaded) -> None:
    page = loaded.page
    page.locator("#x2 > summary").click()
    page.locator("#x2 details.curl > summary").click()
    expect(page.locator("#x2 details.curl")).to_have_attribute("data-filled", "1")
    button = page.locator("#x2 details.curl button.copy")
    button.click()
    expect(button).to_have_text("Copied")
    curl = page.evaluate("navigator.clipboard.readText()")
    assert curl == page.locator("#x2 details.curl pre").inner_text()
    assert curl.startswith("curl -sS -N -X POST 'https://api.anthropic.com/v1/messages?beta=true' \\\n")
    assert "-H 'x-api-key: '\"$ANTHROPIC_API_KEY\"" in curl and SECRET not in curl and "[REDACTED]" not in curl
    head, body, end = curl.rsplit("\n", 3)[0], curl.rsplit("\n", 3)[1], curl.rsplit("\n", 3)[2]
    assert head.endswith("--data-binary @- <<'AGENTWRAP_BODY'") and end == "AGENTWRAP_BODY"
    assert json.loads(body) == run["received"][-1]  # what the upstream got for this request

    # The shell runs it: the key from the variable, the body from the here-document.
    with GuardUpstream(lambda req: text_events("again")) as again:
        local = curl.replace("https://api.anthropic.com", again.url)
        out = subprocess.run(["bash", "-c", local], env={**os.environ, "ANTHROPIC_API_KEY": "sk-from-env"},
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        (method, path, headers, body_got) = again.requests[-1]
    assert headers["x-api-key"] == "sk-from-env" and body_got == run["received"][-1] and path == "/v1/messages?beta=true"
    assert "again" in out.stdout


def test_screenshot_for_the_readme(loaded) -> None:
    page = loaded.page
    page.locator("#x2 > summary").click()
    page.locator("#q").fill("note")
    page.locator("#x1 > summary").click()  # closed: the first row shows its badges, the second its diff
    page.evaluate("document.activeElement.blur()")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 400_000
    assert loaded.problems == []
