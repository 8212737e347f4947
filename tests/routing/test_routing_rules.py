"""Route rules on plain data: every `when` key, overrides, reasons."""

from __future__ import annotations

import pytest

from agentwrap.config import BackendConfig, ProfileConfig, RouteConfig, WhenConfig
from agentwrap.protocols.neutral.summary import RequestSummary, ToolSpec
from agentwrap.routing import RequestFacts, Router, SessionOverrides, choose_route, needs_summary


def summary(*, tools: bool = False, thinking: bool = False, json_mode: bool = False, text: str | None = "hi") -> RequestSummary:
    return RequestSummary(
        model=None,
        stream=not json_mode,
        assistant_turns=0,
        tools=(ToolSpec("Bash"),) if tools else (),
        json_schema={"type": "object"} if json_mode else None,
        json_mode=json_mode,
        last_user_text=text,
        thinking=thinking,
    )


def profile(*routes: RouteConfig, agent_env: dict | None = None) -> ProfileConfig:
    names = {r.backend for r in routes} | {"main"}
    backends = {n: BackendConfig(name=n, protocol="anthropic_messages", base_url=f"http://{n}") for n in sorted(names)}
    return ProfileConfig(name="t", source="<test>", backends=backends, routes=(*routes, RouteConfig("main")), agent_env=agent_env or {})


def rule(backend: str, **when) -> RouteConfig:
    return RouteConfig(backend=backend, when=WhenConfig(**when))


KB = 1024

# (when, facts, should match, reason fragment)
CASES = [
    ({"agent": "claude"}, RequestFacts("claude", "m"), True, "agent=claude"),
    ({"agent": "claude"}, RequestFacts("codex", "m"), False, None),
    ({"model": "claude-opus-*"}, RequestFacts("claude", "claude-opus-4-1"), True, "model 'claude-opus-4-1' matches claude-opus-*"),
    ({"model": "claude-opus-*"}, RequestFacts("claude", "claude-sonnet-4"), False, None),
    ({"model": "gpt-5"}, RequestFacts("codex", "gpt-5"), True, "model = 'gpt-5'"),
    ({"model": "*"}, RequestFacts("codex", None), False, None),
    ({"model": "Claude-*"}, RequestFacts("claude", "claude-x"), False, None),  # globs are case-sensitive
    # background: Claude Code's haiku model, by glob or by its configured variable
    ({"background": True}, RequestFacts("claude", "claude-haiku-4-5-20251001"), True, "matches *haiku*"),
    ({"background": True}, RequestFacts("claude", "claude-3-5-HAIKU"), True, "matches *haiku*"),
    ({"background": True}, RequestFacts("claude", "claude-sonnet-4-5"), False, None),
    ({"background": False}, RequestFacts("claude", "claude-sonnet-4-5"), True, "not background"),
    ({"background": False}, RequestFacts("claude", "claude-haiku-4-5"), False, None),
    ({"background": True}, RequestFacts("claude", "glm-4.5-air"), True, "the agent's haiku model"),  # via agent_env below
    # background: Gemini CLI's routing classifier
    ({"background": True}, RequestFacts("gemini", "gemini-2.5-flash-lite", summary=summary(json_mode=True)), True, "routing classifier"),
    ({"background": True}, RequestFacts("gemini", "gemini-2.5-flash-lite", summary=summary()), False, None),
    ({"background": True}, RequestFacts("gemini", "gemini-2.5-pro", summary=summary(json_mode=True)), False, None),
    # tools / thinking from the summary; no summary counts as false
    ({"tools": True}, RequestFacts("claude", "m", summary=summary(tools=True)), True, "tools=True"),
    ({"tools": True}, RequestFacts("claude", "m", summary=summary()), False, None),
    ({"tools": False}, RequestFacts("claude", "m"), True, "tools=False"),
    ({"thinking": True}, RequestFacts("claude", "m", summary=summary(thinking=True)), True, "thinking=True"),
    ({"thinking": True}, RequestFacts("claude", "m"), False, None),
    # min_input_tokens: body bytes / 4
    ({"min_input_tokens": 1000}, RequestFacts("claude", "m", body_bytes=4 * KB), True, "~1024 input tokens >= 1000"),
    ({"min_input_tokens": 1000}, RequestFacts("claude", "m", body_bytes=3999), False, None),
    ({"min_input_tokens": 1000}, RequestFacts("claude", "m", body_bytes=4000), True, "~1000 input tokens"),
    # subagent headers
    ({"subagent": True}, RequestFacts("claude", "m", headers={"x-claude-code-agent-id": "a1"}), True, "subagent 'a1'"),
    ({"subagent": True}, RequestFacts("claude", "m", headers={"x-claude-code-parent-agent-id": "p"}), True, "subagent"),
    ({"subagent": True}, RequestFacts("claude", "m"), False, None),
    ({"subagent": False}, RequestFacts("claude", "m"), True, "main thread"),
    ({"subagent": False}, RequestFacts("claude", "m", headers={"x-claude-code-agent-id": "a1"}), False, None),
    ({"subagent": "review*"}, RequestFacts("claude", "m", headers={"x-claude-code-agent-id": "reviewer-7"}), True, "'reviewer-7' matches review*"),
    ({"subagent": "review*"}, RequestFacts("claude", "m", headers={"x-claude-code-agent-id": "explore-1"}), False, None),
    ({"subagent": "review*"}, RequestFacts("claude", "m"), False, None),
    # every given condition must hold
    ({"agent": "claude", "tools": True, "min_input_tokens": 10}, RequestFacts("claude", "m", body_bytes=400, summary=summary(tools=True)), True, "agent=claude, tools=True, ~100 input tokens"),
    ({"agent": "claude", "tools": True, "min_input_tokens": 10}, RequestFacts("claude", "m", body_bytes=4, summary=summary(tools=True)), False, None),
]


@pytest.mark.parametrize(("when", "facts", "matches", "fragment"), CASES)
def test_when_conditions(when, facts, matches, fragment) -> None:
    p = profile(rule("special", **when), agent_env={"claude": {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.5-air"}})
    decision = Router(p, agent=facts.agent).choose(facts)
    assert decision is not None
    if matches:
        assert (decision.backend, decision.route_index) == ("special", 0)
        assert decision.reason.startswith("routes[0]: ") and fragment in decision.reason, decision.reason
    else:
        assert (decision.backend, decision.route_index, decision.reason) == ("main", 1, "routes[1]: always")


def test_first_matching_route_wins_and_carries_model_and_fallbacks() -> None:
    p = profile(
        RouteConfig("cheap", model="small-model", when=WhenConfig(background=True), fallbacks=("main",)),
        RouteConfig("long", when=WhenConfig(min_input_tokens=100_000)),
        RouteConfig("strong", model="big-model", when=WhenConfig(thinking=True), fallbacks=("long", "main")),
    )
    router = Router(p, agent="claude")
    d = router.choose(RequestFacts("claude", "claude-haiku-4-5", body_bytes=10**7))
    assert (d.backend, d.model, d.fallbacks) == ("cheap", "small-model", ("main",))
    d = router.choose(RequestFacts("claude", "claude-opus-4", body_bytes=10**7, summary=summary(thinking=True)))
    assert (d.backend, d.model) == ("long", None)
    d = router.choose(RequestFacts("claude", "claude-opus-4", summary=summary(thinking=True)))
    assert (d.backend, d.model, d.fallbacks) == ("strong", "big-model", ("long", "main"))


def test_no_matching_route_is_none() -> None:
    p = ProfileConfig(name="t", source="<t>", backends={"a": BackendConfig("a")}, routes=(rule("a", agent="codex"),))
    assert choose_route(p, RequestFacts("claude", "m")) is None


def test_background_models_come_from_the_agents_environment() -> None:
    p = profile(rule("cheap", background=True))
    facts = RequestFacts("claude", "my-small-model")
    assert Router(p, agent="claude").choose(facts).backend == "main"
    assert Router(p, agent="claude", env={"ANTHROPIC_DEFAULT_HAIKU_MODEL": "my-small-model"}).choose(facts).backend == "cheap"
    assert Router(p, agent="claude", env={"ANTHROPIC_SMALL_FAST_MODEL": "my-small-model"}).choose(facts).backend == "cheap"


# -- overrides ---------------------------------------------------------------------------------


OVERRIDE_PROFILE = profile(
    RouteConfig("cheap", model="tiny", when=WhenConfig(background=True)),
    RouteConfig("opus", when=WhenConfig(model="*opus*")),
    RouteConfig("main", model="rewritten"),
)


@pytest.mark.parametrize(
    ("overrides", "model", "expected", "fragment"),
    [
        (None, "claude-sonnet-4", ("main", "rewritten", 2), "routes[2]: always"),
        (SessionOverrides(model="claude-opus-4"), "claude-sonnet-4", ("opus", "claude-opus-4", 1), "::model(claude-opus-4) override"),
        (SessionOverrides(model="local-x"), "claude-sonnet-4", ("main", "local-x", 2), "::model(local-x) override"),
        (SessionOverrides(backend="cheap"), "claude-sonnet-4", ("cheap", None, -1), "::backend(cheap) override"),
        (SessionOverrides(backend="cheap", model="m2"), "claude-sonnet-4", ("cheap", "m2", -1), "::model(m2) override"),
        (SessionOverrides(backend="gone"), "claude-sonnet-4", ("main", "rewritten", 2), "routes[2]"),  # unknown backend: ignored
        (SessionOverrides(profile="other"), "claude-sonnet-4", ("main", "rewritten", 2), "routes[2]"),  # the dispatcher swaps profiles
        # background requests keep their own route
        (SessionOverrides(model="claude-opus-4", backend="opus"), "claude-haiku-4-5", ("cheap", "tiny", 0), "routes[0]"),
    ],
)
def test_overrides(overrides, model, expected, fragment) -> None:
    d = choose_route(OVERRIDE_PROFILE, RequestFacts("claude", model), overrides=overrides)
    assert (d.backend, d.model, d.route_index) == expected
    assert fragment in d.reason
    if d.route_index == -1:
        assert d.fallbacks == ()


# -- summaries and the older call form -----------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "agent", "needed"),
    [
        (None, None, False),
        ({"agent": "claude", "model": "x", "min_input_tokens": 5, "subagent": True}, None, False),
        ({"tools": True}, "claude", True),
        ({"thinking": False}, "codex", True),
        ({"background": True}, "claude", False),  # Claude Code's haiku check needs only the model
        ({"background": True}, "gemini", True),  # Gemini CLI's classifier is recognised by JSON mode
        ({"background": True}, None, True),
    ],
)
def test_needs_summary(when, agent, needed) -> None:
    p = profile(rule("x", **when)) if when else profile()
    assert needs_summary(p, agent) is needed
    assert Router(p, agent=agent or "gemini").needs_summary is needs_summary(p, agent or "gemini")


def test_tools_thinking_and_agent_rules_in_order() -> None:
    p = profile(rule("t", tools=True), rule("k", thinking=True), rule("o", agent="codex", model="gpt-*"))
    assert choose_route(p, RequestFacts("claude", "m", summary=summary(tools=True))).backend == "t"
    assert choose_route(p, RequestFacts("claude", "m", summary=summary(thinking=True))).backend == "k"
    assert choose_route(p, RequestFacts("codex", "gpt-5")).backend == "o"
    assert choose_route(p, RequestFacts("claude", None)).backend == "main"


def test_facts_from_wire_headers() -> None:
    facts = RequestFacts.from_wire(
        "claude",
        "m",
        [(b"X-Claude-Code-Agent-Id", b"reviewer"), (b"content-type", b"application/json"), ("x-claude-code-parent-agent-id", "main")],
        b"x" * 4000,
    )
    assert facts.agent_id == "reviewer" and facts.is_subagent and facts.estimated_input_tokens == 1000
    assert dict(facts.headers) == {"x-claude-code-agent-id": "reviewer", "x-claude-code-parent-agent-id": "main"}
    assert RequestFacts.from_wire("claude", "m", [], 12).body_bytes == 12
