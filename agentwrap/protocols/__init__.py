"""Codecs between the agents' wire formats and one neutral model.

One package per wire protocol (`anthropic`, `openai_chat`, `openai_responses`,
`gemini`), each offering what `codec.Codec` names; the neutral model they all
speak (`neutral`); translation between two of them (`translate`); and what
they share (`sse`, `lane`, `endpoints`, `limits`, `schema`, `_blocks`,
`_lenient`).

Sans-IO: nothing here imports asyncio, httpx, socket or os. Protocol ids never
vary: `anthropic_messages`, `openai_chat`, `openai_responses`, `gemini`.
"""

from typing import Literal

Protocol = Literal["anthropic_messages", "openai_chat", "openai_responses", "gemini"]
PROTOCOLS: tuple[str, ...] = ("anthropic_messages", "openai_chat", "openai_responses", "gemini")

__all__ = ["Protocol", "PROTOCOLS"]
