"""Replay serves exactly what the agent received: the recorded agent leg, byte for byte,
whatever made it (a failover after a translated attempt's error body was read, a guard's
decision), and the replay's proxy acts on none of it again.

A real proxy records against real loopback upstreams; then a proxy built as
`agentwrap replay` builds it (`replay_plan`, `bind_proxy(replay=...)`) serves the
recording; httpx reads the raw bytes both times.
"""

from __future__ import annotations

import json
import os

import httpx

from agentwrap.agents import AGENTS
from agentwrap.backends.replay import RecordedExchange, ReplayBackend
from agentwrap.capture.reader import read_bundle
from agentwrap.capture.recorder import Capture, Recorder
from agentwrap.session import SessionOptions, bind_proxy, replay_plan
from tests.conftest import write_profile
from tests.support.guard_upstream import GuardUpstream, loop_events

ENV = {**os.environ, "UP_KEY": "replay-legs-key-0123"}
BODY = json.dumps({"model": "claude-test", "max_tokens": 256, "stream": True,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()


def _post(base_url: str) -> tuple[int, bytes]:
    with httpx.stream("POST", base_url + "/v1/messages", content=BODY, headers={"content-type": "application/json"},
                      timeout=30) as r:
        return r.status_code, r.read()


def _recorded(path) -> tuple[list[RecordedExchange], list]:
    exchanges = read_bundle(str(path)).exchanges
    return [RecordedExchange(i, ex.request.method, ex.path, ex.request.body.bytes, ex.status,
                             list((ex.agent_response or ex.upstream_response).headers), ex.agent_stream())
            for i, ex in enumerate(exchanges)], exchanges


def _replayed(recorded: list[RecordedExchange], tmp_path) -> tuple[int, bytes, ReplayBackend, list]:
    env = dict(os.environ)
    plan = replay_plan(AGENTS["claude"], SessionOptions(agent="claude", replay_of="<replay>"), env)
    backend = ReplayBackend(recorded)
    bound = bind_proxy(AGENTS["claude"], plan, env, replay=backend)
    path = tmp_path / "replayed.cbor"
    rec = Recorder(str(path), {"agent": "claude"}, [bound.secret])
    bound.dispatcher.addons.add(Capture(rec))
    bound.server.start()
    try:
        status, data = _post(bound.base_url)
    finally:
        bound.server.stop(grace_s=0.5)
        rec.close({})
    return status, data, backend, read_bundle(str(path)).exchanges


def test_a_failover_after_a_translated_error_body_replays_only_the_answer(start_proxy, upstream_factory, tmp_path):
    """Attempt 1 (an OpenAI Chat backend: translated) answers 503 and its body is read to
    translate it; attempt 2 (Anthropic: pass-through) answers. The agent got attempt 2's stream."""
    a = upstream_factory('[[turns]]\ntext = "from a"\n', default_protocol="openai_chat")
    b = upstream_factory('[[turns]]\ntext = "from b, the answer"\n')
    a.fail_next(503, {"error": {"message": "busy", "type": "server_error"}})
    profile = write_profile(
        tmp_path / "p.toml",
        f'[backends.a]\nprotocol = "openai_chat"\nbase_url = "{a.url}/v1"\napi_key_env = "UP_KEY"\n'
        f'[backends.b]\nprotocol = "anthropic_messages"\nbase_url = "{b.url}"\napi_key_env = "UP_KEY"\n'
        '[[routes]]\nbackend = "a"\nfallbacks = ["b"]\n',
    )
    proxy = start_proxy("claude", profile, ENV)
    path = tmp_path / "run.cbor"
    rec = Recorder(str(path), {"agent": "claude"}, [proxy.secret, ENV["UP_KEY"]])
    proxy.dispatcher.addons.add(Capture(rec))
    status, got = _post(proxy.base_url)
    rec.close({})
    assert status == 200 and b'"text":"from b' in got and b"from a" not in got
    recorded, (ex,) = _recorded(path)
    assert [r.status for r in ex.upstream_responses] == [503, 200] and b"busy" in ex.response_body  # the 503 body was read
    assert b"".join(ex.agent_stream()) == got

    status2, again, backend, _ = _replayed(recorded, tmp_path)
    assert (status2, again) == (200, got)
    assert backend.divergences == [] and backend.served == 1


def test_a_loop_a_guard_only_noted_replays_whole_and_no_guard_acts_again(start_proxy, tmp_path):
    """The recorded profile's loop guard only warns (`action = "warn"`): the agent got the
    whole looping answer, so the replay serves it whole; a replay proxy that ran its own
    guards would cut it."""
    unit = "I will check the configuration file once more to be sure.\n"
    with GuardUpstream(lambda req: loop_events("Let me look.\n", unit, 300)) as up:
        profile = write_profile(tmp_path / "p.toml", f'[backends.up]\nprotocol = "anthropic_messages"\n'
                                                     f'base_url = "{up.url}"\napi_key_env = "UP_KEY"\n'
                                                     '[guards.loop]\naction = "warn"\n')
        proxy = start_proxy("claude", profile, ENV)
        path = tmp_path / "run.cbor"
        rec = Recorder(str(path), {"agent": "claude"}, [proxy.secret, ENV["UP_KEY"]])
        proxy.dispatcher.addons.add(Capture(rec))
        status, got = _post(proxy.base_url)
        rec.close({})
    assert status == 200 and got.count(unit.strip().encode()) == 300  # noted, not cut
    recorded, (ex,) = _recorded(path)
    assert [g.get("guard") for g in ex.guards] == ["loop"]
    assert b"".join(ex.agent_stream()) == got

    status2, again, backend, (replayed,) = _replayed(recorded, tmp_path)
    assert (status2, again) == (200, got)
    assert replayed.guards == [] and backend.divergences == []
