"""Gemini API codec (`gemini`): the names callers use.

`codec.codec("gemini")` returns this module; `codec.Codec` names what it
offers. The work is in `request` (requests to and from the neutral model;
model and method come from the path, `request.MODEL_PATH`), `decode`
(responses to neutral events), `encode` (neutral events to responses) and
`summary` (what routing needs to know of a request). Sans-IO.
"""

from agentwrap.protocols.gemini.decode import USAGE_KEYS, StreamDecoder, decode_error, decode_response, decode_usage
from agentwrap.protocols.gemini.encode import StreamEncoder, encode_error, encode_response
from agentwrap.protocols.gemini.request import PROTOCOL, decode_request, encode_request
from agentwrap.protocols.gemini.summary import summarize_request

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
