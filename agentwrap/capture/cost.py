"""What a recorded request cost: its token usage priced with the genai-prices library.

Prices come from the data genai-prices ships inside its package (a snapshot
of the providers' price lists, updated with each release of the library);
nothing is fetched over the network. The provider is found from the URL the
request was sent to (api.anthropic.com, api.openai.com, the Gemini API,
openrouter.ai, ...), the model from what was routed. A request answered by a
local server, a scripted or replayed backend, or a host or model the library
does not know gets no cost (None): never a guess from the model name alone,
since a local model may share a hosted model's name.

Costs are list prices at the time the run started; an agent logged in with a
subscription (Claude, ChatGPT, Google) is not billed per token, so for it the
figure is what the same tokens would cost on the API.

genai-prices (and pydantic, which it uses) is imported on first use, so only
`runs` and `show` pay for it, never an agent's start-up.
"""

from __future__ import annotations

import functools
import ipaddress
import warnings
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

__all__ = ["PRICING_LIBRARY", "format_cost", "pricing_version", "request_cost", "run_cost", "run_time"]

PRICING_LIBRARY = "genai-prices"


@functools.cache
def _library() -> Any:
    """The genai_prices module, or None when it is not installed."""
    try:
        import genai_prices
    except ImportError:
        return None
    return genai_prices


def pricing_version() -> str | None:
    """The price data's version (the library's), or None without the library."""
    lib = _library()
    return f"{PRICING_LIBRARY} {lib.__version__}" if lib is not None else None


def run_time(started_at: Any) -> datetime | None:
    """A run header's `started_at` (UTC ISO 8601) as an aware datetime; None if unreadable."""
    if not isinstance(started_at, str):
        return None
    try:
        when = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def request_cost(model: str | None, upstream_url: str | None, usage: dict | None, at: datetime | None = None) -> float | None:
    """US dollars for one request's `usage` (agentwrap's token fields), or None when unknown.

    `upstream_url` is where the request went; without one (a local, scripted or
    replayed answer) there is no cost. `at` picks the prices in force then.
    """
    if not model or not upstream_url or not usage or _local(upstream_url):
        return None
    lib = _library()
    if lib is None:
        return None
    # agentwrap's fields are genai-prices' own: input_tokens is the whole prompt,
    # cache reads and writes included, as the library expects.
    counts = {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calc = lib.calc_price(
                lib.Usage(**counts), model, provider_api_url=upstream_url.partition("?")[0],
                genai_request_timestamp=at or datetime.now(timezone.utc),
            )
    except (LookupError, ValueError, TypeError, ArithmeticError):
        return None
    return round(float(calc.total_price), 8)


def _local(url: str) -> bool:
    """True for a URL no price list can name (not http(s); a loopback, private or link-local
    host): checked before the library is imported, so a local run never pays for it."""
    if not url.startswith(("http://", "https://")):
        return True
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return True
    if not host or host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a bare name: a machine on the LAN
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def run_cost(requests: Iterable[tuple[str | None, str | None, dict | None]], at: datetime | None = None) -> tuple[float | None, int]:
    """(US dollars, requests with usage that could not be priced) of a run's requests, each
    (model, upstream URL, usage). The cost is the sum of what could be priced; None when
    nothing could."""
    cost: float | None = None
    unpriced = 0
    for model, url, usage in requests:
        if not usage:
            continue
        price = request_cost(model, url, usage, at)
        if price is None:
            if any(usage.values()):
                unpriced += 1
        else:
            cost = (cost or 0.0) + price
    return (round(cost, 8) if cost is not None else None), unpriced


def format_cost(usd: float | None, partial: bool = False) -> str:
    """`$0.0042`, `$1.25`, `$1,234`; `+` after it when some requests could not be priced; `-` for none."""
    if usd is None:
        return "-"
    if usd == 0:
        text = "$0"
    elif usd < 0.0001:
        text = "<$0.0001"
    elif usd < 0.01:
        text = f"${usd:.4f}"
    elif usd < 1000:
        text = f"${usd:.2f}"
    else:
        text = f"${usd:,.0f}"
    return text + ("+" if partial else "")
