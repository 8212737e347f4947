"""The Recorder as the proxy and the session use it: files, threads, failures, totals."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agentwrap.capture.reader import read_bundle, read_header_footer
from agentwrap.capture.recorder import IDLE_WAIT_S, Recorder
from agentwrap.capture.writer import FORMAT_VERSION
from agentwrap.errors import CaptureError
from tests.capture.test_capture_shapes import SSE_HEADERS, anthropic_answer

REPO = Path(__file__).resolve().parents[2]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_private_file_in_private_new_directories(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "state" / "agentwrap" / "runs" / "r.cbor"
        Recorder(str(path), {"agent": "claude"}, []).close({})
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o600
    for d in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert _mode(d) == 0o700


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_existing_directory_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "captures"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    Recorder(str(shared / "r.cbor"), {}, []).close({})
    assert _mode(shared) == 0o755 and _mode(shared / "r.cbor") == 0o600


def test_header_is_on_disk_before_init_returns(tmp_path: Path) -> None:
    path = tmp_path / "r.cbor"
    rec = Recorder(str(path), {"agent": "gemini", "run_id": "x1"}, [])
    try:
        header, footer = read_header_footer(path)
        assert header["agent"] == "gemini" and header["version"] == FORMAT_VERSION and footer is None
        assert not read_bundle(path).complete
    finally:
        rec.close({})
    assert read_bundle(path).complete


def test_never_overwrites_and_reports_uncreatable_paths(tmp_path: Path) -> None:
    path = tmp_path / "r.cbor"
    path.write_bytes(b"precious")
    with pytest.raises(CaptureError, match="Cannot create capture bundle .*r.cbor"):
        Recorder(str(path), {}, [])
    assert path.read_bytes() == b"precious"
    with pytest.raises(CaptureError, match="--capture-dir"):
        Recorder(str(path / "below-a-file.cbor"), {}, [])


def test_close_is_idempotent_and_later_calls_do_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.cbor"
    rec = Recorder(str(path), {}, [])
    x = rec.exchange("GET", "/", [], b"")
    rec.end(x)
    rec.close({"exit_code": 0})
    size = path.stat().st_size
    rec.close({"exit_code": 1})
    y = rec.exchange("GET", "/", [], b"")
    rec.chunk(y, b"late")
    rec.end(y)
    assert y == x + 1 and rec.failed is None
    assert path.stat().st_size == size
    assert not any(t.name == "agentwrap-capture" for t in threading.enumerate())
    assert read_bundle(path).footer["exit_code"] == 0


def test_totals_in_the_footer(tmp_path: Path) -> None:
    path = tmp_path / "r.cbor"
    with Recorder(str(path), {}, []) as rec:
        for usage in ((1000, 50, 800, 0), (2000, 70, 0, 100)):
            x = rec.exchange("POST", "/secret/v1/messages", [], b"{}")
            rec.upstream_response(x, 200, SSE_HEADERS)
            for c in anthropic_answer("hi", usage=usage):
                rec.chunk(x, c)
            rec.end(x)
        x = rec.exchange("POST", "/secret/v1/messages", [], b"{}")
        rec.agent_response(x, 401, [], b'{"type":"error"}')
        rec.end(x)
        x = rec.exchange("POST", "/secret/v1/messages", [], b"{}")
        rec.error(x, "timeout", "upstream timed out")
        rec.end(x)
        rec.error(None, "config", "a run-level problem")
        rec.exchange("POST", "/secret/v1/messages", [], b"{}")  # never ended
    totals = read_bundle(path).footer["totals"]
    assert totals["requests"] == 5 and totals["errors"] == 3 and totals["unfinished"] == 1
    assert totals["tokens"] == {"input_tokens": 3000, "output_tokens": 120, "cache_read_tokens": 800, "cache_write_tokens": 100}
    assert totals["request_bytes"] == 10


def test_mutable_buffers_are_snapshotted(tmp_path: Path) -> None:
    path = tmp_path / "r.cbor"
    body = bytearray(b"original")
    with Recorder(str(path), {}, []) as rec:
        x = rec.exchange("POST", "/", [], body)
        rec.chunk(x, memoryview(body))
        body[:] = b"changed!"
        rec.end(x)
    ex = read_bundle(path).exchanges[0]
    assert ex.request.body.bytes == b"original" and ex.response_body == b"original"


def test_deleted_file_is_reported_once_and_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "r.cbor"
    errors: list[str] = []
    rec = Recorder(str(path), {}, [], on_error=errors.append)
    x = rec.exchange("POST", "/", [], b"{}")
    rec.end(x)
    path.unlink()
    path.parent.rmdir()
    for _ in range(3):
        x = rec.exchange("POST", "/", [], b"{}")
        rec.chunk(x, b"data")
        rec.end(x)
    rec.close({"exit_code": 0})
    assert len(errors) == 1 and "was deleted" in errors[0] and str(path) in errors[0]
    assert rec.failed == errors[0]


def test_a_raising_error_callback_is_contained(tmp_path: Path) -> None:
    path = tmp_path / "r.cbor"

    def boom(_: str) -> None:
        raise RuntimeError("the callback broke")

    rec = Recorder(str(path), {}, [], on_error=boom)
    path.unlink()
    rec.end(rec.exchange("POST", "/", [], b""))
    rec.close({})
    assert rec.failed is not None


_FULL_DISK = r"""
import resource, signal, sys
from agentwrap.capture.recorder import Recorder
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG
errors = []
rec = Recorder(sys.argv[1], {"agent": "claude"}, [], on_error=errors.append)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
for i in range(200):
    x = rec.exchange("POST", "/v1/messages", [], b"x" * 1000)
    rec.chunk(x, b"y" * 1000)
    rec.end(x)
rec.close({"exit_code": 0})
print(len(errors), rec.failed)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE semantics")
def test_disk_full_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "r.cbor"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", _FULL_DISK, str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    count, _, message = out.stdout.strip().partition(" ")
    assert count == "1" and "File too large" in message and str(path) in message
    bundle = read_bundle(path)  # what was written before the failure is readable
    assert not bundle.complete and bundle.exchanges


def test_interleaved_upstream_and_agent_pieces_read_back_in_place(tmp_path: Path) -> None:
    """A translated stream alternates upstream chunks and agent chunks; the writer batches a
    run of them, and every piece reads back with its time and its place among the others."""
    path = tmp_path / "r.cbor"
    secret = "sk-interleaved-secret-0123456789"
    with Recorder(str(path), {}, [secret]) as rec:
        x = rec.exchange("POST", "/s/v1/messages", [], b"{}")
        rec.upstream_request(x, "POST", "http://up/v1/chat/completions", [], b"{}")
        rec.upstream_response(x, 200, [("content-type", "text/event-stream")])
        rec.agent_response(x, 200, [("content-type", "text/event-stream")])
        ups, agents = [], []
        for i in range(300):  # queued faster than the writer's 10 ms turns: batched
            up = b"data: up %d\n\n" % i
            rec.chunk(x, up)
            ups.append(up)
            if i % 3 != 2:  # not every upstream piece makes an agent piece
                ag = b"event: e\ndata: agent %d %s\n\n" % (i, secret.encode() if i == 150 else b"")
                rec.agent_chunk(x, ag)
                agents.append((i + 1, ag))
        rec.end(x)
    ex = read_bundle(path).exchanges[0]
    assert [c.data for c in ex.chunks] == ups
    assert [c.after for c in ex.agent_chunks] == [after for after, _ in agents]
    want = [ag.replace(secret.encode(), b"") for _, ag in agents]
    got = [c.data for c in ex.agent_chunks]
    assert len(got) == len(want) and b"".join(got).replace(b"[REDACTED]", b"") == b"".join(want)
    assert secret.encode() not in path.read_bytes()
    assert ex.agent_stream() == got
    assert all(a.at_ns <= b.at_ns for a, b in zip(ex.agent_chunks, ex.agent_chunks[1:]))
    with open(path, "rb") as f:
        import cbor2

        kinds = []
        f.seek(0)
        try:
            while True:
                kinds.append(cbor2.load(f))
        except Exception:
            pass
    assert sum(1 for k in kinds if isinstance(k, dict) and k.get("t") == "agent_chunk") < len(agents) / 4, "batched"


# -- the writer sleeps while no exchange is open, and the next request wakes it --------------------

KILL_LOSS_BOUND_S = 0.1  # docs/reliability.md: what a kill -9 may lose

def _until(predicate, timeout_s: float) -> float | None:
    """Seconds until `predicate()` held (polled every 2 ms), or None after `timeout_s`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.002)
    return None


def _on_disk(path: Path, xid: int) -> bool:
    return any(ex.id == xid and ex.complete for ex in read_bundle(path).exchanges)


def test_a_sleeping_writer_is_woken_by_the_next_request(tmp_path: Path) -> None:
    path = tmp_path / "r.cbor"
    rec = Recorder(str(path), {}, [])
    try:
        rec.end(rec.exchange("POST", "/v1/messages", [], b"{}"))
        assert _until(lambda: rec.writer_idle, 2.0) is not None  # nothing open: it sleeps
        assert IDLE_WAIT_S >= 0.5
        x = rec.exchange("POST", "/v1/messages", [], b"{}")
        rec.chunk(x, b"data: 1\n\n")
        rec.end(x)
        took = _until(lambda: _on_disk(path, x), IDLE_WAIT_S)
        assert took is not None and took < 0.2, took
    finally:
        rec.close({})


def _captured_proxy(start_proxy, up, tmp_path: Path):
    """Claude's proxy to `up`, recording into tmp_path/run.cbor through the capture addon, and an
    SDK client for it: (recorder, bundle path, client)."""
    import anthropic

    from agentwrap.capture.addon import Capture
    from tests.conftest import http_profile

    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), {"UP_KEY": "k" * 12})
    path = tmp_path / "run.cbor"
    rec = Recorder(str(path), {"agent": "claude"}, ["k" * 12])
    proxy.dispatcher.addons.add(Capture(rec))
    return rec, path, anthropic.Anthropic(base_url=proxy.base_url, api_key=proxy.secret, max_retries=0)


def test_the_capture_addon_drains_from_the_proxy_loop(start_proxy, upstream_factory, tmp_path) -> None:
    """Through the real proxy, with pauses between requests: each exchange is on disk within
    the write interval of its answer (the loop drains it; the writer thread is not needed)."""
    from agentwrap.capture.recorder import WRITE_INTERVAL_S
    from tests.conftest import TEXT_SCRIPT

    rec, path, client = _captured_proxy(start_proxy, upstream_factory(TEXT_SCRIPT), tmp_path)
    try:
        for xid in (1, 2, 3):
            time.sleep(0.3)  # idle between requests
            reply = client.messages.create(model="m", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
            assert reply.content[0].text == "Hello from the scripted upstream."
            took = _until(lambda: _on_disk(path, xid), IDLE_WAIT_S)
            assert took is not None and took < WRITE_INTERVAL_S + 0.15, (xid, took)
    finally:
        client.close()
        rec.close({})
    bundle = read_bundle(path)
    assert bundle.complete and [ex.id for ex in bundle.exchanges] == [1, 2, 3]
    assert b"k" * 12 not in path.read_bytes()


def test_a_stream_piece_waits_at_most_the_stream_bound_when_nothing_follows(start_proxy, upstream_factory, tmp_path) -> None:
    """The upstream sends one piece and holds the next: with no loop activity to drain in,
    the piece still reaches the disk within the loop drainer's bound for stream pieces."""
    from tests.conftest import TEXT_SCRIPT

    up = upstream_factory(TEXT_SCRIPT)
    up.gate = threading.Event()
    rec, path, client = _captured_proxy(start_proxy, up, tmp_path)
    try:
        with client.messages.stream(model="m", max_tokens=20, messages=[{"role": "user", "content": "hi"}]) as stream:
            first = next(iter(stream))
            assert first.type == "message_start"

            def piece_on_disk() -> bool:
                exchanges = read_bundle(path).exchanges
                return bool(exchanges) and b"message_start" in exchanges[0].response_body

            took = _until(piece_on_disk, 1.0)
            up.gate.set()
            assert took is not None and took < KILL_LOSS_BOUND_S, took
            assert stream.get_final_text() == "Hello from the scripted upstream."
    finally:
        up.gate.set()
        client.close()
        rec.close({})
    assert read_bundle(path).exchanges[0].complete
