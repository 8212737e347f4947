"""Protocol translation: an agent's request to a backend of another protocol,
and the backend's answer back, streaming or whole, errors included.

- `request`: `translate_request` and the `TranslationContext` the way back needs;
- `stream`: `StreamTranslator`, a streamed answer (with the text lane);
- `adapter`: `Adapter`, the backend's events adjusted for the agent (the
  first stream filter);
- `whole`: `translate_response` and `error_response`, a whole answer or error.

Sans-IO.
"""

from agentwrap.protocols.translate.adapter import Adapter
from agentwrap.protocols.translate.request import TranslationContext, translate_request
from agentwrap.protocols.translate.stream import StreamTranslator
from agentwrap.protocols.translate.whole import TranslatedResponse, error_response, translate_response

__all__ = [
    "Adapter",
    "TranslationContext",
    "TranslatedResponse",
    "StreamTranslator",
    "translate_request",
    "translate_response",
    "error_response",
]
