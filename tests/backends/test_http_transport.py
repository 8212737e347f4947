"""HttpTransport against real loopback servers that speak raw bytes."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import struct
from collections.abc import Coroutine
from typing import Any

import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentwrap.backends.http import HttpTransport, Timeouts, UpstreamResponse
from agentwrap.errors import ConfigError, UpstreamError, UpstreamProtocol, UpstreamTimeout
from tests.support._http_servers import (
    CHUNKED_HEAD,
    Proxy,
    RawServer,
    SeenRequest,
    chunk,
    ok,
    read_request,
    wait_for_eof,
)

NO_ENV: dict[str, str] = {}
SHORT = Timeouts(connect_s=0.2, first_byte_s=0.2, read_idle_s=0.2)


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run one test body on a fresh loop, failing fast rather than hanging."""

    async def bounded() -> None:
        async with asyncio.timeout(15):
            await coro

    asyncio.run(bounded())


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) from one throwaway CA."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("upstream.test", "localhost", "127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def serve_forever(body: bytes = b"ok", seen: list[SeenRequest] | None = None):
    """A keep-alive handler answering every request with `body`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        while (request := await read_request(reader)) is not None:
            if seen is not None:
                seen.append(request)
            writer.write(ok(body))

    return handler


# --- requests and responses ------------------------------------------------


def test_get_sets_host_and_drops_framing_headers() -> None:
    seen: list[SeenRequest] = []

    async def main() -> None:
        async with RawServer(serve_forever(b"hello", seen)) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                response = await transport.request(
                    "GET", f"http://127.0.0.1:{server.port}/v1/models?x=1",
                    [(b"Host", b"evil.example"), (b"Content-Length", b"99"), (b"Connection", b"close"),
                     (b"Transfer-Encoding", b"chunked"), (b"x-api-key", b"k")])
                assert (response.status, response.reason) == (200, b"OK")
                assert (b"Content-Length", b"5") in response.headers
                assert await response.aread() == b"hello"
            finally:
                await transport.aclose()
        request = seen[0]
        assert request.line == b"GET /v1/models?x=1 HTTP/1.1"
        assert request.headers == [(b"host", f"127.0.0.1:{server.port}".encode()), (b"x-api-key", b"k")]

    run(main())


def test_post_sends_body_with_content_length() -> None:
    seen: list[SeenRequest] = []
    payload = b'{"model": "m", "stream": true}' * 5000  # > one read chunk

    async def main() -> None:
        async with RawServer(serve_forever(b"done", seen)) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                for body in (payload, b"{}", b""):
                    response = await transport.request(
                        "POST", f"http://127.0.0.1:{server.port}/v1/messages",
                        [(b"content-type", b"application/json")], body)
                    assert await response.aread() == b"done"
            finally:
                await transport.aclose()
        assert [r.body for r in seen] == [payload, b"{}", b""]
        assert [r.header(b"content-length") for r in seen] == [str(len(payload)).encode(), b"2", b"0"]
        assert server.connections == 1

    run(main())


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a%2Fb/./c;p?q=1&q=2&x=%20&y=a+b#fragment", b"/a%2Fb/./c;p?q=1&q=2&x=%20&y=a+b"),
        ("?alt=sse", b"/?alt=sse"),
        ("", b"/"),
        ("/caf\u00e9 x", b"/caf%C3%A9%20x"),
    ],
)
def test_path_and_query_are_sent_as_given(path: str, expected: bytes) -> None:
    seen: list[SeenRequest] = []

    async def main() -> None:
        async with RawServer(serve_forever(b"", seen)) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                response = await transport.request("GET", f"http://127.0.0.1:{server.port}{path}", [])
                await response.aclose()
            finally:
                await transport.aclose()
        assert seen[0].target == expected

    run(main())


def test_ipv6_literal_host() -> None:
    seen: list[SeenRequest] = []

    async def main() -> None:
        async with RawServer(serve_forever(b"v6", seen), host="::1") as server:
            transport = HttpTransport(env={"HTTP_PROXY": "http://127.0.0.1:9"})  # ::1 bypasses it
            try:
                response = await transport.request("GET", f"http://[::1]:{server.port}/x", [])
                assert await response.aread() == b"v6"
            finally:
                await transport.aclose()
        assert seen[0].header(b"host") == f"[::1]:{server.port}".encode()

    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6")
    run(main())


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "example.com/v1", "http:///v1", "http://example.com:99999/",
     "http://example.com:x/", "http://[::1/v1", "https://[::1]x/"],
)
def test_invalid_url_is_a_config_error(url: str) -> None:
    async def main() -> None:
        transport = HttpTransport(env=NO_ENV)
        try:
            with pytest.raises(ConfigError):
                await transport.request("GET", url, [])
        finally:
            await transport.aclose()

    run(main())


def test_chunked_body_streams_before_the_response_is_complete() -> None:
    first_seen = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"data: one\n\n"))
        await first_seen.wait()  # the client has the first event before we send more
        writer.write(chunk(b"data: two\n\n") + chunk(b""))
        await wait_for_eof(reader)

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                response = await transport.request("POST", f"http://127.0.0.1:{server.port}/s", [], b"{}")
                assert (b"Transfer-Encoding", b"chunked") in response.headers
                pieces = []
                async for piece in response.aiter_raw():
                    pieces.append(piece)
                    first_seen.set()
                assert pieces == [b"data: one\n\n", b"data: two\n\n"]
            finally:
                await transport.aclose()

    run(main())


def test_no_body_responses_go_back_to_the_pool_on_aclose() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        while (request := await read_request(reader)) is not None:
            if request.method == b"DELETE":
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:  # HEAD: the length of a body that is not sent
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                url = f"http://127.0.0.1:{server.port}/"
                for method in ("DELETE", "HEAD", "DELETE"):
                    response = await transport.request(method, url, [])
                    await response.aclose()
                    assert [piece async for piece in response.aiter_raw()] == []
            finally:
                await transport.aclose()
        assert server.connections == 1

    run(main())


# --- the pool ----------------------------------------------------------------


def test_keep_alive_reuses_one_connection() -> None:
    async def main() -> None:
        async with RawServer(serve_forever(b"x" * 100_000)) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                for _ in range(3):
                    response = await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
                    assert len(await response.aread()) == 100_000
            finally:
                await transport.aclose()
        assert server.connections == 1

    run(main())


def test_pooled_connection_closed_by_server_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        writer.write(ok(b"once"))
        await writer.drain()
        writer.close()  # idle timeout on the server side

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                for _ in range(2):
                    response = await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
                    assert await response.aread() == b"once"
                    await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
            finally:
                await transport.aclose()
        assert server.connections == 2

    run(main())


def _drop_second_request(seen: list[SeenRequest]):
    """Answer the first request; read the second in full and drop the connection without a
    byte of response (an upstream that crashed while generating). Later connections answer."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        seen.append(await read_request(reader))
        writer.write(ok(b"first" if index == 0 else b"retried"))
        if index == 0:
            seen.append(await read_request(reader))
            return
        await wait_for_eof(reader)

    return handler


def test_pooled_connection_dropped_after_an_idempotent_request_is_retried_once() -> None:
    seen: list[SeenRequest] = []

    async def main() -> None:
        async with RawServer(_drop_second_request(seen)) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                url = f"http://127.0.0.1:{server.port}/"
                assert await (await transport.request("GET", url, [])).aread() == b"first"
                assert await (await transport.request("GET", url, [])).aread() == b"retried"
            finally:
                await transport.aclose()
        assert server.connections == 2

    run(main())


def test_a_post_the_upstream_read_is_not_sent_again() -> None:
    """A reused connection dropped after the whole POST went out: the upstream may be acting on
    it, so the failure is raised (the failover plan decides), never a second copy sent."""
    seen: list[SeenRequest] = []

    async def main() -> None:
        async with RawServer(_drop_second_request(seen)) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                url = f"http://127.0.0.1:{server.port}/"
                assert await (await transport.request("POST", url, [], b"1")).aread() == b"first"
                with pytest.raises(UpstreamProtocol, match="closed the connection before responding"):
                    await transport.request("POST", url, [], b"2")
            finally:
                await transport.aclose()
        assert server.connections == 1
        assert [r.body for r in seen] == [b"1", b"2"]

    run(main())


def test_a_post_whose_write_failed_on_a_reused_connection_is_sent_again() -> None:
    """The upstream resets a reused connection while a large POST is still being written:
    it cannot have read the request, so it goes out once more on a fresh connection."""
    big = b"x" * (32 * 1024 * 1024)
    seen: list[SeenRequest] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        seen.append(await read_request(reader))
        writer.write(ok(b"first" if index == 0 else b"retried"))
        if index == 0:
            await reader.readuntil(b"\r\n\r\n")  # the next head, not its body: reset mid-write
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        await wait_for_eof(reader)

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                url = f"http://127.0.0.1:{server.port}/"
                assert await (await transport.request("POST", url, [], b"1")).aread() == b"first"
                assert await (await transport.request("POST", url, [], big)).aread() == b"retried"
            finally:
                await transport.aclose()
        assert server.connections == 2
        assert [len(r.body) for r in seen] == [1, len(big)]

    run(main())


def test_no_retry_once_response_bytes_arrived() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        writer.write(ok(b"first"))
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        await writer.drain()

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                url = f"http://127.0.0.1:{server.port}/"
                assert await (await transport.request("GET", url, [])).aread() == b"first"
                with pytest.raises(UpstreamProtocol, match="closed the connection mid-response"):
                    await transport.request("GET", url, [])
            finally:
                await transport.aclose()
        assert server.connections == 1

    run(main())


def test_fresh_connection_closed_without_response_is_not_retried() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                with pytest.raises(UpstreamProtocol, match="closed the connection before responding"):
                    await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
            finally:
                await transport.aclose()
        assert server.connections == 1

    run(main())


def test_64_concurrent_streams_complete_and_reuse_their_connections() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        while (request := await read_request(reader)) is not None:
            writer.write(CHUNKED_HEAD)
            for i in range(5):
                writer.write(chunk(b"data: %s %d\n\n" % (request.body, i)))
                await writer.drain()
                await asyncio.sleep(0.002)
            writer.write(chunk(b""))

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            url = f"http://127.0.0.1:{server.port}/v1/messages"

            async def stream(n: int) -> bytes:
                response = await transport.request("POST", url, [], b"%d" % n)
                return b"".join([piece async for piece in response.aiter_raw()])

            try:
                for _round in range(2):
                    bodies = await asyncio.gather(*(stream(n) for n in range(64)))
                    assert bodies == [b"".join(b"data: %d %d\n\n" % (n, i) for i in range(5)) for n in range(64)]
                    assert server.connections <= 64
                first_round = server.connections
                await asyncio.gather(*(stream(n) for n in range(64)))
            finally:
                await transport.aclose()
        assert server.connections == first_round  # later rounds only used pooled connections

    run(main())


# --- failures ----------------------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_server_closing_mid_body_raises_from_the_iterator(framing: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        if framing == "chunked":
            writer.write(CHUNKED_HEAD + chunk(b"data: one\n\n") + b"20\r\nda")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ndata: one\n\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                response = await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
                pieces = []
                with pytest.raises(UpstreamProtocol, match="closed the connection mid-response"):
                    async for piece in response.aiter_raw():
                        pieces.append(piece)
                assert pieces[0].startswith(b"data: one")
            finally:
                await transport.aclose()

    run(main())


def test_connection_refused_names_host_and_reason() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def main() -> None:
        transport = HttpTransport(env=NO_ENV)
        try:
            with pytest.raises(UpstreamProtocol) as info:
                await transport.request("GET", f"http://127.0.0.1:{port}/", [])
        finally:
            await transport.aclose()
        assert str(info.value) == f"cannot connect to 127.0.0.1:{port}: Connection refused"
        assert isinstance(info.value.__cause__, OSError)

    run(main())


def test_connect_timeout_covers_the_tls_handshake(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await wait_for_eof(reader)  # accepts TCP, never answers the ClientHello

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV, ssl_context=tls[1], timeouts=SHORT)
            try:
                with pytest.raises(UpstreamTimeout, match="connecting to 127.0.0.1:.* timed out after 0.2 s"):
                    await transport.request("GET", f"https://127.0.0.1:{server.port}/", [])
            finally:
                await transport.aclose()

    run(main())


def test_first_byte_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        await wait_for_eof(reader)

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                with pytest.raises(UpstreamTimeout, match="sent no response within 0.2 s"):
                    await transport.request("GET", f"http://127.0.0.1:{server.port}/", [], timeouts=SHORT)
            finally:
                await transport.aclose()

    run(main())


def test_read_idle_timeout_raises_from_the_iterator() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"one"))
        await wait_for_eof(reader)

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV, timeouts=SHORT)
            try:
                response = await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
                iterator = response.aiter_raw()
                assert await anext(iterator) == b"one"
                with pytest.raises(UpstreamTimeout, match="sent nothing for 0.2 s"):
                    await anext(iterator)
            finally:
                await transport.aclose()

    run(main())


def test_slow_consumer_is_not_an_idle_upstream() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"one"))
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(chunk(b"two") + chunk(b""))
        await wait_for_eof(reader)

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV, timeouts=SHORT)
            try:
                response = await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
                pieces = []
                async for piece in response.aiter_raw():
                    pieces.append(piece)
                    await asyncio.sleep(0.35)  # longer than read_idle_s, spent on our side
                assert pieces == [b"one", b"two"]
            finally:
                await transport.aclose()

    run(main())


@pytest.mark.parametrize(
    "reply",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
    ],
)
def test_malformed_response_is_a_protocol_error(reply: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        writer.write(reply)
        await wait_for_eof(reader)

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                with pytest.raises(UpstreamProtocol, match="sent malformed HTTP"):
                    response = await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
                    await response.aread()
            finally:
                await transport.aclose()

    run(main())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reply=st.one_of(st.binary(max_size=200),
                       st.binary(max_size=100).map(lambda tail: b"HTTP/1.1 200 OK\r\n" + tail)))
def test_arbitrary_reply_gives_a_response_or_an_upstream_error(reply: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV, timeouts=Timeouts(1, 1, 1))
            try:
                response = await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
                await response.aread()
            except UpstreamError:
                pass
            finally:
                await transport.aclose()

    run(main())


# --- cancellation --------------------------------------------------------------


@pytest.mark.parametrize("how", ["cancel", "aclose"])
def test_abandoning_a_stream_closes_its_socket(how: str) -> None:
    server_saw_eof = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"one"))
        await wait_for_eof(reader)
        server_saw_eof.set()

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                response = await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
                got_first = asyncio.Event()

                async def consume(response: UpstreamResponse) -> None:
                    async for _ in response.aiter_raw():
                        got_first.set()

                task = asyncio.create_task(consume(response))
                await got_first.wait()
                if how == "cancel":
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task
                else:
                    await response.aclose()
                    with pytest.raises(RuntimeError, match="closed before its body was read"):
                        await task
                async with asyncio.timeout(2):
                    await server_saw_eof.wait()
                # the connection was not pooled: the next request opens another one
                server_saw_eof.clear()
                response = await transport.request("GET", f"http://127.0.0.1:{server.port}/", [])
                await response.aclose()
            finally:
                await transport.aclose()
        assert server.connections == 2

    run(main())


def test_cancelling_while_awaiting_the_head_closes_the_socket() -> None:
    server_saw_eof = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        await wait_for_eof(reader)
        server_saw_eof.set()

    async def main() -> None:
        async with RawServer(handler) as server:
            transport = HttpTransport(env=NO_ENV)
            try:
                task = asyncio.create_task(transport.request("GET", f"http://127.0.0.1:{server.port}/", []))
                await asyncio.sleep(0.05)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                async with asyncio.timeout(2):
                    await server_saw_eof.wait()
            finally:
                await transport.aclose()

    run(main())


# --- TLS and proxies -----------------------------------------------------------


def test_https_with_a_custom_ca(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    seen: list[SeenRequest] = []

    async def main() -> None:
        async with RawServer(serve_forever(b"secure", seen), ssl=tls[0]) as server:
            transport = HttpTransport(env=NO_ENV, ssl_context=tls[1])
            try:
                for host in ("127.0.0.1", "localhost", "localhost"):
                    response = await transport.request("GET", f"https://{host}:{server.port}/v1", [])
                    assert await response.aread() == b"secure"
            finally:
                await transport.aclose()
        assert server.connections == 2  # one per host

    run(main())


def test_https_with_an_untrusted_certificate_fails_clearly(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    async def main() -> None:
        async with RawServer(serve_forever(), ssl=tls[0]) as server:
            transport = HttpTransport(env=NO_ENV)  # the default context does not trust the test CA
            try:
                with pytest.raises(UpstreamProtocol, match=r"TLS with 127.0.0.1:\d+ failed: .*certificate"):
                    await transport.request("GET", f"https://127.0.0.1:{server.port}/", [])
            finally:
                await transport.aclose()

    run(main())


def test_https_through_a_connect_proxy(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    seen: list[SeenRequest] = []

    async def main() -> None:
        async with RawServer(serve_forever(b"tunnelled", seen), ssl=tls[0]) as upstream, \
                Proxy(upstream_port=upstream.port) as proxy:
            user_url = proxy.url.replace("http://", "http://me:p%40ss@")
            transport = HttpTransport(env={"https_proxy": user_url, "NO_PROXY": "other.test"},
                                      ssl_context=tls[1])
            try:
                for _ in range(2):
                    response = await transport.request("POST", "https://upstream.test/v1/messages", [], b"{}")
                    assert await response.aread() == b"tunnelled"
            finally:
                await transport.aclose()
        assert [r.line for r in proxy.seen] == [b"CONNECT upstream.test:443 HTTP/1.1"]
        assert proxy.seen[0].header(b"proxy-authorization") == b"Basic " + base64.b64encode(b"me:p@ss")
        assert [r.header(b"host") for r in seen] == [b"upstream.test", b"upstream.test"]
        assert seen[0].header(b"proxy-authorization") is None  # stays between us and the proxy
        assert upstream.connections == 1

    run(main())


def test_proxy_refusing_connect_is_reported(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        await wait_for_eof(reader)

    async def main() -> None:
        async with RawServer(handler) as proxy:
            transport = HttpTransport(env={"HTTPS_PROXY": f"127.0.0.1:{proxy.port}"}, ssl_context=tls[1])
            try:
                with pytest.raises(UpstreamProtocol, match="refused CONNECT upstream.test:443: 407"):
                    await transport.request("GET", "https://upstream.test/", [])
            finally:
                await transport.aclose()

    run(main())


def test_http_through_a_proxy_uses_absolute_form() -> None:
    async def main() -> None:
        async with Proxy() as proxy:
            transport = HttpTransport(env={"HTTP_PROXY": proxy.url.replace("http://", "http://u:pw@")})
            try:
                response = await transport.request("GET", "http://upstream.test/v1/x?y=1", [])
                assert await response.aread() == b"from proxy: http://upstream.test/v1/x?y=1"
                response = await transport.request("GET", "http://upstream.test:8080/z", [])
                await response.aread()
            finally:
                await transport.aclose()
        assert [(r.line, r.header(b"host")) for r in proxy.seen] == [
            (b"GET http://upstream.test/v1/x?y=1 HTTP/1.1", b"upstream.test"),
            (b"GET http://upstream.test:8080/z HTTP/1.1", b"upstream.test:8080"),
        ]
        assert proxy.seen[0].header(b"proxy-authorization") == b"Basic " + base64.b64encode(b"u:pw")

    run(main())


def test_no_proxy_and_loopback_bypass_the_proxy() -> None:
    async def main() -> None:
        async with Proxy() as proxy, RawServer(serve_forever(b"direct")) as server:
            env = {"http_proxy": proxy.url, "no_proxy": "example.org, .upstream.invalid"}
            transport = HttpTransport(env=env, timeouts=Timeouts(connect_s=2))
            try:
                for host in ("127.0.0.1", "localhost"):
                    response = await transport.request("GET", f"http://{host}:{server.port}/", [])
                    assert await response.aread() == b"direct"
                with pytest.raises(UpstreamError, match=r"^(?!.*via proxy)"):  # tried directly
                    await transport.request("GET", "http://api.upstream.invalid/", [])
                response = await transport.request("GET", "http://upstream.test/", [])
                assert await response.aread() == b"from proxy: http://upstream.test/"
            finally:
                await transport.aclose()
        assert [r.target for r in proxy.seen] == [b"http://upstream.test/"]

    run(main())


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("*", "api.example.com", 443, True),
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        (".example.com", "api.example.com", 443, True),
        ("*.example.com", "api.example.com", 443, True),
        ("example.com:8443", "example.com", 443, False),
        ("example.com:8443", "example.com", 8443, True),
        (" other.org , Example.COM ", "example.com", 80, True),
        ("10.1.2.3", "10.1.2.3", 80, True),
        ("[fd00::1]:443", "fd00::1", 443, True),
        ("", "example.com", 443, False),
    ],
)
def test_no_proxy_rules(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    from agentwrap.backends.urls import no_proxy_matches, no_proxy_rules

    assert no_proxy_matches(no_proxy_rules(no_proxy), host, port) is bypass


def test_unsupported_proxy_scheme_is_a_config_error() -> None:
    async def main() -> None:
        transport = HttpTransport(env={"ALL_PROXY": "socks5://127.0.0.1:1080"})
        try:
            with pytest.raises(ConfigError, match="only http:// proxies"):
                await transport.request("GET", "http://upstream.test/", [])
        finally:
            await transport.aclose()

    run(main())


def test_tls_context_is_built_lazily() -> None:
    transport = HttpTransport(env=NO_ENV)
    assert transport._ssl_context is None
