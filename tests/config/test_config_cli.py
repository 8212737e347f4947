"""`agentwrap profiles ...` through typer's runner: exit codes, stdout, stderr, JSON."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentwrap.config import builtin_profiles_dir, load_profile, user_profiles_dir
from agentwrap.profiles_cli import make_profiles_app, redact_header, redact_url

SECRET_ENV = "sk-env-secret-0001"
SECRET_LITERAL = "sk-literal-secret-0002"
SECRET_FILE = "sk-file-secret-0003"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET_ENV)
    app = make_profiles_app()
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def write_user(name: str, text: str) -> Path:
    d = user_profiles_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def no_secrets(*outputs: str) -> None:
    for out in outputs:
        for secret in (SECRET_ENV, SECRET_LITERAL, SECRET_FILE):
            assert secret not in out


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("agentwrap: ") and "\n" not in line and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in line, line


# -- list ------------------------------------------------------------------------------


def test_list_json_has_every_builtin(run) -> None:
    result = run("list", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1
    by_name = {p["name"]: p for p in doc["profiles"]}
    for name in ("anthropic", "openai", "gemini", "openrouter", "ollama", "deepseek", "zai", "groq", "vllm", "offline"):
        entry = by_name[name]
        assert entry["source"] == "built-in" and entry["description"] and entry["backends"]
        assert set(entry) == {"name", "source", "path", "description", "backends", "overrides"}
    assert by_name["deepseek"]["backends"][0] == {"name": "deepseek", "type": "http", "protocol": "anthropic_messages"}


def test_list_shows_user_and_project_layers(run, tmp_path: Path) -> None:
    write_user("anthropic", '[backends.mine]\nprotocol = "anthropic_messages"\nbase_url = "http://127.0.0.1:9"\n')
    write_user("solo", 'description = "mine alone"\n[backends.s]\nprotocol = "gemini"\nbase_url = "http://127.0.0.1:9"\n')
    (tmp_path / "work" / ".agentwrap.toml").write_text(
        '[profiles.solo]\nextends = "solo"\ndescription = "project tweak"\n', encoding="utf-8"
    )
    doc = json.loads(run("list", "--json").stdout)
    by_name = {p["name"]: p for p in doc["profiles"]}
    assert by_name["anthropic"]["source"] == "user" and by_name["anthropic"]["overrides"] == ["built-in"]
    assert by_name["solo"]["source"] == "project" and by_name["solo"]["overrides"] == ["user"]
    assert by_name["solo"]["description"] == "project tweak"
    assert by_name["solo"]["backends"] == [{"name": "s", "type": "http", "protocol": "gemini"}]

    text = run("list")
    assert text.exit_code == 0 and text.stderr == ""
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "BACKENDS", "DESCRIPTION"]
    assert any(line.startswith("anthropic") and "user (over built-in)" in line for line in lines)
    assert any(line.startswith("solo") and "project (over user)" in line and "project tweak" in line for line in lines)


def test_list_with_a_broken_profile_is_one_line(run) -> None:
    path = write_user("broken", '[backends.x]\nprotocol = "nope"\nbase_url = "http://h"\n')
    one_line_error(run("list"), str(path), "backends.x.protocol")


# -- show --------------------------------------------------------------------------------


@pytest.fixture
def keyed_profile(tmp_path: Path) -> tuple[Path, Path]:
    keyfile = tmp_path / "keyfile"
    keyfile.write_text(SECRET_FILE, encoding="utf-8")
    marker = tmp_path / "cmd-ran"
    path = write_user(
        "keyed",
        '[backends.env]\nprotocol = "anthropic_messages"\nbase_url = "https://api.anthropic.com"\napi_key_env = "ANTHROPIC_API_KEY"\n'
        f'headers = {{ "Authorization" = "Bearer {SECRET_LITERAL}", "X-Api-Key" = "${{OTHER_KEY}}", "X-Team" = "core" }}\n'
        f'[backends.cmd]\nprotocol = "openai_chat"\nbase_url = "https://u:{SECRET_LITERAL}@gw.example/v1?key={SECRET_LITERAL}&region=eu"\n'
        f'api_key_cmd = "touch {marker}; cat {keyfile}"\n'
        '[[routes]]\nbackend = "env"\nfallbacks = ["cmd"]\nwhen = { agent = "claude", background = true }\n',
    )
    return path, marker


def test_show_json_never_prints_keys_nor_runs_commands(run, keyed_profile) -> None:
    path, marker = keyed_profile
    result = run("show", "keyed", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    no_secrets(result.stdout)
    assert not marker.exists()
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1
    p = doc["profile"]
    assert (p["name"], p["source"], p["path"]) == ("keyed", "user", str(path))
    env_b, cmd_b = p["backends"]["env"], p["backends"]["cmd"]
    assert env_b["api_key_env"] == "ANTHROPIC_API_KEY" and env_b["api_key_cmd"] is None
    assert env_b["headers"] == {"Authorization": "<redacted>", "X-Api-Key": "${OTHER_KEY}", "X-Team": "core"}
    assert cmd_b["api_key_cmd"].startswith("touch ") and cmd_b["api_key_env"] is None
    assert "<redacted>" in cmd_b["base_url"] and "region=eu" in cmd_b["base_url"]
    assert p["routes"] == [{"backend": "env", "model": None, "fallbacks": ["cmd"], "when": {"agent": "claude", "background": True}}]
    assert p["env_refs"] == ["OTHER_KEY"]


def test_show_text_is_toml_without_keys(run, keyed_profile) -> None:
    result = run("show", "keyed")
    assert result.exit_code == 0 and result.stderr == ""
    no_secrets(result.stdout)
    data = tomllib.loads(result.stdout)
    assert data["backends"]["env"]["api_key_env"] == "ANTHROPIC_API_KEY"
    assert result.stdout.startswith("# profile 'keyed' (user): ")


def test_show_merges_extends_and_keeps_refs_unexpanded(run) -> None:
    write_user("mine", 'extends = "vllm"\ndescription = "my gpu box"\n[backends.vllm]\ntimeout_s = 30.0\nmax_output_tokens = 8192\n')
    result = run("show", "mine", "--json")
    assert result.exit_code == 0, result.stderr
    p = json.loads(result.stdout)["profile"]
    assert p["extends"] == "vllm" and p["description"] == "my gpu box"
    assert p["backends"]["vllm"]["timeout_s"] == 30.0
    assert p["backends"]["vllm"]["max_output_tokens"] == 8192
    assert p["backends"]["vllm"]["base_url"] == "${VLLM_BASE_URL:-http://localhost:8000/v1}"
    assert {r["model"] for r in p["routes"]} == {"${VLLM_MODEL}"}
    assert p["env_refs"] == ["VLLM_BASE_URL", "VLLM_MODEL"]


def test_show_a_path(run, tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[backends.x]\nprotocol = "gemini"\nbase_url = "http://127.0.0.1:9"\n', encoding="utf-8")
    p = json.loads(run("show", str(path), "--json").stdout)["profile"]
    assert p["source"] == "path" and p["routes"] == [{"backend": "x", "model": None, "fallbacks": [], "when": {}}]


@pytest.mark.parametrize(
    ("setup", "name", "fragments"),
    [
        (None, "nope", ['Profile "nope" not found', "offline"]),
        ('[backends.x]\nprotocol = "openai_chat"\nbase_url = "http://h/v1"\n[[routes]]\nbackend = "y"\n', "bad", ["bad.toml", "routes[0].backend", "not defined"]),
        ("[backends.x\n", "bad", ["bad.toml", "invalid TOML"]),
    ],
)
def test_show_errors_are_one_line(run, setup, name, fragments) -> None:
    if setup:
        write_user(name, setup)
    one_line_error(run("show", name), *fragments)
    one_line_error(run("show", name, "--json"), *fragments)


# -- path ----------------------------------------------------------------------------------


def test_path(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("path", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc == {
        "schema": 1,
        "user_profiles_dir": str(user_profiles_dir()),
        "project_file": None,
        "builtin_profiles_dir": str(builtin_profiles_dir()),
    }
    project = tmp_path / "work" / ".agentwrap.toml"
    project.write_text('profile = "offline"\n', encoding="utf-8")
    (tmp_path / "work" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "work" / "sub")
    assert json.loads(run("path", "--json").stdout)["project_file"] == str(project)
    text = run("path").stdout
    assert f"user profiles: {user_profiles_dir()}" in text and f"project file:  {project}" in text


# -- new -------------------------------------------------------------------------------------


def test_new_writes_a_commented_loadable_starter(run) -> None:
    result = run("new", "mine")
    target = user_profiles_dir() / "mine.toml"
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.strip() == str(target)
    text = target.read_text(encoding="utf-8")
    assert text.startswith('# agentwrap profile "mine"') and "# [[routes]]" in text
    assert (target.stat().st_mode & 0o777) == 0o600
    profile = load_profile("mine", env={})
    assert profile.source_kind == "user" and profile.backends["main"].api_key_env == "ANTHROPIC_API_KEY"
    no_secrets(text)


def test_new_refuses_to_overwrite(run) -> None:
    target = write_user("taken", "# mine, hands off\n")
    one_line_error(run("new", "taken"), str(target), "already exists")
    assert target.read_text(encoding="utf-8") == "# mine, hands off\n"


@pytest.mark.parametrize("source", ["zai", "offline", "vllm"])
def test_new_from_a_builtin(run, source: str) -> None:
    result = run("new", f"my-{source}", "--from", source)
    assert result.exit_code == 0, result.stderr
    target = user_profiles_dir() / f"my-{source}.toml"
    text = target.read_text(encoding="utf-8")
    assert f"# Copied from built-in profile '{source}'" in text
    copied = tomllib.loads(text)
    original = tomllib.loads((builtin_profiles_dir() / f"{source}.toml").read_text(encoding="utf-8"))
    assert copied["description"] == original["description"]
    assert set(copied["backends"]) == set(original["backends"])
    profile = load_profile(f"my-{source}", env={"VLLM_MODEL": "m"})
    assert set(profile.backends) == set(original["backends"])
    if source == "offline":
        assert Path(profile.backends["scripted"].script).is_file()  # the script path still resolves


def test_new_over_a_builtin_name_says_so(run) -> None:
    result = run("new", "anthropic", "--from", "anthropic")
    assert result.exit_code == 0
    assert "overrides the built-in" in result.stderr
    assert load_profile("anthropic", env={}).source_kind == "user"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("new", "bad name"), ["not a valid profile name"]),
        (("new", "x.toml"), ["not a valid profile name"]),
        (("new", "../escape"), ["not a valid profile name"]),
        (("new", "native"), ["reserved"]),
        (("new", "ok", "--from", "nope"), ['Profile "nope" not found']),
    ],
)
def test_new_errors(run, args, fragments) -> None:
    one_line_error(run(*args), *fragments)
    assert not (user_profiles_dir() / "ok.toml").exists()


# -- redaction helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("Authorization", "Bearer sk-1", "<redacted>"),
        ("Authorization", "Bearer ${TOKEN}", "Bearer ${TOKEN}"),
        ("x-api-key", "${KEY:-none}", "${KEY:-none}"),
        ("x-api-key", "abc${KEY}", "<redacted>"),
        ("Cookie", "session=1", "<redacted>"),
        ("X-Team", "core", "core"),
    ],
)
def test_redact_header(name, value, shown) -> None:
    assert redact_header(name, value) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.example/v1", "https://api.example/v1"),
        ("https://u:pw@h/v1", "https://u:<redacted>@h/v1"),
        ("https://tok@h/v1", "https://<redacted>@h/v1"),
        ("https://h/v1?key=abc&x=1", "https://h/v1?key=<redacted>&x=1"),
        ("${BASE:-http://localhost:8000/v1}", "${BASE:-http://localhost:8000/v1}"),
    ],
)
def test_redact_url(url, shown) -> None:
    assert redact_url(url) == shown
