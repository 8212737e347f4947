"""Tool-call loop guard: the model keeps making the same call and getting the same result.

A weak or confused model can call a tool, read its result, and call it again
with the same arguments, round after round, burning tokens and time without
progress. The agent sends the whole conversation with every request, so the
loop is visible in the request itself; this guard reads it there and decides,
before the request goes to any backend, whether to step in.

Pure and stateless: `decide(req)` looks only at the request, so a retried or
replayed request gets the same verdict. Usage (the request-guard addon):

```python
guard = ToolLoopGuard(max_repeats=profile.guards.tool_loop.max_repeats)
verdict = guard.decide(codec(agent_protocol).decode_request(body, path))
if verdict.action == "steer":      # forward, with a note the model reads last
    body = append_user_note(agent_protocol, body, verdict.note)
elif verdict.action == "answer":   # no backend: a local assistant message ends the turn
    events = answer_events(verdict.note, model)
```

Theory of operation. The conversation is read backwards from its end as
*steps*: an assistant message holding tool calls, followed by the user
message holding their results (every codec decodes tool results into a user
message). The *run* is the number of consecutive steps at the end that are
identical to the newest one:

- a step is identical when its tool calls and their results are, taken as a
  multiset of (call, result) pairs (parallel calls in any order);
- a call is its kind, its name and its arguments: function arguments parsed
  as JSON and compared as data (key order and whitespace ignored; text that
  is not JSON is compared with whitespace runs collapsed), freeform (custom)
  input compared as text with whitespace runs collapsed. Call ids, the
  assistant's text and its thinking are ignored;
- a result is its error flag, its text after `mask_volatile` (clocks,
  durations, ids, PIDs, temp paths, escape codes), and its images and
  documents, compared as data;
- calls pair with results by call id; when ids are missing or repeated
  (some OpenAI-compatible servers send none), by position;
- the run stops at the first step that differs, at an assistant message
  without tool calls, at a call without a result, and at a real user
  message. A user message that holds tool results is not a real user message
  unless it also holds text of the user's own: Claude Code's
  `<system-reminder>` blocks do not count, so they never reset the run;
  any other text does (asking the user is the model's way out, and a user
  who spoke has changed the situation);
- a conversation that ends with an assistant message (a call without a
  result yet) has a run of 0.

Verdicts, with N = `max_repeats`:

- run < N: "pass";
- run == N: "steer": the request goes on with `note` added after the newest
  tool results, telling the model it has made the same call N times with the
  same result and must change approach or answer the user;
- run > N: "answer": the model repeated the call despite the note; agentwrap
  answers the request itself with `note` as an assistant message without a
  tool call, which ends the agent's turn cleanly. An HTTP error is never the
  intervention: agents retry those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from agentwrap.config.model import TOOL_LOOP_MAX_REPEATS, TOOL_LOOP_MIN_REPEATS
from agentwrap.guards.base import GuardNote
from agentwrap.guards.commands import reply_events
from agentwrap.guards.volatile import mask_volatile
from agentwrap.protocols.neutral import NeutralEvent
from agentwrap.protocols.neutral.request import (
    DocumentPart,
    ImagePart,
    Message,
    NeutralRequest,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = [
    "DEFAULT_MAX_REPEATS",
    "MIN_MAX_REPEATS",
    "ToolLoopGuard",
    "ToolLoopVerdict",
    "answer_events",
    "answer_text",
    "loop_run",
    "steer_note",
]

DEFAULT_MAX_REPEATS = TOOL_LOOP_MAX_REPEATS
MIN_MAX_REPEATS = TOOL_LOOP_MIN_REPEATS
ANSWER_RESPONSE_ID = "msg_agentwrap_tool_loop"

Action = Literal["pass", "steer", "answer"]

# Claude Code 2.1.x appends these to tool-result messages (todo nudges, hook
# output, file-change notices); they are the agent talking, not the user.
_REMINDER_OPEN = "<system-reminder>"
_REMINDER_CLOSE = "</system-reminder>"


@dataclass(frozen=True, slots=True)
class ToolLoopVerdict:
    """What to do with one request. `repeats` is the run length found; `tool`
    names the looping tool(s) ("" for a run of 0); `note` is the steering note
    ("steer") or the assistant's answer ("answer"), else ""."""

    action: Action
    repeats: int = 0
    tool: str = ""
    note: str = ""

    def guard_note(self, max_repeats: int) -> GuardNote:
        """The capture/summary record of this verdict."""
        return GuardNote("tool_loop", self.action, {"tool": self.tool, "repeats": self.repeats, "max_repeats": max_repeats})


class ToolLoopGuard:
    """Decide, from a request alone, whether its agent is stuck in a tool-call loop.

    Raises `ValueError` for `max_repeats` below `MIN_MAX_REPEATS`.
    """

    __slots__ = ("max_repeats",)

    def __init__(self, max_repeats: int = DEFAULT_MAX_REPEATS) -> None:
        if max_repeats < MIN_MAX_REPEATS:
            raise ValueError(f"max_repeats must be at least {MIN_MAX_REPEATS}, not {max_repeats}")
        self.max_repeats = max_repeats

    def decide(self, req: NeutralRequest) -> ToolLoopVerdict:
        """The verdict for `req` (see the module docstring)."""
        repeats, tools = loop_run(req.messages)
        tool = _tool_names(tools)
        if repeats < self.max_repeats:
            return ToolLoopVerdict("pass", repeats, tool)
        if repeats == self.max_repeats:
            return ToolLoopVerdict("steer", repeats, tool, steer_note(tool, repeats))
        return ToolLoopVerdict("answer", repeats, tool, answer_text(tool, repeats))


def steer_note(tool: str, repeats: int) -> str:
    """The note the model reads after the newest tool results."""
    return (
        f"agentwrap: you have called {tool} with the same arguments {repeats} times in a row "
        "and got the same result each time; do not call it again with these arguments; "
        "change approach or answer the user."
    )


def answer_text(tool: str, repeats: int) -> str:
    """The assistant message that ends a loop the model kept up after the note."""
    return (
        f"agentwrap stopped a tool-call loop: the model called {tool} with the same arguments "
        f"{repeats} times in a row and got the same result each time, and it made the call again "
        "after being asked to change approach. This turn ends here; tell me how to continue."
    )


def answer_events(text: str, model: str) -> list[NeutralEvent]:
    """A complete assistant message carrying `text` (no tool call), for the agent protocol's encoder."""
    return reply_events(text, model, ANSWER_RESPONSE_ID)


# -- the run -------------------------------------------------------------------------------


def loop_run(messages: list[Message]) -> tuple[int, tuple[str, ...]]:
    """(length of the run of identical tool steps at the end of `messages`, the tools of the newest step)."""
    newest: _Step | None = None
    count = 0
    masked: dict[str, str] = {}  # one masking per distinct result text
    for step in _steps(messages):
        if newest is None:
            newest = step
        elif not step.same_as(newest, masked):
            break
        count += 1
    return count, newest.tools if newest is not None else ()


class _Step:
    """One tool round trip: an assistant message's calls and their results.

    Compared in three stages, cheapest first: the calls alone, then the
    (call, result) pairs with the results as sent, and only when those differ
    with the results masked. Pairs are sorted, so parallel calls compare in
    any order.
    """

    __slots__ = ("calls", "tools", "_pairs", "_extras", "_raw", "_masked")

    def __init__(self, pairs: list[tuple[tuple, ToolResultPart]], extras: list[tuple], tools: tuple[str, ...]) -> None:
        self.calls = tuple(sorted(ck for ck, _ in pairs))
        self.tools = tools
        self._pairs = pairs
        self._extras = tuple(sorted(extras))
        self._raw: tuple | None = None
        self._masked: tuple | None = None

    def same_as(self, other: _Step, masked: dict[str, str]) -> bool:
        if self.calls != other.calls or self._extras != other._extras:
            return False
        return self._key(None) == other._key(None) or self._key(masked) == other._key(masked)

    def _key(self, masked: dict[str, str] | None) -> tuple:
        key = self._raw if masked is None else self._masked
        if key is None:
            key = tuple(sorted((ck, _result_key(r, masked)) for ck, r in self._pairs))
            if masked is None:
                self._raw = key
            else:
                self._masked = key
        return key


def _steps(messages: list[Message]):
    """The complete tool steps at the end of `messages`, newest first, up to the
    first message pair that is not one (see the module docstring)."""
    i = len(messages) - 1
    while i >= 1:
        results, calls = messages[i], messages[i - 1]
        if results.role != "user" or calls.role != "assistant":
            return
        step = _step(calls, results)
        if step is None:
            return
        yield step
        i -= 2


def _step(calls_msg: Message, results_msg: Message) -> _Step | None:
    calls = [p for p in calls_msg.parts if isinstance(p, ToolCallPart)]
    if not calls:
        return None
    results: list[ToolResultPart] = []
    extras: list[tuple] = []  # images and documents beside the results (Gemini CLI's binary file reads)
    for part in results_msg.parts:
        if isinstance(part, ToolResultPart):
            results.append(part)
        elif isinstance(part, TextPart):
            if _is_user_text(part.text):
                return None  # the user spoke after these results
        elif isinstance(part, (ImagePart, DocumentPart)):
            extras.append(_media_key(part))
    pairs = _pair(calls, results)
    if pairs is None:
        return None
    return _Step([(_call_key(c), r) for c, r in pairs], extras, tuple(c.name for c in calls))


def _pair(calls: list[ToolCallPart], results: list[ToolResultPart]) -> list[tuple[ToolCallPart, ToolResultPart]] | None:
    """Each call with its result, or None when a call has none (or the results do not fit the calls)."""
    if len(results) != len(calls):
        return None
    ids = [c.call_id for c in calls]
    if all(ids) and len(set(ids)) == len(ids):
        by_id = {r.call_id: r for r in results}
        if len(by_id) == len(results) and by_id.keys() == set(ids):
            return [(c, by_id[c.call_id]) for c in calls]
        if any(r.call_id for r in results):
            return None  # ids that do not match: not this step's results
    return list(zip(calls, results))


def _is_user_text(text: str) -> bool:
    """True when `text` holds anything besides `<system-reminder>` blocks and white space."""
    while True:
        start = text.find(_REMINDER_OPEN)
        if start < 0:
            return bool(text.strip())
        if text[:start].strip():
            return True
        end = text.find(_REMINDER_CLOSE, start)
        if end < 0:
            return False  # an unclosed reminder runs to the end
        text = text[end + len(_REMINDER_CLOSE) :]


def _squash(text: str) -> str:
    return " ".join(text.split())


def _call_key(call: ToolCallPart) -> tuple[str, str, str]:
    if call.tool_kind == "custom":
        return ("custom", call.name, _squash(call.arguments_json))
    try:
        value = json.loads(call.arguments_json)
    except ValueError:
        return ("text", call.name, _squash(call.arguments_json))
    return ("json", call.name, json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def _masked(text: str, masked: dict[str, str] | None) -> str:
    if masked is None:
        return text
    out = masked.get(text)
    if out is None:
        out = masked[text] = mask_volatile(text)
    return out


def _media_key(part: ImagePart | DocumentPart) -> tuple[str, str, str]:
    return (type(part).__name__, part.media_type, part.data or part.url)


def _result_key(result: ToolResultPart, masked: dict[str, str] | None) -> tuple:
    """(error flag, text, media) of a result; the text masked unless `masked` is None."""
    if isinstance(result.content, str):
        return (result.is_error, _masked(result.content, masked), ())
    texts = [p.text for p in result.content if isinstance(p, TextPart)]
    media = tuple(_media_key(p) for p in result.content if isinstance(p, (ImagePart, DocumentPart)))
    return (result.is_error, _masked("\n".join(texts), masked), media)


def _tool_names(tools: tuple[str, ...]) -> str:
    names = list(dict.fromkeys(tools))  # unique, in call order
    if len(names) <= 1:
        return names[0] if names else ""
    return ", ".join(names[:-1]) + " and " + names[-1]
