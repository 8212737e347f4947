"""Codecs between the agents' wire formats and one neutral model.

Sans-IO: nothing here imports asyncio, httpx, socket or os. Protocol ids never
vary: `anthropic_messages`, `openai_chat`, `openai_responses`, `gemini`.
"""

from typing import Literal

Protocol = Literal["anthropic_messages", "openai_chat", "openai_responses", "gemini"]
PROTOCOLS: tuple[str, ...] = ("anthropic_messages", "openai_chat", "openai_responses", "gemini")

__all__ = ["Protocol", "PROTOCOLS"]
