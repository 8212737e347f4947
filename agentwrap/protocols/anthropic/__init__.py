"""Anthropic Messages API codec (`anthropic_messages`): the names callers use.

`codec.codec("anthropic_messages")` returns this module; `codec.Codec` names
what it offers. The work is in `request` (requests to and from the neutral
model), `decode` (responses to neutral events), `encode` (neutral events to
responses) and `summary` (what routing needs to know of a request).
Stream grammar: docs.anthropic.com "Streaming Messages". Sans-IO.
"""

from agentwrap.protocols.anthropic.decode import USAGE_KEYS, StreamDecoder, decode_error, decode_response, decode_usage
from agentwrap.protocols.anthropic.encode import StreamEncoder, encode_error, encode_response
from agentwrap.protocols.anthropic.request import PROTOCOL, decode_request, encode_request
from agentwrap.protocols.anthropic.summary import summarize_request

__all__ = [
    "PROTOCOL",
    "USAGE_KEYS",
    "StreamEncoder",
    "encode_error",
    "encode_response",
    "summarize_request",
    "StreamDecoder",
    "decode_error",
    "decode_request",
    "decode_response",
    "decode_usage",
    "encode_request",
]
