"""Each of the four codecs offers what `codec.Codec` names, with the same signatures.

Callers (translation, the dispatcher, the scripted backend, capture) use a codec
through `codec(protocol)` without knowing which one it is; these tests are what
lets them. The stream stages also offer the text lane (`LaneDecoder`,
`LaneEncoder`), which the translator uses without looking for it.
"""

from __future__ import annotations

import inspect
import json
import typing

import pytest

from agentwrap.protocols import PROTOCOLS
from agentwrap.protocols.codec import Codec, LaneDecoder, LaneEncoder, _DecoderFactory, _EncoderFactory, codec
from agentwrap.protocols.neutral import DEFAULT_STATUS, STATUS_TYPES, ErrorType, MessageStart, Stop, TextDelta, Usage
from agentwrap.protocols.translate import Adapter, TranslationContext

FUNCTIONS = ("decode_request", "encode_request", "summarize_request", "decode_response", "decode_error",
             "decode_usage", "encode_response", "encode_error")


def _parameters(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def _declared(fn) -> list[tuple[str, object, object]]:
    return _parameters(fn)[1:]  # a Protocol method, without `self`


def test_the_encoder_constructor_is_the_one_the_review_asked_for() -> None:
    names = [(name, default) for name, _, default in _declared(_EncoderFactory.__call__)]
    empty = inspect.Parameter.empty
    assert names == [("model", empty), ("response_id", empty), ("created", 0), ("include_usage", True)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_codec_conforms(protocol: str) -> None:
    module = codec(protocol)
    assert isinstance(module, Codec)
    assert module.PROTOCOL == protocol
    assert len(module.USAGE_KEYS) == 4 and all(isinstance(k, bytes) for keys in module.USAGE_KEYS for k in keys)
    for name in FUNCTIONS:
        assert _parameters(getattr(module, name)) == _declared(getattr(Codec, name)), f"{protocol}.{name}"
    assert _parameters(module.StreamEncoder) == _declared(_EncoderFactory.__call__)
    assert _parameters(module.StreamDecoder) == _declared(_DecoderFactory.__call__)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_encoder_offers_the_lane(protocol: str) -> None:
    encoder = codec(protocol).StreamEncoder("m", "resp_1", created=1, include_usage=False)
    assert isinstance(encoder, LaneEncoder)
    assert encoder.content_type == "text/event-stream"
    out = b"".join(encoder.feed(e) for e in [MessageStart("x", "m"), TextDelta("hi"), Usage(1, 1), Stop("end_turn")])
    out += encoder.finish()
    assert out.startswith(b"event: " if protocol in ("anthropic_messages", "openai_responses") else b"data: ")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_decoder_offers_the_lane(protocol: str) -> None:
    module = codec(protocol)
    decoder = module.StreamDecoder("hint")
    assert isinstance(decoder, LaneDecoder)
    assert decoder.lane_usage(None) == Usage()
    assert decoder.lane_usage_keys is module.USAGE_KEYS


def test_translation_adapter_has_the_stream_filter_shape() -> None:
    from agentwrap.guards.base import StreamFilter

    adapter = Adapter(TranslationContext("anthropic_messages", "openai_chat", "m", "m", True))
    assert isinstance(adapter, StreamFilter)
    assert adapter.lane_text([b'"hi"']) is True


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_codec_renders_every_neutral_error_type(protocol: str) -> None:
    error_types = typing.get_args(ErrorType)
    assert set(error_types) == set(DEFAULT_STATUS) and set(STATUS_TYPES.values()) <= set(error_types)
    for error_type in error_types:
        status, body = codec(protocol).encode_error(error_type, "m")
        expected = 529 if (protocol, error_type) == ("anthropic_messages", "overloaded") else DEFAULT_STATUS[error_type]
        assert status == expected and "m" in json.dumps(json.loads(body))


USAGE_OBJECTS = {  # each with a count only one reading of the protocol's usage fields gets right
    "anthropic_messages": {"input_tokens": 0, "output_tokens": 5, "cache_read_input_tokens": 90},
    "openai_chat": {"prompt_tokens": 100, "completion_tokens": 5, "prompt_cache_hit_tokens": 90},
    "openai_responses": {"input_tokens": 100, "output_tokens": 5, "input_tokens_details": {"cache_write_tokens": 10}},
    "gemini": {"promptTokenCount": 100, "toolUsePromptTokenCount": 7, "candidatesTokenCount": 5, "thoughtsTokenCount": 3},
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_capture_counts_tokens_with_the_codecs_usage_mapper(protocol: str) -> None:
    from agentwrap.capture.answers import TOKEN_FIELDS, usage_of_body

    raw = USAGE_OBJECTS[protocol]
    usage = codec(protocol).decode_usage(raw)
    expected = dict(zip(TOKEN_FIELDS, (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens)))
    whole = {
        "anthropic_messages": {"type": "message", "content": [], "usage": raw},
        "openai_chat": {"choices": [], "usage": raw},
        "openai_responses": {"object": "response", "status": "completed", "output": [], "usage": raw},
        "gemini": {"candidates": [], "usageMetadata": raw},
    }[protocol]
    event = {
        "anthropic_messages": {"type": "message_start", "message": {"id": "m", "usage": raw}},
        "openai_chat": whole,
        "openai_responses": {"type": "response.completed", "response": whole},
        "gemini": whole,
    }[protocol]
    assert usage_of_body(protocol, json.dumps(whole).encode(), sse=False) == expected
    assert usage_of_body(protocol, b"data: " + json.dumps(event).encode() + b"\n\n", sse=True) == expected
