"""`agentwrap doctor` offline checks, built on temporary HOMEs with fake credential and
settings files, and the command's rendering (table, `--json`, exit codes)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agentwrap.config import user_profiles_dir
from agentwrap.doctor import (
    FAIL,
    OK,
    SKIP,
    WARN,
    Check,
    Context,
    DoctorOptions,
    doctor_document,
    exit_code,
    gemini_system_file_problem,
    mask_key,
    run_checks,
)
from agentwrap.doctor_cli import register, render_table

SECRET = "sk-doctor-secret-value-7f3a"  # last four: 7f3a
OTHER_SECRET = "sk-settings-secret-value-91cd"
NOW_MS = int(time.time() * 1000)
HOUR_MS = 3600 * 1000


# -- helpers ------------------------------------------------------------------------------------


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def checks(agent: str, work: Path, *, profile: str | None = None, **ctx_kw) -> list[Check]:
    ctx = Context(env=dict(os.environ), cwd=work, claude_managed_settings=ctx_kw.pop("managed", ()), **ctx_kw)
    return run_checks(DoctorOptions(agents=(agent,), profile=profile, agents_named=True), ctx)


def row(rows: list[Check], name: str) -> Check:
    found = [r for r in rows if r.name == name]
    assert len(found) == 1, (name, [r.name for r in rows])
    return found[0]


def rows_starting(rows: list[Check], prefix: str) -> list[Check]:
    return [r for r in rows if r.name.startswith(prefix)]


def no_secrets(rows: list[Check], *secrets: str) -> None:
    text = json.dumps(doctor_document(rows))
    for s in (SECRET, OTHER_SECRET, *secrets):
        assert s not in text


def jwt(exp: float) -> str:
    def part(doc) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(exp), 'sub': 'user'})}.signature-part"


def failing_rows_have_fixes(rows: list[Check]) -> None:
    for r in rows:
        if r.status in (FAIL, WARN):
            assert r.fix.strip(), r
        assert "\n" not in r.detail and "\n" not in r.fix, r


# -- keys ----------------------------------------------------------------------------------------------


def test_mask_key_shows_only_the_last_four():
    assert mask_key(SECRET) == "…7f3a"
    assert mask_key("short") == "(5 characters)"


# -- environment -------------------------------------------------------------------------------------


def test_environment_rows_ok_in_a_fresh_home(work, isolated_env):
    rows = checks("claude", work)
    assert row(rows, "loopback bind").status == OK
    capture = row(rows, "capture dir")
    assert capture.status == OK and "free" in capture.detail
    assert str(isolated_env / ".local" / "state" / "agentwrap" / "runs") in capture.detail
    assert row(rows, "config dir").status == OK
    assert row(rows, "state dir").status == OK


def test_capture_dir_that_is_a_file_fails(work, tmp_path, monkeypatch):
    blocker = write_text(tmp_path / "not-a-dir", "x")
    monkeypatch.setenv("AGENTWRAP_CAPTURE_DIR", str(blocker))
    r = row(checks("claude", work), "capture dir")
    assert r.status == FAIL and "not a directory" in r.detail and "AGENTWRAP_CAPTURE_DIR" in r.fix


def test_config_dir_counts_profiles(work):
    write_text(user_profiles_dir() / "mine.toml", '[backends.s]\ntype = "scripted"\nscript = "s.toml"\n')
    r = row(checks("claude", work), "config dir")
    assert r.status == OK and "1 profile)" in r.detail


# -- agents on PATH ----------------------------------------------------------------------------------


def test_missing_agent_is_a_warning_unless_asked_for(work, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    ctx = Context(env=dict(os.environ), cwd=work, claude_managed_settings=())
    every = run_checks(DoctorOptions(), ctx)
    for agent, package in (("claude", "@anthropic-ai/claude-code"), ("codex", "@openai/codex"), ("gemini", "@google/gemini-cli")):
        r = row(every, f"{agent} installed")
        assert r.status == WARN and f"npm install -g {package}" in r.fix
    named = run_checks(DoctorOptions(agents=("codex",), agents_named=True), ctx)
    assert row(named, "codex installed").status == FAIL


def test_installed_agent_reports_its_version(work, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    write_text(bin_dir / "claude", "#!/bin/sh\necho '9.9.9 (Claude Code)'\n").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    r = row(checks("claude", work), "claude installed")
    assert r.status == OK and r.detail.startswith("9.9.9 (Claude Code) at ")


def test_agent_whose_version_fails_is_a_warning(work, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    write_text(bin_dir / "gemini", "#!/bin/sh\necho 'broken install' >&2\nexit 3\n").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    r = row(checks("gemini", work), "gemini installed")
    assert r.status == WARN and "exited 3" in r.detail and "broken install" in r.detail


# -- Claude Code login ---------------------------------------------------------------------------------


def claude_creds(home: Path, expires_ms: int) -> Path:
    return write_json(home / ".claude" / ".credentials.json", {
        "claudeAiOauth": {"accessToken": SECRET, "refreshToken": OTHER_SECRET, "expiresAt": expires_ms, "subscriptionType": "max"}
    })


def test_claude_valid_login(work, isolated_env):
    claude_creds(isolated_env, NOW_MS + 5 * HOUR_MS)
    rows = checks("claude", work)
    r = row(rows, "claude login")
    assert r.status == OK and "Claude.ai login (max)" in r.detail and "valid until" in r.detail and "passes it through" in r.detail
    no_secrets(rows)


def test_claude_expired_login_warns_with_login_fix(work, isolated_env):
    claude_creds(isolated_env, NOW_MS - HOUR_MS)
    rows = checks("claude", work)
    r = row(rows, "claude login")
    assert r.status == WARN and "expired" in r.detail and "claude /login" in r.fix
    no_secrets(rows)


def test_claude_missing_login_warns(work):
    r = row(checks("claude", work), "claude login")
    assert r.status == WARN and "no key" in r.detail and "claude /login" in r.fix and "ANTHROPIC_API_KEY" in r.fix


def test_claude_credentials_that_are_not_json_warn(work, isolated_env):
    write_text(isolated_env / ".claude" / ".credentials.json", "{not json " + SECRET)
    rows = checks("claude", work)
    assert row(rows, "claude login").status == WARN
    no_secrets(rows)


def test_claude_api_key_means_key_mode_and_shows_four_characters(work, isolated_env, monkeypatch):
    claude_creds(isolated_env, NOW_MS - HOUR_MS)  # an expired login no longer matters
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    rows = checks("claude", work)
    r = row(rows, "claude login")
    assert r.status == OK and "ANTHROPIC_API_KEY …7f3a" in r.detail and "key mode" in r.detail
    no_secrets(rows)


def test_claude_config_dir_variable_is_honoured(work, tmp_path, monkeypatch):
    other = tmp_path / "claude-config"
    claude_creds(other.parent / "x", 0)  # decoy under another dir
    write_json(other / ".credentials.json", {"claudeAiOauth": {"expiresAt": NOW_MS + HOUR_MS}})
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(other))
    assert row(checks("claude", work), "claude login").status == OK


# -- Claude Code settings that bypass the proxy -----------------------------------------------------------


def test_user_settings_base_url_is_the_chained_upstream(work, isolated_env):
    """A gateway the user configured for Claude Code in its settings is where a zero-config
    session forwards to; agentwrap's own --settings keeps Claude Code on the proxy."""
    path = write_json(isolated_env / ".claude" / "settings.json", {"env": {"ANTHROPIC_BASE_URL": "https://gateway.example.com/x"}})
    rows = checks("claude", work)
    r = row(rows, "claude settings ~/.claude/settings.json")
    assert r.status == OK
    assert "ANTHROPIC_BASE_URL=https://gateway.example.com" in r.detail and "forwards there" in r.detail
    profile = row(rows, "claude profile")
    assert "native pass-through to https://gateway.example.com/x" in profile.detail and "settings.json" in profile.detail
    assert exit_code(rows) == 0
    assert path.is_file()  # never edited


def test_managed_settings_base_url_fails(work, tmp_path):
    managed = write_json(tmp_path / "etc" / "managed-settings.json", {"env": {"ANTHROPIC_BASE_URL": "https://gw.example.com"}})
    r = row(checks("claude", work, managed=(managed,)), f"claude settings {managed}")
    assert r.status == FAIL and "past agentwrap" in r.detail and "administrator" in r.fix


def test_project_settings_in_a_parent_up_to_the_git_root(tmp_path, monkeypatch):
    outside = tmp_path / "outer"
    repo = outside / "repo"
    sub = repo / "pkg" / "deep"
    sub.mkdir(parents=True)
    (repo / ".git").mkdir()
    write_json(repo / ".claude" / "settings.local.json", {"env": {"CLAUDE_CODE_USE_VERTEX": "1"}})
    write_json(outside / ".claude" / "settings.json", {"env": {"CLAUDE_CODE_USE_BEDROCK": "1"}})  # above the git root
    monkeypatch.chdir(sub)
    rows = checks("claude", sub)
    bad = [r for r in rows_starting(rows, "claude settings") if r.status == FAIL]
    assert len(bad) == 1
    assert str(repo / ".claude" / "settings.local.json") in bad[0].name and "local settings" in bad[0].detail


def test_managed_settings_fail_and_point_at_the_administrator(work, tmp_path):
    managed = write_json(tmp_path / "etc" / "managed-settings.json", {"env": {"CLAUDE_CODE_USE_BEDROCK": "1"}})
    r = row(checks("claude", work, managed=(managed,)), f"claude settings {managed}")
    assert r.status == FAIL and "managed settings env sets CLAUDE_CODE_USE_BEDROCK=1" in r.detail and "administrator" in r.fix


def test_settings_with_only_a_key_is_key_mode_and_masked(work):
    write_json(work / ".claude" / "settings.json", {"env": {"ANTHROPIC_AUTH_TOKEN": OTHER_SECRET}})
    rows = checks("claude", work)
    r = row(rows, "claude settings " + str(work / ".claude" / "settings.json"))
    assert r.status == OK and "ANTHROPIC_AUTH_TOKEN …91cd" in r.detail and "sends it upstream" in r.detail
    assert "key mode" in row(rows, "claude login").detail
    no_secrets(rows)


def test_settings_without_env_overrides_are_ok(work, isolated_env):
    write_json(isolated_env / ".claude" / "settings.json", {"env": {"DISABLE_TELEMETRY": "1"}, "model": "opus"})
    r = row(checks("claude", work), "claude settings")
    assert r.status == OK and "1 file read" in r.detail


def test_bedrock_switch_in_the_environment_fails(work, monkeypatch):
    monkeypatch.setenv("CLAUDE_CODE_USE_VERTEX", "1")
    r = row(checks("claude", work), "claude environment CLAUDE_CODE_USE_VERTEX")
    assert r.status == FAIL and "unset CLAUDE_CODE_USE_VERTEX" in r.fix


# -- Codex login and config ---------------------------------------------------------------------------------


def codex_auth(home: Path, doc: dict) -> Path:
    return write_json(home / ".codex" / "auth.json", doc)


def test_codex_chatgpt_login_valid(work, isolated_env):
    codex_auth(isolated_env, {"auth_mode": "chatgpt", "OPENAI_API_KEY": None, "tokens": {
        "id_token": jwt(time.time() + 86400), "access_token": jwt(time.time() + 86400), "refresh_token": SECRET}})
    rows = checks("codex", work)
    r = row(rows, "codex login")
    assert r.status == OK and "auth_mode chatgpt" in r.detail and "valid until" in r.detail
    no_secrets(rows)


def test_codex_chatgpt_login_expired_warns(work, isolated_env):
    codex_auth(isolated_env, {"auth_mode": "chatgpt", "tokens": {"access_token": jwt(time.time() - 60), "refresh_token": SECRET}})
    r = row(checks("codex", work), "codex login")
    assert r.status == WARN and "expired" in r.detail and "codex login" in r.fix


def test_codex_home_variable_is_honoured(work, tmp_path, monkeypatch):
    home = tmp_path / "codex-home"
    write_json(home / "auth.json", {"auth_mode": "chatgpt", "tokens": {"access_token": jwt(time.time() + 600)}})
    monkeypatch.setenv("CODEX_HOME", str(home))
    r = row(checks("codex", work), "codex login")
    assert r.status == OK and str(home / "auth.json") in r.detail


def test_codex_api_key_login_without_a_variable_is_ok(work, isolated_env):
    """`codex login --with-api-key`: a session sends Codex's own key to api.openai.com (and works)."""
    codex_auth(isolated_env, {"auth_mode": "apikey", "OPENAI_API_KEY": SECRET})
    rows = checks("codex", work)
    r = row(rows, "codex login")
    assert r.status == OK and "API key …7f3a" in r.detail and "https://api.openai.com/v1" in r.detail
    assert "https://api.openai.com/v1" in row(rows, "codex profile").detail
    assert exit_code(rows) == 0
    no_secrets(rows)


def test_codex_key_variable_is_key_mode(work, monkeypatch):
    monkeypatch.setenv("CODEX_API_KEY", SECRET)
    rows = checks("codex", work)
    assert row(rows, "codex login").status == OK and "CODEX_API_KEY …7f3a" in row(rows, "codex login").detail
    no_secrets(rows)


def test_codex_missing_login_warns(work):
    r = row(checks("codex", work), "codex login")
    assert r.status == WARN and "codex login" in r.fix


def test_codex_config_default_profile_pinning_a_provider_fails(work, isolated_env):
    write_text(isolated_env / ".codex" / "config.toml",
               'profile = "work"\n[profiles.work]\nmodel_provider = "azure"\n[profiles.home]\nmodel_provider = "ollama"\n')
    rows = checks("codex", work)
    work_row = row(rows, "codex config [profiles.work]")
    assert work_row.status == FAIL and 'model_provider = "azure"' in work_row.detail and 'profile = "work"' in work_row.fix
    home_row = row(rows, "codex config [profiles.home]")
    assert home_row.status == WARN and "--profile home" in home_row.detail


def test_codex_config_root_provider_is_overridden(work, isolated_env):
    write_text(isolated_env / ".codex" / "config.toml", 'model_provider = "openrouter"\n[model_providers.openrouter]\nname = "x"\n')
    r = row(checks("codex", work), "codex config")
    assert r.status == OK and "overridden" in r.detail


def test_codex_config_that_is_not_toml_fails(work, isolated_env):
    write_text(isolated_env / ".codex" / "config.toml", "model_provider = \n")
    r = row(checks("codex", work), "codex config")
    assert r.status == FAIL and "not valid TOML" in r.detail


def test_codex_config_redefining_agentwraps_provider_warns(work, isolated_env):
    write_text(isolated_env / ".codex" / "config.toml", '[model_providers.agentwrap]\nname = "mine"\n')
    assert row(checks("codex", work), "codex config [model_providers.agentwrap]").status == WARN


# -- Gemini CLI login and settings -------------------------------------------------------------------------------


def gemini_login(home: Path, *, expiry_ms: int, refresh: bool = True, selected: str | None = "oauth-personal") -> None:
    creds = {"access_token": SECRET, "expiry_date": expiry_ms, "token_type": "Bearer"}
    if refresh:
        creds["refresh_token"] = OTHER_SECRET
    write_json(home / ".gemini" / "oauth_creds.json", creds)
    if selected:
        write_json(home / ".gemini" / "settings.json", {"security": {"auth": {"selectedType": selected}}})


def test_gemini_google_login_without_a_key_is_pass_through(work, isolated_env):
    gemini_login(isolated_env, expiry_ms=NOW_MS - HOUR_MS)  # Google tokens expire hourly: normal
    rows = checks("gemini", work)
    r = row(rows, "gemini login")
    assert r.status == OK and "Code Assist" in r.detail and "pass-through" in r.detail and "oauth-personal" in r.detail
    no_secrets(rows)


def test_gemini_expired_login_without_refresh_token_warns(work, isolated_env):
    gemini_login(isolated_env, expiry_ms=NOW_MS - HOUR_MS, refresh=False)
    r = row(checks("gemini", work), "gemini login")
    assert r.status == WARN and "Login with Google" in r.fix


def test_gemini_key_means_key_mode(work, isolated_env, monkeypatch):
    gemini_login(isolated_env, expiry_ms=NOW_MS + HOUR_MS)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    rows = checks("gemini", work)
    r = row(rows, "gemini login")
    assert r.status == OK and "GEMINI_API_KEY …7f3a" in r.detail and "gemini-api-key" in r.detail
    no_secrets(rows)


def test_gemini_vertex_selection_fails(work, isolated_env):
    write_json(isolated_env / ".gemini" / "settings.json", {"security": {"auth": {"selectedType": "vertex-ai"}}})
    r = row(checks("gemini", work), "gemini login")
    assert r.status == FAIL and "bypass" in r.detail and "GEMINI_API_KEY" in r.fix


def test_gemini_key_type_selected_without_a_key_warns(work, isolated_env):
    write_json(isolated_env / ".gemini" / "settings.json", {"security": {"auth": {"selectedType": "gemini-api-key"}}})
    r = row(checks("gemini", work), "gemini login")
    assert r.status == WARN and "export GEMINI_API_KEY" in r.fix


def test_gemini_google_login_with_a_keyless_profile_warns_on_the_backend(work, isolated_env):
    """The Google login never goes to another host: the keyless backend gets nothing, and says so."""
    gemini_login(isolated_env, expiry_ms=NOW_MS + HOUR_MS)
    profile = write_text(work / "g.toml", '[backends.g]\nprotocol = "gemini"\nbase_url = "https://gemini.example.com"\n')
    rows = checks("gemini", work, profile=str(profile))
    assert "key mode" in row(rows, "gemini login").detail
    r = row(rows, "gemini backend g")
    assert r.status == WARN and "sends no key" in r.detail and "api_key_env" in r.fix


def test_gemini_system_settings_pinning_another_type_fail_in_key_mode(work, tmp_path, monkeypatch):
    system = write_json(tmp_path / "sys" / "settings.json", {"security": {"auth": {"enforcedType": "oauth-personal"}}})
    monkeypatch.setenv("GEMINI_CLI_SYSTEM_SETTINGS_PATH", str(system))
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    # Gemini CLI reads a system file only when root owns it and its parents: accept this one.
    r = row(checks("gemini", work, gemini_system_check=lambda p: None), "gemini system settings")
    assert r.status == FAIL and "enforcedType=oauth-personal" in r.detail and str(system) in r.fix


def test_gemini_system_settings_pinning_the_key_type_are_ok(work, tmp_path, monkeypatch):
    system = write_json(tmp_path / "sys" / "settings.json", {"security": {"auth": {"selectedType": "gemini-api-key"}}})
    monkeypatch.setenv("GEMINI_CLI_SYSTEM_SETTINGS_PATH", str(system))
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    assert row(checks("gemini", work, gemini_system_check=lambda p: None), "gemini system settings").status == OK


def test_gemini_system_settings_google_login_is_fine_without_a_key(work, tmp_path, monkeypatch):
    system = write_json(tmp_path / "sys" / "settings.json", {"security": {"auth": {"selectedType": "oauth-personal"}}})
    monkeypatch.setenv("GEMINI_CLI_SYSTEM_SETTINGS_PATH", str(system))
    r = row(checks("gemini", work, gemini_system_check=lambda p: None), "gemini system settings")
    assert r.status == OK and "pass-through" in r.detail


def test_gemini_system_settings_under_tmp_are_ignored_by_gemini(work, tmp_path, monkeypatch):
    system = write_json(tmp_path / "sys" / "settings.json", {"security": {"auth": {"enforcedType": "oauth-personal"}}})
    monkeypatch.setenv("GEMINI_CLI_SYSTEM_SETTINGS_PATH", str(system))
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    assert gemini_system_file_problem(system) is not None  # the temp dir is world-writable or not root's
    r = row(checks("gemini", work), "gemini system settings")
    assert r.status == OK and "ignored by Gemini CLI" in r.detail


def test_gemini_workspace_settings_pinning_another_type_fail_in_key_mode(work, monkeypatch):
    write_json(work / ".gemini" / "settings.json", {"security": {"auth": {"selectedType": "oauth-personal"}}})
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    r = row(checks("gemini", work), "gemini workspace settings")
    assert r.status == FAIL and "selectedType=oauth-personal" in r.detail and ".gemini/settings.json" in r.fix


# -- profiles and keys -----------------------------------------------------------------------------------


def key_profile(path: Path, *, api_key_env: str | None = "DOCTOR_KEY", api_key_cmd: str | None = None,
                protocol: str = "anthropic_messages") -> Path:
    key = f'api_key_env = "{api_key_env}"\n' if api_key_env else ""
    if api_key_cmd:
        key = f"api_key_cmd = {json.dumps(api_key_cmd)}\n"
    return write_text(path, f'[backends.up]\nprotocol = "{protocol}"\nbase_url = "https://up.example.com"\n{key}')


def test_profile_from_the_project_file_names_why(work):
    write_text(work / ".agentwrap.toml", '[agents.claude]\nprofile = "offline"\n')
    rows = checks("claude", work)
    r = row(rows, "claude profile")
    assert r.status == OK and '"offline"' in r.detail and "[agents.claude]" in r.detail
    assert row(rows, "claude backend scripted").status == OK
    assert "key mode" in row(rows, "claude login").detail


def test_no_profile_is_native_pass_through(work):
    r = row(checks("codex", work), "codex profile")
    assert r.status == OK and "native pass-through to https://api.openai.com/v1" in r.detail


def test_profile_from_the_environment(work, monkeypatch):
    monkeypatch.setenv("AGENTWRAP_PROFILE", "offline")
    assert "AGENTWRAP_PROFILE=offline" in row(checks("gemini", work), "gemini profile").detail


def test_invalid_profile_fails_with_the_config_error(work):
    bad = write_text(work / "bad.toml", '[backends.up]\nprotocol = "anthropic"\nbase_url = "https://x"\n')
    rows = checks("claude", work, profile=str(bad))
    r = row(rows, "claude profile")
    assert r.status == FAIL and "backends.up.protocol" in r.detail and r.fix
    assert exit_code(rows) == 1


def test_unknown_profile_fails(work):
    r = row(checks("claude", work, profile="no-such-profile"), "claude profile")
    assert r.status == FAIL and 'Profile "no-such-profile" not found' in r.detail


def test_profile_speaking_another_protocol_is_translated(work, monkeypatch):
    monkeypatch.setenv("DOCTOR_KEY", SECRET)
    profile = key_profile(work / "p.toml", protocol="gemini")
    rows = checks("claude", work, profile=str(profile))
    assert row(rows, "claude profile").status == OK
    r = row(rows, "claude backend up")
    assert r.status == OK and "gemini at https://up.example.com (translated from anthropic_messages)" in r.detail
    same = checks("claude", work, profile=str(key_profile(work / "q.toml")))
    assert "translated" not in row(same, "claude backend up").detail


def test_backend_key_variable_missing_fails(work):
    profile = key_profile(work / "p.toml")
    r = row(checks("claude", work, profile=str(profile)), "claude backend up")
    assert r.status == FAIL and "DOCTOR_KEY" in r.detail and "export DOCTOR_KEY" in r.fix


def test_backend_key_variable_set_shows_four_characters(work, monkeypatch):
    monkeypatch.setenv("DOCTOR_KEY", SECRET)
    profile = key_profile(work / "p.toml")
    rows = checks("claude", work, profile=str(profile))
    r = row(rows, "claude backend up")
    assert r.status == OK and "$DOCTOR_KEY (…7f3a)" in r.detail
    no_secrets(rows)


def test_backend_key_command_runs(work):
    profile = key_profile(user_profiles_dir() / "cmd.toml", api_key_env=None, api_key_cmd=f"printf '%s\\n' {SECRET}")
    rows = checks("claude", work, profile="cmd")
    r = row(rows, "claude backend up")
    assert r.status == OK and "api_key_cmd (…7f3a)" in r.detail
    no_secrets(rows)


def test_backend_key_command_failing_fails(work):
    key_profile(user_profiles_dir() / "cmd.toml", api_key_env=None, api_key_cmd="echo 'vault is locked' >&2; exit 4")
    r = row(checks("claude", work, profile="cmd"), "claude backend up")
    assert r.status == FAIL and "exit 4" in r.detail and "vault is locked" in r.detail and "api_key_cmd" in r.fix


def test_backend_without_key_in_key_mode_warns_unless_local(work, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    profile = write_text(work / "p.toml", """
[backends.remote]
protocol = "openai_chat"
base_url = "https://chat.example.com/v1"
[backends.local]
protocol = "openai_responses"
base_url = "http://localhost:11434/v1"
[backends.main]
protocol = "openai_responses"
base_url = "https://api.openai.com/v1"
[backends.other]
protocol = "openai_responses"
base_url = "https://api.example.com/v1"
[[routes]]
backend = "main"
fallbacks = ["local", "remote", "other"]
""")
    rows = checks("codex", work, profile=str(profile))
    assert row(rows, "codex backend main").status == OK and "OPENAI_API_KEY (…7f3a)" in row(rows, "codex backend main").detail
    assert row(rows, "codex backend local").status == OK
    assert row(rows, "codex backend remote").status == WARN
    # the user's key goes only to the host it was configured for
    assert row(rows, "codex backend other").status == WARN and "…7f3a" not in row(rows, "codex backend other").detail
    no_secrets(rows)


# -- the whole report ----------------------------------------------------------------------------------------


def test_every_failing_row_says_what_to_do(work, isolated_env, monkeypatch):
    write_json(isolated_env / ".claude" / "settings.json", {"env": {"ANTHROPIC_BASE_URL": "http://x.example"}})
    write_text(isolated_env / ".codex" / "config.toml", 'profile = "p"\n[profiles.p]\nmodel_provider = "azure"\n')
    write_json(isolated_env / ".gemini" / "settings.json", {"security": {"auth": {"selectedType": "vertex-ai"}}})
    monkeypatch.setenv("AGENTWRAP_PROFILE", "no-such-profile")
    rows = run_checks(DoctorOptions(), Context(env=dict(os.environ), cwd=work, claude_managed_settings=()))
    assert sum(r.status == FAIL for r in rows) >= 5
    failing_rows_have_fixes(rows)
    assert all(r.status in (OK, WARN, FAIL, SKIP) for r in rows)


def test_document_and_exit_code():
    rows = [Check("a", OK, "fine", "ignored for ok"), Check("b", WARN, "hmm", "do x")]
    doc = doctor_document(rows)
    assert doc == {"schema": 1, "ok": True, "checks": [
        {"name": "a", "status": "ok", "detail": "fine", "fix": ""},
        {"name": "b", "status": "warn", "detail": "hmm", "fix": "do x"},
    ]}
    assert exit_code(rows) == 0
    assert exit_code([*rows, Check("c", FAIL, "broken", "fix it")]) == 1
    assert doctor_document([Check("c", FAIL, "broken", "fix it")])["ok"] is False


# -- the command ----------------------------------------------------------------------------------------------


@pytest.fixture
def doctor_cli(work):
    app = typer.Typer()
    register(app)

    @app.command("version")  # a second command, so `doctor` stays a subcommand as in agentwrap's app
    def version() -> None:
        pass

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["doctor", *args])

    return invoke


def test_cli_json_is_one_document(doctor_cli, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    result = doctor_cli("--agent", "claude", "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1 and doc["ok"] is True
    assert {"name", "status", "detail", "fix"} == set(doc["checks"][0])
    names = [c["name"] for c in doc["checks"]]
    assert "claude login" in names and "codex login" not in names
    assert SECRET not in result.stdout + result.stderr


def test_cli_exit_1_when_a_check_fails(doctor_cli, isolated_env):
    write_json(isolated_env / ".claude" / "settings.json", {"env": {"CLAUDE_CODE_USE_BEDROCK": "1"}})
    result = doctor_cli("--agent", "claude", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert any(c["status"] == "fail" and "CLAUDE_CODE_USE_BEDROCK" in c["detail"] for c in doc["checks"])


def test_cli_profile_option(doctor_cli):
    result = doctor_cli("--agent", "codex", "--profile", "offline", "--json")
    doc = json.loads(result.stdout)
    profile = next(c for c in doc["checks"] if c["name"] == "codex profile")
    assert "--profile offline" in profile["detail"]


def test_cli_table_has_no_colour_off_a_terminal(doctor_cli, isolated_env, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    write_json(isolated_env / ".claude" / "settings.json", {"env": {"ANTHROPIC_AUTH_TOKEN": OTHER_SECRET}})
    result = doctor_cli()
    assert result.exit_code == 0, (result.stdout, result.stderr)
    out = result.stdout
    assert "\x1b[" not in out
    for name in ("loopback bind", "claude login", "codex config", "gemini system settings"):
        assert name in out
    assert "fix:" in out and "warn" in out
    assert SECRET not in out + result.stderr and OTHER_SECRET not in out + result.stderr
    assert out.rstrip().splitlines()[-1].startswith(tuple("0123456789"))


def test_render_table_honours_no_color_on_a_terminal(monkeypatch):
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    rows = [Check("claude settings [x]", FAIL, "[bold]not markup[/bold]", "do it")]
    coloured = Tty()
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    render_table(rows, file=coloured)
    assert "\x1b[" in coloured.getvalue() and "[bold]not markup[/bold]" in coloured.getvalue()
    plain = Tty()
    monkeypatch.setenv("NO_COLOR", "1")
    render_table(rows, file=plain)
    assert "\x1b[" not in plain.getvalue() and "FAIL" in plain.getvalue() and "claude settings [x]" in plain.getvalue()


def test_cli_unknown_agent_is_a_usage_error(doctor_cli):
    result = doctor_cli("--agent", "cursor")
    assert result.exit_code == 2
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("agentwrap: ") and "cursor" in line and "claude, codex, gemini" in line and "\n" not in line


def test_cli_bad_timeout_is_a_usage_error(doctor_cli):
    assert doctor_cli("--timeout", "0").exit_code == 2


def test_codex_chatgpt_login_with_a_keyless_profile_warns(work, isolated_env):
    """The ChatGPT token never goes to another host: the keyless backend gets nothing, and says so."""
    codex_auth(isolated_env, {"auth_mode": "chatgpt", "tokens": {"access_token": jwt(time.time() + 600)}})
    profile = write_text(work / "p.toml", '[backends.gw]\nprotocol = "openai_responses"\nbase_url = "https://gw.example.com/v1"\n')
    rows = checks("codex", work, profile=str(profile))
    assert "key mode" in row(rows, "codex login").detail
    r = row(rows, "codex backend gw")
    assert r.status == WARN and "sends no key" in r.detail and "api_key_env" in r.fix


def test_codex_chatgpt_login_handed_to_a_backend_explicitly(work, isolated_env):
    codex_auth(isolated_env, {"auth_mode": "chatgpt", "tokens": {"access_token": jwt(time.time() + 600)}})
    profile = write_text(work / "p.toml", '[backends.gw]\nprotocol = "openai_responses"\nbase_url = "https://gw.example.com/v1"\n'
                         'credentials = "agent"\n')
    rows = checks("codex", work, profile=str(profile))
    assert row(rows, "codex login").status == WARN and "ChatGPT token" in row(rows, "codex login").detail
    assert "passes through" in row(rows, "codex backend gw").detail


def test_codex_login_in_the_keyring_warns(work, isolated_env):
    write_text(isolated_env / ".codex" / "config.toml", 'cli_auth_credentials_store = "keyring"\n')
    r = row(checks("codex", work), "codex login")
    assert r.status == WARN and "keyring" in r.detail and "codex login status" in r.fix
