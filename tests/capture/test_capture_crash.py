"""Cut-short, killed, foreign, corrupt and newer-version bundles."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cbor2
import pytest

from agentwrap.capture import reader as reader_mod
from agentwrap.capture.reader import read_bundle, read_header_footer
from agentwrap.capture.recorder import Recorder
from agentwrap.capture.writer import FORMAT_VERSION, MAGIC
from agentwrap.errors import BundleFormatError, CaptureError
from tests.capture.test_capture_shapes import SECRET, anthropic_answer, synthetic_bodies

REPO = Path(__file__).resolve().parents[2]
V1_FIXTURE = REPO / "tests" / "fixtures" / "bundles" / "v1.cbor"  # written by agentwrap at 1646ed5


def _small_bundle(path: Path) -> None:
    with Recorder(str(path), {"agent": "claude", "run_id": "abc"}, [SECRET]) as rec:
        for i, body in enumerate(synthetic_bodies(3, msg_chars=300)):
            xid = rec.exchange("POST", f"/{SECRET}/v1/messages", [(b"x-i", str(i).encode())], body)
            rec.route(xid, {"backend": "b"})
            rec.upstream_request(xid, "POST", "https://u/v1/messages", [], body)
            rec.upstream_response(xid, 200, [(b"content-type", b"text/event-stream")])
            for c in anthropic_answer("hello there", delta_chars=5):
                rec.chunk(xid, c)
            if i == 1:
                rec.error(xid, "upstream_stream", "reset")
            rec.end(xid)


def _boundaries(data: bytes) -> list[int]:
    fp = io.BytesIO(data)
    fp.seek(len(MAGIC))
    dec = cbor2.CBORDecoder(fp)
    ends = []
    while fp.tell() < len(data):
        dec.decode()
        ends.append(fp.tell())
    return ends


def test_truncated_at_every_byte_reads_as_incomplete(tmp_path: Path) -> None:
    full_path = tmp_path / "full.cbor"
    _small_bundle(full_path)
    data = full_path.read_bytes()
    full = read_bundle(full_path)
    ends = _boundaries(data)
    header_end, footer_end = ends[0], ends[-2]  # the last item is the footer locator
    cut_path = tmp_path / "cut.cbor"
    for cut in range(len(data) + 1):
        cut_path.write_bytes(data[:cut])
        if cut < header_end:
            with pytest.raises(BundleFormatError, match="cut.cbor"):
                read_bundle(cut_path)
            continue
        got = read_bundle(cut_path)
        assert got.complete == (cut >= footer_end), cut
        assert got.truncated == (cut not in ends), cut
        assert got.header == full.header
        for ex in got.exchanges:
            ref = full.exchanges[ex.id - 1]
            if ex.request is not None:
                assert ex.request.body.bytes == ref.request.body.bytes
            assert ref.response_body.startswith(ex.response_body)
            assert ex.complete <= ref.complete
        header, footer = read_header_footer(cut_path)
        assert header == full.header and (footer is not None) == (cut == len(data))


def test_zeros_after_a_crash_read_as_a_cut(tmp_path: Path) -> None:
    path = tmp_path / "z.cbor"
    _small_bundle(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\0" * 4096)
    got = read_bundle(path)
    assert not got.complete and got.truncated and got.exchanges


def test_a_corrupt_item_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.cbor"
    _small_bundle(path)
    data = bytearray(path.read_bytes())
    at = _boundaries(bytes(data))[3]
    data[at] = 0xFF  # a "break" byte where an item must start
    path.write_bytes(bytes(data))
    with pytest.raises(BundleFormatError, match=rf"c\.cbor: corrupt item at byte {at}"):
        read_bundle(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b'{"format": "agentwrap-bundle"}', "not an agentwrap bundle"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "not an agentwrap bundle"),
        (cbor2.dumps({"t": "header", "format": "agentwrap-bundle", "version": 1}), "not an agentwrap bundle"),
        (MAGIC + cbor2.dumps({"t": "header", "format": "other-format", "version": 1}), "not an agentwrap bundle"),
        (MAGIC + cbor2.dumps([1, 2, 3]), "not an agentwrap bundle"),
        (MAGIC + b"\xff\xff", "not an agentwrap bundle"),
        (MAGIC[:2], "cut short inside its header"),
        (MAGIC + cbor2.dumps({"t": "header", "format": "agentwrap-bundle", "version": "1"}), "invalid version"),
    ],
)
def test_foreign_files_are_refused_in_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "foreign.cbor"
    path.write_bytes(content)
    with pytest.raises(BundleFormatError, match=message) as info:
        read_bundle(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="Cannot read bundle"):
        read_bundle(tmp_path / "nope.cbor")


def _header_v(version: int) -> bytes:
    return MAGIC + cbor2.dumps({"t": "header", "format": "agentwrap-bundle", "version": version, "agent": "claude"})


def test_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.cbor"
    newer = FORMAT_VERSION + 1
    path.write_bytes(_header_v(newer))
    for read in (read_bundle, read_header_footer):
        with pytest.raises(BundleFormatError, match=f"version {newer} is newer .* upgrade agentwrap"):
            read(path)


def test_older_versions_are_upgraded_step_by_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the current version is 3: a version-1 file goes through 1->2 and 2->3."""
    path = V1_FIXTURE
    steps: list[str] = []

    def one_to_two(items: list[dict]) -> list[dict]:
        steps.append("1->2")
        return [dict(i, version=2) if i.get("t") == "header" else i for i in items]

    def two_to_three(items: list[dict]) -> list[dict]:
        steps.append("2->3")
        return [dict(i, agent=i["agent"].upper()) if i.get("t") == "header" else i for i in items]

    monkeypatch.setattr(reader_mod, "FORMAT_VERSION", 3)
    monkeypatch.setattr(reader_mod, "_UPGRADES", {1: one_to_two, 2: two_to_three})
    bundle = read_bundle(path)
    assert steps == ["1->2", "2->3"] and bundle.version == 1 and bundle.header["agent"] == "CLAUDE"
    assert bundle.complete and len(bundle.exchanges) == 6
    monkeypatch.setattr(reader_mod, "_UPGRADES", {1: one_to_two})
    with pytest.raises(BundleFormatError, match="version 2 cannot be upgraded"):
        read_bundle(path)


_LOOP = r"""
import json, sys, time
from agentwrap.capture.recorder import Recorder
rec = Recorder(sys.argv[1], {"agent": "claude"}, ["secret-value-123"])
i = 0
while True:
    i += 1
    msgs = [{"role": "user", "content": f"turn {j} " + "x" * 300} for j in range(1, i + 1)]
    body = json.dumps({"model": "m", "messages": msgs}, separators=(",", ":")).encode()
    x = rec.exchange("POST", "/v1/messages", [(b"x-i", str(i).encode())], body)
    rec.upstream_response(x, 200, [(b"content-type", b"text/event-stream")])
    for k in range(5):
        rec.chunk(x, f"data: {i}.{k}\n\n".encode())
    rec.end(x)
    print(i, time.monotonic_ns(), flush=True)  # exchange i has ended
    time.sleep(0.004)
"""
KILL_LOSS_BOUND_NS = 100_000_000  # docs/reliability.md: what a kill -9 may lose


def test_kill_9_leaves_a_readable_incomplete_bundle(tmp_path: Path) -> None:
    """A killed recorder leaves a readable bundle holding every exchange that ended more than
    100 ms before the kill, each whole, and nothing half-written that reads wrong."""
    path = tmp_path / "killed.cbor"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", _LOOP, str(path)], stdout=subprocess.PIPE, env=env)
    ended: dict[int, int] = {}
    try:
        while len(ended) < 80:
            i, at = proc.stdout.readline().split()
            ended[int(i)] = int(at)
        killed_at = time.monotonic_ns()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stdout.close()
    bundle = read_bundle(path)
    assert not bundle.complete and bundle.footer is None
    due = [i for i, at in ended.items() if at <= killed_at - KILL_LOSS_BOUND_NS]
    assert len(due) >= 20  # the run lasted long enough for the bound to mean something
    assert len(bundle.exchanges) >= len(due), (len(bundle.exchanges), len(due))
    assert all(ex.complete for ex in bundle.exchanges[: len(due)])
    for n, ex in enumerate(bundle.exchanges, start=1):
        assert ex.id == n and dict(ex.request.headers)["x-i"] == str(n)
        assert [m["content"].split()[1] for m in ex.request.body.json["messages"]] == [str(j) for j in range(1, n + 1)]
        expected = [f"data: {n}.{k}\n\n".encode() for k in range(5)]
        got = [c.data for c in ex.chunks]
        assert got == expected if ex.complete else expected[: len(got)] == got
    assert all(ex.complete for ex in bundle.exchanges[:-1])
    assert read_header_footer(path)[1] is None
