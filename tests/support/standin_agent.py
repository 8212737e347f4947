"""A stand-in for an agent binary, for launcher tests.

Installed under the agent's name in a temporary bin dir. It records its argv
and environment to $STANDIN_OUT (JSON), optionally calls the proxy, then
behaves as $STANDIN_MODE says: exit N, die of a signal, or wait for signals.
"""

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

out = os.environ["STANDIN_OUT"]
record = {"argv": sys.argv[1:], "env": dict(os.environ), "pid": os.getpid(), "signals": []}


def save() -> None:
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, out)


def on_signal(signum, frame):
    record["signals"].append(signal.Signals(signum).name)
    save()
    if signum == signal.SIGINT:
        sys.exit(130)
    if signum == signal.SIGTERM:
        sys.exit(int(os.environ.get("STANDIN_TERM_EXIT", "0")))


for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, on_signal)

url = os.environ.get("STANDIN_REQUEST_URL_FROM")
if url:
    base = os.environ[url]
    body = json.dumps({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(base + "/v1/messages", data=body, headers={
        "content-type": "application/json", "authorization": "Bearer " + os.environ.get("ANTHROPIC_AUTH_TOKEN", ""),
    })
    with urllib.request.urlopen(req, timeout=10) as resp:
        record["response"] = json.loads(resp.read())

proto = os.environ.get("STANDIN_PROTOCOL")
if proto:
    # Call the proxy the way the real agent would, with the credentials it was given.
    # Without a key of agentwrap's (login pass-through) the agent sends its own login token.
    if proto == "anthropic":
        url = os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages"
        auth = {"authorization": "Bearer " + os.environ.get("ANTHROPIC_AUTH_TOKEN", "own-login-token")}
        body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    elif proto == "responses":
        flags = dict(a.split("=", 1) for a in sys.argv[1:] if a.startswith("model_providers.agentwrap."))
        base = json.loads(flags["model_providers.agentwrap.base_url"])
        key_var = flags.get("model_providers.agentwrap.env_key")
        key = os.environ[json.loads(key_var)] if key_var else "own-login-token"
        import tomllib

        extra = tomllib.loads("h = " + flags["model_providers.agentwrap.env_http_headers"])["h"]
        auth = {"authorization": "Bearer " + key, **{h: os.environ[v] for h, v in extra.items()}}
        url, body = base + "/responses", {"model": "m", "input": "hi"}
    elif "CODE_ASSIST_ENDPOINT" in os.environ:  # Gemini CLI with a Google login
        url = os.environ["CODE_ASSIST_ENDPOINT"] + "/v1internal:generateContent"
        auth = {"authorization": "Bearer own-login-token"}
        body = {"model": "g", "project": "p", "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}}
    else:
        url = os.environ["GOOGLE_GEMINI_BASE_URL"] + "/v1beta/models/g:generateContent"
        auth = {"x-goog-api-key": os.environ["GEMINI_API_KEY"]}
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **auth})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            record["status"], record["response"] = resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        record["status"], record["response"] = exc.code, exc.read().decode()

if os.environ.get("STANDIN_READ"):
    with open(os.path.expandvars(os.environ["STANDIN_READ"])) as f:
        record["read"] = f.read()

if os.environ.get("STANDIN_CREATE"):
    path = os.path.expandvars(os.environ["STANDIN_CREATE"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("created by the agent")

save()
mode = os.environ.get("STANDIN_MODE", "exit:0")
kind, _, arg = mode.partition(":")
if kind == "exit":
    sys.exit(int(arg))
if kind == "signal":
    if int(arg) not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(int(arg), signal.SIG_DFL)
    os.kill(os.getpid(), int(arg))
if kind == "tty":
    # An interactive agent: owns the terminal, reads the user, follows window resizes.
    record["isatty"] = [os.isatty(fd) for fd in (0, 1, 2)]
    record["size"] = list(os.get_terminal_size(0))

    def on_winch(signum, frame):
        record["winch"] = list(os.get_terminal_size(0))
        save()

    signal.signal(signal.SIGWINCH, on_winch)
    record["ready"] = True
    save()
    record["line"] = sys.stdin.readline().strip()
    save()
    sys.exit(0)
if kind == "wait":
    record["ready"] = True
    save()
    deadline = time.monotonic() + float(arg or 30)
    while time.monotonic() < deadline:
        time.sleep(0.05)
    sys.exit(3)
