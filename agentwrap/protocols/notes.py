"""Add a note for the model to an agent's request body, in the body's own protocol.

A request guard that must tell the model something (the tool-loop guard's
"you have made this call N times") adds it where the model reads it last:
right after the newest tool results, as user text, within each protocol's
rules:

- `anthropic_messages`: a text block appended to the last user message's
  content, after its `tool_result` blocks (results must open a user
  message; text may follow them). Claude Code's `role: "system"` entries are
  skipped over when finding that message. A string content becomes a text
  block first;
- `openai_chat`: a `user` message after the `tool` messages (a `tool`
  message only answers a call; free text needs its own message);
- `openai_responses`: a `message` input item with role `user` after the last
  `function_call_output` / `custom_tool_call_output` item. A string `input`
  becomes one user message item first;
- `gemini`: a text part appended to the last `user` content, after its
  `functionResponse` parts (also inside Code Assist's `request` envelope).

When the conversation does not end with a user turn, a new user turn holding
only the note is appended instead. Everything else, unknown fields included,
is kept as it is; only the containers on the way to the note are copied, so
the agent's body is never changed.

Sans-IO: nothing here imports asyncio, httpx, socket or os.
"""

from __future__ import annotations

from typing import Any

from agentwrap.errors import RequestError

__all__ = ["append_user_note"]


def append_user_note(protocol: str, body: dict, text: str) -> dict:
    """A copy of `body` with `text` added as user text the model reads right after the newest tool results.

    Raises `ValueError` for an unknown protocol id, `RequestError` when the
    body's conversation (or the content of the turn the note joins) is not a list.
    """
    try:
        add = _ADDERS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}") from None
    return add(body, text)


def _list(body: dict, key: str, what: str) -> list:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError(f"{what} `{key}` is not a list; cannot add a note to it.")
    return list(value)


def _anthropic(body: dict, text: str) -> dict:
    messages = _list(body, "messages", "Anthropic request")
    note = {"type": "text", "text": text}
    # Claude Code may put `role: "system"` entries between turns; the turn is the user message before them.
    last = next((i for i in range(len(messages) - 1, -1, -1) if not _has_role(messages[i], "system")), None)
    if last is not None and _has_role(messages[last], "user"):
        message = messages[last]
        content = message.get("content")
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}] if content else []
        else:
            blocks = _list(message, "content", "Anthropic user message")
        messages[last] = {**message, "content": [*blocks, note]}
    else:
        messages.append({"role": "user", "content": [note]})
    return {**body, "messages": messages}


def _openai_chat(body: dict, text: str) -> dict:
    messages = _list(body, "messages", "Chat request")
    messages.append({"role": "user", "content": text})
    return {**body, "messages": messages}


def _openai_responses(body: dict, text: str) -> dict:
    raw = body.get("input")
    if isinstance(raw, str):
        items: list[Any] = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    else:
        items = _list(body, "input", "Responses request")
    items.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    return {**body, "input": items}


def _gemini(body: dict, text: str) -> dict:
    if "contents" not in body and isinstance(body.get("request"), dict):
        return {**body, "request": _gemini(body["request"], text)}  # Code Assist envelope
    contents = _list(body, "contents", "Gemini request")
    note = {"text": text}
    last = contents[-1] if contents else None
    # A content without a role is the user's (the API's default for single-turn requests).
    if isinstance(last, dict) and last.get("role", "user") == "user":
        contents[-1] = {**last, "parts": [*_list(last, "parts", "Gemini content"), note]}
    else:
        contents.append({"role": "user", "parts": [note]})
    return {**body, "contents": contents}


def _has_role(message: Any, role: str) -> bool:
    return isinstance(message, dict) and message.get("role") == role


_ADDERS = {
    "anthropic_messages": _anthropic,
    "openai_chat": _openai_chat,
    "openai_responses": _openai_responses,
    "gemini": _gemini,
}
