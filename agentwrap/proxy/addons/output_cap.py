"""A backend's `max_output_tokens`, as an addon: no request asks it for more.

On a pass-through leg the addon lowers every output-token limit of the body
above the cap (`cap_output_tokens`). A translated leg is capped by the
translation itself (`translate_request(max_tokens_cap=...)`: the neutral
request's limit, set where the request had none); the addon only writes the
capture note for it. Either way the note says which limits were lowered and
from what (`None`: the request set none).
"""

from __future__ import annotations

__all__ = ["OutputCap"]

from agentwrap.protocols.limits import cap_output_tokens, output_limits


class OutputCap:
    """Applies and notes each backend's `max_output_tokens` (see the module docstring)."""

    def upstream_request(self, flow, leg) -> None:
        backend = leg.config
        cap = backend.max_output_tokens
        if not cap or flow.parsed is None:
            return
        if leg.translated:
            name, requested = next(iter(output_limits(flow.protocol, flow.parsed).items()), ("max_tokens", None))
            if requested is None or requested > cap:
                flow.note(_note(backend, {name: requested}))
            return
        body, lowered = cap_output_tokens(flow.protocol, leg.json, cap)
        if lowered:
            leg.json = body
            flow.note(_note(backend, lowered))


def _note(backend, lowered: dict[str, int | None]) -> dict:
    """The capture record of a `max_output_tokens` adjustment (a None value: the request set no limit)."""
    return {"guard": "max_output_tokens", "backend": backend.name, "cap": backend.max_output_tokens, "lowered": lowered}
