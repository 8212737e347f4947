"""One small spec per agent: binary, install hint, protocol, native upstream,
native key variables, and how to point it at the proxy.

No I/O here except reading what the caller passes in; `session.py` spawns.
"""

from __future__ import annotations

from agentwrap.agents.base import AgentSpec, Wiring
from agentwrap.agents.claude import CLAUDE
from agentwrap.agents.codex import CODEX
from agentwrap.agents.gemini import GEMINI

AGENTS: dict[str, AgentSpec] = {a.name: a for a in (CLAUDE, CODEX, GEMINI)}

__all__ = ["AGENTS", "AgentSpec", "Wiring", "CLAUDE", "CODEX", "GEMINI"]
