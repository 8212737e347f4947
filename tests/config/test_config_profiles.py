"""Profiles from real TOML files: layers, project files, selection, ${VAR}, schema errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwrap.config import (
    ProfileCatalog,
    agent_environment,
    builtin_profiles_dir,
    find_project_file,
    load_profile,
    select_profile,
    user_profiles_dir,
)
from agentwrap.config.envref import EnvRefError, expand_refs
from agentwrap.errors import ConfigError

BUILTINS = ["anthropic", "openai", "gemini", "openrouter", "ollama", "deepseek", "zai", "groq", "vllm", "offline"]

ANTHROPIC_BACKEND = '[backends.{name}]\nprotocol = "anthropic_messages"\nbase_url = "{url}"\n'


def user_profile(name: str, text: str) -> Path:
    d = user_profiles_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def project(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / ".agentwrap.toml"
    path.write_text(text, encoding="utf-8")
    return path


def one_backend(url: str, name: str = "b", extra: str = "") -> str:
    return ANTHROPIC_BACKEND.format(name=name, url=url) + extra


# -- built-ins ---------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_loads(name: str) -> None:
    profile = load_profile(name, env={"VLLM_MODEL": "my/model"}, cwd=Path("/"))
    assert profile.name == name and profile.source_kind == "built-in"
    assert profile.description
    assert profile.routes and all(r.backend in profile.backends for r in profile.routes)
    assert (builtin_profiles_dir() / f"{name}.toml").is_file()


@pytest.mark.parametrize(
    ("name", "agent_backend", "url", "key_env"),
    [
        ("openrouter", "openrouter", "https://openrouter.ai/api", "OPENROUTER_API_KEY"),
        ("deepseek", "deepseek", "https://api.deepseek.com/anthropic", "DEEPSEEK_API_KEY"),
        ("zai", "zai", "https://api.z.ai/api/anthropic", "ZAI_API_KEY"),
        ("ollama", "ollama", "http://localhost:11434", None),
    ],
)
def test_claude_capable_builtins_send_claude_to_an_anthropic_endpoint(name, agent_backend, url, key_env) -> None:
    from agentwrap.routing import RequestFacts, choose_route

    profile = load_profile(name, env={}, cwd=Path("/"))
    decision = choose_route(profile, RequestFacts("claude", "claude-sonnet-4-5"))
    backend = profile.backends[decision.backend]
    assert decision.backend == agent_backend
    assert backend.protocol == "anthropic_messages" and backend.base_url == url and backend.api_key_env == key_env


def test_builtin_env_defaults_and_required_variables() -> None:
    ollama = load_profile("ollama", env={}, cwd=Path("/"))
    assert {r.model for r in ollama.routes} == {"qwen3-coder"}
    assert {r.model for r in load_profile("ollama", env={"OLLAMA_MODEL": "llama9"}, cwd=Path("/")).routes} == {"llama9"}
    vllm = load_profile("vllm", env={"VLLM_MODEL": "m", "VLLM_BASE_URL": "http://gpu:9000/v1/"}, cwd=Path("/"))
    assert vllm.backends["vllm"].base_url == "http://gpu:9000/v1"
    with pytest.raises(ConfigError) as err:
        load_profile("vllm", env={}, cwd=Path("/"))
    assert "vllm.toml" in str(err.value) and "routes[0].model" in str(err.value) and "VLLM_MODEL" in str(err.value)


# -- layers and precedence -----------------------------------------------------------


def test_user_profile_beats_builtin_of_the_same_name(tmp_path: Path) -> None:
    user_profile("anthropic", one_backend("https://proxy.example", "mine"))
    profile = load_profile("anthropic", env={}, cwd=tmp_path)
    assert profile.source_kind == "user" and list(profile.backends) == ["mine"]


def test_project_inline_beats_user_and_extends_merges(tmp_path: Path) -> None:
    user_profile("work", one_backend("https://user.example", "main", '\n[[routes]]\nbackend = "main"\n'))
    root = tmp_path / "repo"
    project(
        root,
        '[profiles.work]\nextends = "work"\ndescription = "project tweak"\n'
        '[profiles.work.backends.main]\ntimeout_s = 5.0\n'
        '[profiles.other]\n[profiles.other.backends.x]\nprotocol = "openai_chat"\nbase_url = "http://127.0.0.1:1/v1"\n',
    )
    profile = load_profile("work", env={}, cwd=root)
    assert profile.source_kind == "project"
    assert profile.description == "project tweak"
    main = profile.backends["main"]
    assert main.base_url == "https://user.example" and main.timeout_s == 5.0  # merged key by key
    assert profile.source.endswith(".agentwrap.toml [profiles.work]")
    assert load_profile("other", env={}, cwd=root).backends["x"].protocol == "openai_chat"


def test_project_inline_without_extends_replaces_whole(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    project(root, '[profiles.anthropic]\n[profiles.anthropic.backends.local]\nprotocol = "anthropic_messages"\nbase_url = "http://127.0.0.1:9"\n')
    profile = load_profile("anthropic", env={}, cwd=root)
    assert list(profile.backends) == ["local"]


def test_extends_another_profile_and_lists_replace(tmp_path: Path) -> None:
    user_profile(
        "cheap",
        'extends = "anthropic"\n[backends.local]\nprotocol = "anthropic_messages"\nbase_url = "http://127.0.0.1:9"\n'
        '[[routes]]\nwhen = { background = true }\nbackend = "local"\n[[routes]]\nbackend = "anthropic"\n',
    )
    profile = load_profile("cheap", env={}, cwd=tmp_path)
    assert set(profile.backends) == {"anthropic", "local"}
    assert [r.backend for r in profile.routes] == ["local", "anthropic"]


def test_extends_loop_is_a_config_error(tmp_path: Path) -> None:
    user_profile("a", 'extends = "b"\n')
    user_profile("b", 'extends = "a"\n')
    with pytest.raises(ConfigError, match="loops back"):
        load_profile("a", env={}, cwd=tmp_path)


def test_project_file_is_found_walking_up(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    path = project(root, 'profile = "offline"\n')
    deep = root / "src" / "pkg" / "deeper"
    deep.mkdir(parents=True)
    assert find_project_file(deep) == path
    assert find_project_file(tmp_path) is None or find_project_file(tmp_path) != path


def test_nearest_project_file_wins(tmp_path: Path) -> None:
    outer = project(tmp_path / "outer", 'profile = "offline"\n')
    inner = project(tmp_path / "outer" / "inner", 'profile = "anthropic"\n')
    assert find_project_file(tmp_path / "outer" / "inner") == inner
    assert find_project_file(tmp_path / "outer") == outer


# -- selecting the profile for a session ------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    project(
        root,
        'profile = "anthropic"\n'
        '[agents.claude]\nprofile = "offline"\n'
        '[agents.gemini]\nprofile = "native"\n'
        '[agents.codex]\nprofile = "local.toml"\n',
    )
    (root / "local.toml").write_text(
        '[backends.l]\nprotocol = "openai_responses"\nbase_url = "http://127.0.0.1:9/v1"\n', encoding="utf-8"
    )
    (root / "sub").mkdir()
    return root


@pytest.mark.parametrize(
    ("agent", "flag", "env", "expected_name", "reason_part"),
    [
        ("claude", "openai", {"AGENTWRAP_PROFILE": "gemini"}, "openai", "--profile openai"),
        ("claude", None, {"AGENTWRAP_PROFILE": "gemini"}, "gemini", "AGENTWRAP_PROFILE=gemini"),
        ("claude", None, {"AGENTWRAP_PROFILE": ""}, "offline", "[agents.claude]"),
        ("claude", None, {}, "offline", "[agents.claude]"),
        ("codex", None, {}, "local", "[agents.codex]"),
        ("gemini", None, {}, None, "[agents.gemini]"),
        ("claude", "native", {}, None, "--profile native"),
    ],
)
def test_select_profile_precedence(repo: Path, agent, flag, env, expected_name, reason_part) -> None:
    profile, reason = select_profile(agent, flag, env, repo / "sub")
    assert (profile.name if profile else None) == expected_name
    assert reason_part in reason
    if profile is None:
        assert "native pass-through" in reason


def test_select_profile_top_level_default(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    path = project(root, 'profile = "anthropic"\n')
    profile, reason = select_profile("claude", None, {}, root)
    assert profile is not None and profile.name == "anthropic"
    assert reason.startswith(f"{path} profile")


def test_no_selection_anywhere_is_native(tmp_path: Path) -> None:
    profile, reason = select_profile("claude", None, {}, tmp_path)
    assert profile is None and "native pass-through" in reason


def test_project_file_naming_a_missing_profile_says_who_chose_it(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    path = project(root, '[agents.claude]\nprofile = "nope"\n')
    with pytest.raises(ConfigError) as err:
        select_profile("claude", None, {}, root)
    msg = str(err.value)
    assert 'Profile "nope" not found' in msg and str(path) in msg and "\n" not in msg


def test_flag_can_name_a_project_inline_profile(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    project(root, '[profiles.local]\n[profiles.local.backends.x]\nprotocol = "anthropic_messages"\nbase_url = "http://127.0.0.1:9"\n')
    profile, reason = select_profile("claude", "local", {}, root)
    assert profile is not None and profile.source_kind == "project" and reason.startswith("--profile local")


# -- ${VAR} ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("plain", {}, "plain"),
        ("${A}", {"A": "x"}, "x"),
        ("http://${HOST}:${PORT:-8080}/v1", {"HOST": "h"}, "http://h:8080/v1"),
        ("${A:-}", {}, ""),
        ("${A:-d}", {"A": ""}, "d"),
        ("cost $$5", {}, "cost $5"),
        ("$HOME stays", {}, "$HOME stays"),
    ],
)
def test_expand_refs(value, env, expected) -> None:
    assert expand_refs(value, env) == expected


@pytest.mark.parametrize(("value", "fragment"), [("${MISSING}", "MISSING is not set"), ("${bad-name}", "malformed"), ("${A", "malformed")])
def test_expand_refs_errors(value, fragment) -> None:
    with pytest.raises(EnvRefError, match=fragment):
        expand_refs(value, {})


def test_env_refs_in_base_url_headers_and_cmd(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[backends.b]\nprotocol = "openai_chat"\nbase_url = "https://${GW_HOST}/v1"\n'
        'api_key_cmd = "printf %s ${KEY_NAME}"\nheaders = { "X-Team" = "${TEAM}", "X-Plain" = "p" }\n'
        '[agent_env.claude]\nANTHROPIC_MODEL = "${MAIN_MODEL:-big}"\nCLAUDE_CODE_MAX_CONTEXT_TOKENS = 100000\n',
        encoding="utf-8",
    )
    env = {"GW_HOST": "gw.example", "KEY_NAME": "k", "TEAM": "core"}
    profile = load_profile(str(path), env=env)
    b = profile.backends["b"]
    assert b.base_url == "https://gw.example/v1"
    assert dict(b.headers) == {"X-Team": "core", "X-Plain": "p"}
    assert b.api_key_cmd == "printf %s k"
    assert profile.agent_env == {"claude": {"ANTHROPIC_MODEL": "big", "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "100000"}}
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), env={**env, "TEAM": ""})
    assert str(err.value).startswith(f"{path}: backends.b.headers.X-Team: environment variable TEAM is not set")


def test_expanded_values_cannot_smuggle_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[backends.b]\nprotocol = "openai_chat"\nbase_url = "http://h/v1"\nheaders = { "X-Team" = "${TEAM}" }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="backends.b.headers.X-Team: contains a line break"):
        load_profile(str(path), env={"TEAM": "a\r\nX-Evil: 1"})


def test_expanded_base_url_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[backends.b]\nprotocol = "openai_chat"\nbase_url = "${URL}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="backends.b.base_url: must start with http"):
        load_profile(str(path), env={"URL": "ftp://x"})


# -- agent environment ---------------------------------------------------------------------


def test_backend_max_output_tokens_is_loaded_and_merged(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(one_backend("http://127.0.0.1:9", extra="max_output_tokens = 8192\n") + one_backend("http://127.0.0.1:8", name="c"), encoding="utf-8")
    profile = load_profile(str(path), env={})
    assert profile.backends["b"].max_output_tokens == 8192
    assert profile.backends["c"].max_output_tokens is None
    over = tmp_path / "over.toml"
    over.write_text('extends = "vllm"\n[backends.vllm]\nmax_output_tokens = 4096\n', encoding="utf-8")
    merged = load_profile(str(over), env={"VLLM_MODEL": "m"}, cwd=tmp_path)
    assert merged.backends["vllm"].max_output_tokens == 4096
    assert merged.backends["vllm"].protocol == "openai_chat" and merged.backends["vllm_responses"].max_output_tokens is None


def test_agent_environment_derives_context_window(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[backends.b]\nprotocol = "anthropic_messages"\nbase_url = "http://127.0.0.1:9"\n'
        'models = { "glm-4.6" = { context_window = 128000 }, "glm-4.5-air" = { context_window = 64000, max_output_tokens = 8000 } }\n'
        '[agent_env.claude]\nANTHROPIC_MODEL = "glm-4.6"\nANTHROPIC_DEFAULT_HAIKU_MODEL = "glm-4.5-air"\n',
        encoding="utf-8",
    )
    profile = load_profile(str(path), env={})
    assert profile.backends["b"].models["glm-4.5-air"].max_output_tokens == 8000
    assert agent_environment(profile, "claude") == {
        "ANTHROPIC_MODEL": "glm-4.6",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.5-air",
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "128000",
    }
    assert agent_environment(profile, "codex") == {}


def test_agent_environment_uses_the_smallest_default_model_window(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        'extends = "zai"\n[agent_env.claude]\nANTHROPIC_DEFAULT_OPUS_MODEL = "big"\nANTHROPIC_DEFAULT_SONNET_MODEL = "mid"\n'
        '[backends.zai.models]\nbig = { context_window = 400000 }\nmid = { context_window = 200000 }\n',
        encoding="utf-8",
    )
    env = agent_environment(load_profile(str(path), env={}, cwd=tmp_path), "claude")
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "200000"


def test_agent_environment_uses_the_catch_all_route_model(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[backends.b]\nprotocol = "anthropic_messages"\nbase_url = "http://127.0.0.1:9"\nmodels = { "local" = { context_window = 32768 } }\n'
        '[[routes]]\nwhen = { background = true }\nbackend = "b"\nmodel = "tiny"\n'
        '[[routes]]\nwhen = { agent = "claude" }\nbackend = "b"\nmodel = "local"\n',
        encoding="utf-8",
    )
    assert agent_environment(load_profile(str(path), env={}), "claude") == {"CLAUDE_CODE_MAX_CONTEXT_TOKENS": "32768"}


# -- errors: one line, naming the file, the field and the fix ------------------------------------

BASE = '[backends.x]\nprotocol = "anthropic_messages"\nbase_url = "http://h"\n'


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ('[backends.x]\nprotocol = "anthropic"\nbase_url = "http://h"\n', "backends.x.protocol", "anthropic_messages"),
        ('[backends.x]\nprotocol = "anthropic_messages"\n', "backends.x.base_url", "needs `base_url`"),
        (BASE + 'base_ur = "typo"\n', "backends.x.base_ur", "allowed here: type, protocol, base_url"),
        (BASE + "timeout_s = 0\n", "backends.x.timeout_s", "greater than 0"),
        (BASE + 'timeout_s = "5"\n', "backends.x.timeout_s", "valid number"),
        (BASE + 'api_key_env = "sk-abc-123"\n', "backends.x.api_key_env", "not an environment variable name"),
        (BASE + 'api_key_env = "K"\napi_key_cmd = "echo k"\n', "backends.x.api_key_cmd", "either api_key_env or api_key_cmd"),
        (BASE + 'auth_scheme = "basic"\n', "backends.x.auth_scheme", "'bearer' or 'x-api-key'"),
        (BASE + 'headers = { "Bad Header" = "v" }\n', "backends.x.headers", "not a valid header name"),
        (BASE + "max_output_tokens = 0\n", "backends.x.max_output_tokens", "greater than or equal to 1"),
        (BASE + "max_output_tokens = -1\n", "backends.x.max_output_tokens", "greater than or equal to 1"),
        (BASE + 'max_output_tokens = "big"\n', "backends.x.max_output_tokens", "valid integer (got 'big')"),
        (BASE + "max_output_tokens = 8192.0\n", "backends.x.max_output_tokens", "valid integer (got 8192.0)"),
        (BASE + "max_output_tokens = true\n", "backends.x.max_output_tokens", "valid integer (got True)"),
        (BASE + "max_output_token = 8192\n", "backends.x.max_output_token", "timeout_s, max_output_tokens, script"),
        (BASE + 'models = { "m" = { context_window = -1 } }\n', "backends.x.models.m.context_window", "greater than or equal to 1"),
        (BASE + 'models = { "m" = { window = 5 } }\n', "backends.x.models.m.window", "allowed here: context_window, max_output_tokens"),
        (BASE + '[[routes]]\nbackend = "y"\n', "routes[0].backend", "'y', which is not defined (known: x)"),
        (BASE + '[[routes]]\nbackend = "x"\nfallbacks = ["z"]\n', "routes[0].fallbacks", "'z', which is not defined"),
        (BASE + "[[routes]]\nmodel = \"m\"\n", "routes[0].backend", "required key is missing"),
        (BASE + '[[routes]]\nbackend = "x"\nwhen = { agnet = "claude" }\n', "routes[0].when.agnet", "allowed here: agent, model"),
        (BASE + '[[routes]]\nbackend = "x"\nwhen = { agent = "cursor" }\n', "routes[0].when.agent", "'claude', 'codex' or 'gemini'"),
        (BASE + '[[routes]]\nbackend = "x"\nwhen = { subagent = 3 }\n', "routes[0].when.subagent", "must be true, false or an agent-id glob"),
        (BASE + '[[routes]]\nbackend = "x"\nwhen = { min_input_tokens = "big" }\n', "routes[0].when.min_input_tokens", "valid integer"),
        (BASE + '[[routes]]\nbackend = "x"\nwhen = { background = "yes" }\n', "routes[0].when.background", "valid boolean"),
        (BASE + '[agent_env.claude]\nANTHROPIC_MODLE = "m"\n', "agent_env.claude.ANTHROPIC_MODLE", "allowed here: ANTHROPIC_MODEL"),
        (BASE + '[agent_env.codex]\nX = "m"\n', "agent_env.codex", "allowed here: claude"),
        ('[backends.s]\ntype = "scripted"\n', "backends.s.script", "needs `script"),
        ('[backends.s]\ntype = "scripted"\nscript = "nowhere.toml"\n', "backends.s.script", "not found"),
        ('description = "no backends"\n', "backends", "at least one"),
        ('extends = "Bad Name"\n' + BASE, "extends", "not a valid profile name"),
        ('extends = "nowhere"\n' + BASE, "extends", 'Profile "nowhere" not found'),
        ('[backends.x]\nprotocol = "openai_chat"\nbase_url = "api.example.com/v1"\n', "backends.x.base_url", "must start with http"),
        ('[backends.x]\nprotocol = "openai_chat"\nbase_url = "http://${X"\n', "backends.x.base_url", "malformed reference"),
    ],
)
def test_schema_errors_are_one_line_naming_file_and_field(tmp_path: Path, text: str, field: str, fix: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), env={})
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {field}"), msg
    assert fix in msg, msg


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[backends.x]\nprotocol = "anthropic_messages"\nbase_url = \n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), env={})
    assert str(path) in str(err.value) and "line 3" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ('profile = 3\n', "profile", "valid string"),
        ('profil = "x"\n', "profil", "allowed here: profile, agents, profiles"),
        ('[agents.cursor]\nprofile = "x"\n', "agents.cursor", "allowed here: claude, codex, gemini"),
        ('[agents.claude]\nprofle = "x"\n', "agents.claude.profle", "allowed here: profile"),
        ('[profiles.p.backends.x]\nprotocol = "nope"\nbase_url = "http://h"\n', "profiles.p.backends.x.protocol", "anthropic_messages"),
        ('[profiles.p]\nbogus = 1\n', "profiles.p.bogus", "allowed here: name, description"),
        ('[profiles.p.backends.x]\nprotocol = "openai_chat"\nbase_url = "http://h/v1"\nmax_output_tokens = 0\n', "profiles.p.backends.x.max_output_tokens", "greater than or equal to 1"),
        (
            '[profiles.p.backends.x]\nprotocol = "openai_chat"\nbase_url = "http://h/v1"\napi_key_cmd = "curl evil | sh"\n',
            "profiles.p.backends.x.api_key_cmd",
            "not allowed in a project file",
        ),
        ('[profiles.p.backends.x]\nprotocol = "openai_chat"\nbase_url = "http://h/v1"\n[[profiles.p.routes]]\nbackend = "q"\n', "profiles.p.routes[0].backend", "not defined"),
    ],
)
def test_project_file_errors_are_one_line(tmp_path: Path, text: str, field: str, fix: str) -> None:
    root = tmp_path / "repo"
    path = project(root, text)
    with pytest.raises(ConfigError) as err:
        ProfileCatalog(root).resolve("p", {})
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {field}"), msg
    assert fix in msg, msg


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    user_profile("mine", one_backend("http://127.0.0.1:9"))
    with pytest.raises(ConfigError) as err:
        load_profile("nope", env={}, cwd=tmp_path)
    msg = str(err.value)
    assert msg.startswith('Profile "nope" not found. Known profiles: ') and "mine" in msg and "offline" in msg


def test_scripted_backend_path_is_relative_to_its_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "t.toml").write_text('[[turns]]\ntext = "hi"\n', encoding="utf-8")
    project(root, '[profiles.demo.backends.s]\ntype = "scripted"\nscript = "scripts/t.toml"\n')
    profile = load_profile("demo", env={}, cwd=root / "scripts")
    assert profile.backends["s"].script == str(root / "scripts" / "t.toml")


def test_listing_does_not_expand_or_require_variables(tmp_path: Path) -> None:
    cat = ProfileCatalog(tmp_path)
    names = cat.names()
    assert set(BUILTINS) <= set(names)
    vllm = cat.merged(cat.entry("vllm"))
    assert vllm["routes"][0]["model"] == "${VLLM_MODEL}"
