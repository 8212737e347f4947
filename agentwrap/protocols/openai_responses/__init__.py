"""OpenAI Responses API codec (`openai_responses`): the names callers use.

`codec.codec("openai_responses")` returns this module; `codec.Codec` names
what it offers. The work is in `request` (requests to and from the neutral
model), `decode` (responses to neutral events; errors have the Chat shape),
`encode` (neutral events to responses) and `summary` (what routing needs to
know of a request). Sans-IO.
"""

from agentwrap.protocols.openai_responses.decode import USAGE_KEYS, StreamDecoder, decode_error, decode_response, decode_usage
from agentwrap.protocols.openai_responses.encode import StreamEncoder, encode_error, encode_response
from agentwrap.protocols.openai_responses.request import PROTOCOL, decode_request, encode_request
from agentwrap.protocols.openai_responses.summary import summarize_request

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
