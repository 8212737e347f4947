"""Where an upstream request goes: an http(s) URL split into its parts, the HTTP
proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) and the CONNECT tunnel
through a proxy. Pure, but for `open_tunnel`. A bad URL or proxy setting raises
`ConfigError`.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from urllib.parse import unquote

import h11

from agentwrap.errors import ConfigError, UpstreamProtocol

__all__ = ["DEFAULT_PORTS", "UpstreamProxy", "Route", "open_tunnel", "split_url", "parse_proxy", "is_loopback",
           "no_proxy_rules", "no_proxy_matches"]

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class UpstreamProxy:
    host: str
    port: int
    auth: bytes | None = field(default=None, repr=False)  # Proxy-Authorization value


@dataclass(frozen=True, slots=True)
class Route:
    """What a URL means for a request; cached per URL string."""

    tls: bool
    host: str
    port: int
    authority: bytes  # host:port with IPv6 in brackets: the CONNECT target
    host_header: bytes
    target: bytes  # origin-form, or absolute-form through an http proxy
    proxy: UpstreamProxy | None
    extra_headers: tuple[tuple[bytes, bytes], ...]
    key: tuple[object, ...]  # the pool's key
    where: str  # names the upstream in messages


async def open_tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, route: Route,
                       proxy: UpstreamProxy) -> None:
    """Ask an HTTP proxy for a tunnel: CONNECT host:port (RFC 9110 9.3.6)."""
    h = h11.Connection(h11.CLIENT)
    fields = [(b"host", route.authority)] + ([(b"proxy-authorization", proxy.auth)] if proxy.auth else [])
    writer.write(h.send(h11.Request(method=b"CONNECT", target=route.authority, headers=fields))
                 + h.send(h11.EndOfMessage()))
    await writer.drain()
    h.receive_data(await reader.readuntil(b"\r\n\r\n"))
    event = h.next_event()
    if type(event) is h11.Response and 200 <= event.status_code < 300:
        return
    status = f"{event.status_code} {event.reason.decode('latin-1')}" if isinstance(event, h11.Response) else "?"
    hint = "; check the user and password in the proxy URL" if status.startswith("407") else ""
    raise UpstreamProtocol(f"proxy {proxy.host}:{proxy.port} refused CONNECT {route.authority.decode()}: {status}{hint}")


def split_url(url: str, what: str) -> tuple[str, str, str, int, str]:
    """Split an http(s) URL into scheme, userinfo, host, port and path+query.

    The path and query are kept as given; the fragment is dropped. Raises ConfigError.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise ConfigError(f"{what} must start with http:// or https://" + (f", not {scheme}://" if sep else ""))
    end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i != -1], default=len(rest))
    authority, target = rest[:end], rest[end:].partition("#")[0]
    target = target if target.startswith("/") else "/" + target
    userinfo, _, hostport = authority.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal, RFC 3986 3.2.2
        host, bracket, port_s = hostport[1:].partition("]")
        if not bracket or (port_s and not port_s.startswith(":")):
            raise ConfigError(f"{what} has a malformed IPv6 host: {hostport!r}")
        port_s = port_s[1:]
    else:
        host, _, port_s = hostport.partition(":")
    if not host:
        raise ConfigError(f"{what} has no host: {scheme}://{hostport}")
    if port_s and not (port_s.isascii() and port_s.isdigit() and 0 < int(port_s) < 65536):
        raise ConfigError(f"{what} has an invalid port: {port_s!r}")
    host = host.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ConfigError(f"{what} has an invalid host name: {host!r}") from exc
    return scheme, userinfo, host, int(port_s) if port_s else DEFAULT_PORTS[scheme], target


def parse_proxy(name: str, value: str) -> UpstreamProxy:
    value = value if "://" in value else "http://" + value
    scheme = value.partition("://")[0].lower()
    if scheme != "http":
        raise ConfigError(f"{name} names a {scheme}:// proxy; only http:// proxies are supported. "
                          f"Unset {name} or point it at an HTTP proxy.")
    _, userinfo, host, port, _ = split_url(value, name)
    auth = None
    if userinfo:
        user, _, password = userinfo.partition(":")
        auth = b"Basic " + base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode())
    return UpstreamProxy(host, port, auth)


def is_loopback(host: str) -> bool:
    if host.startswith("127."):
        return host.replace(".", "").isdigit()
    return host in ("localhost", "::1") or host.endswith(".localhost")


def no_proxy_rules(value: str) -> tuple[tuple[str, int | None], ...]:
    """Parse NO_PROXY: `*`, or host suffixes (`example.com`, `.example.com`,
    `*.example.com`) with an optional `:port`; IPv6 hosts in brackets."""
    rules = []
    for entry in value.replace(" ", ",").lower().split(","):
        if entry == "*":
            return (("*", None),)
        if entry.startswith("["):
            entry, _, port_s = entry[1:].partition("]")
            port_s = port_s[1:]
        elif entry.count(":") == 1:
            entry, _, port_s = entry.partition(":")
        else:
            port_s = ""
        if entry := entry.removeprefix("*").removeprefix("."):
            rules.append((entry, int(port_s) if port_s.isascii() and port_s.isdigit() else None))
    return tuple(rules)


def no_proxy_matches(rules: tuple[tuple[str, int | None], ...], host: str, port: int) -> bool:
    return any(rule == "*" or (rule_port in (None, port) and (host == rule or host.endswith("." + rule)))
               for rule, rule_port in rules)
