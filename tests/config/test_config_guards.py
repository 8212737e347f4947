"""The [guards] section of profiles and project files: defaults, schema errors, extends, show, starter."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentwrap.agents import AGENTS
from agentwrap.config import ProfileCatalog, load_profile, native_profile, select_profile, user_profiles_dir
from agentwrap.config.model import GuardsConfig, LoopGuardConfig, ProfileConfig, ToolLoopGuardConfig, ToolRepairConfig
from agentwrap.config.schema import GUARD_KEYS
from agentwrap.errors import ConfigError
from agentwrap.config.starter import STARTER_HEADER
from agentwrap.profiles_cli import make_profiles_app
from agentwrap.session import resolve_plan as resolve_routing
from agentwrap.session.plan import plan_session

BASE = '[backends.x]\nprotocol = "anthropic_messages"\nbase_url = "http://h"\n'
DEFAULTS = {
    "loop": {"enabled": True, "sensitivity": "normal", "action": "cut"},
    "tool_loop": {"enabled": True, "max_repeats": 4},
    "tool_repair": {"enabled": True, "arguments": True, "names": True, "text_calls": True},
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def as_dict(guards: GuardsConfig) -> dict:
    return dataclasses.asdict(guards)


# -- defaults --------------------------------------------------------------------------------------


def test_defaults_are_all_on() -> None:
    assert as_dict(GuardsConfig()) == DEFAULTS
    assert ProfileConfig(name="p", source="s").guards == GuardsConfig()


def test_native_profile_gets_the_defaults_without_pydantic() -> None:
    code = (
        "import sys\n"
        "from agentwrap.config.model import GuardsConfig, ProfileConfig\n"
        "from agentwrap.config.loader import native_profile\n"
        "p = native_profile('claude', 'anthropic_messages', 'https://api.anthropic.com')\n"
        "assert p.guards == GuardsConfig() and p.guards.tool_loop.max_repeats == 4\n"
        "assert not any(m.startswith('pydantic') for m in sys.modules), sorted(m for m in sys.modules if 'pydantic' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert native_profile("codex", "openai_responses", "https://api.openai.com/v1").guards == GuardsConfig()


def test_guards_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        GuardsConfig().tool_loop.max_repeats = 9  # type: ignore[misc]


def test_a_profile_without_guards_gets_the_defaults(tmp_path: Path) -> None:
    assert load_profile(str(write(tmp_path / "p.toml", BASE)), env={}).guards == GuardsConfig()
    assert load_profile("anthropic", env={}, cwd=Path("/")).guards == GuardsConfig()


def test_schema_keys_match_the_dataclasses() -> None:
    sections = {"loop": LoopGuardConfig, "tool_loop": ToolLoopGuardConfig, "tool_repair": ToolRepairConfig}
    assert [f.name for f in dataclasses.fields(GuardsConfig)] == list(GUARD_KEYS) == list(sections)
    for name, cls in sections.items():
        assert [f.name for f in dataclasses.fields(cls)] == GUARD_KEYS[name]


# -- loading -------------------------------------------------------------------------------------------


def test_every_key_loads(tmp_path: Path) -> None:
    text = BASE + (
        '[guards.loop]\nenabled = false\nsensitivity = "high"\naction = "warn"\n'
        "[guards.tool_loop]\nenabled = false\nmax_repeats = 2\n"
        "[guards.tool_repair]\nenabled = false\narguments = false\nnames = false\ntext_calls = false\n"
    )
    guards = load_profile(str(write(tmp_path / "p.toml", text)), env={}).guards
    assert guards == GuardsConfig(
        LoopGuardConfig(False, "high", "warn"),
        ToolLoopGuardConfig(False, 2),
        ToolRepairConfig(False, False, False, False),
    )


def test_unset_keys_keep_their_defaults(tmp_path: Path) -> None:
    text = BASE + "[guards.tool_loop]\nmax_repeats = 6\n[guards.loop]\nsensitivity = \"low\"\n"
    guards = load_profile(str(write(tmp_path / "p.toml", text)), env={}).guards
    assert as_dict(guards) == {
        **DEFAULTS,
        "loop": {**DEFAULTS["loop"], "sensitivity": "low"},
        "tool_loop": {"enabled": True, "max_repeats": 6},
    }


def test_inline_table_form(tmp_path: Path) -> None:
    text = BASE + "[guards]\ntool_loop = { max_repeats = 3 }\ntool_repair = { names = false }\n"
    guards = load_profile(str(write(tmp_path / "p.toml", text)), env={}).guards
    assert guards.tool_loop.max_repeats == 3 and guards.tool_repair == ToolRepairConfig(names=False)


# -- schema errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ("[guards.tool_loop]\nmax_repeats = 1\n", "guards.tool_loop.max_repeats", "greater than or equal to 2"),
        ("[guards.tool_loop]\nmax_repeats = 0\n", "guards.tool_loop.max_repeats", "greater than or equal to 2"),
        ('[guards.tool_loop]\nmax_repeats = "4"\n', "guards.tool_loop.max_repeats", "valid integer (got '4')"),
        ("[guards.tool_loop]\nmax_repeats = 4.0\n", "guards.tool_loop.max_repeats", "valid integer (got 4.0)"),
        ("[guards.tool_loop]\nmax_repeats = true\n", "guards.tool_loop.max_repeats", "valid integer (got True)"),
        ('[guards.tool_loop]\nenabled = "yes"\n', "guards.tool_loop.enabled", "valid boolean (got 'yes')"),
        ("[guards.tool_loop]\nrepeats = 4\n", "guards.tool_loop.repeats", "allowed here: enabled, max_repeats"),
        ('[guards.loop]\nsensitivity = "medium"\n', "guards.loop.sensitivity", "'low', 'normal' or 'high' (got 'medium')"),
        ('[guards.loop]\naction = "stop"\n', "guards.loop.action", "'cut' or 'warn' (got 'stop')"),
        ("[guards.loop]\nenabled = 1\n", "guards.loop.enabled", "valid boolean"),
        ("[guards.loop]\nwindow = 5\n", "guards.loop.window", "allowed here: enabled, sensitivity, action"),
        ("[guards.tool_repair]\nfix_names = true\n", "guards.tool_repair.fix_names", "allowed here: enabled, arguments, names, text_calls"),
        ('[guards.tool_repair]\ntext_calls = "on"\n', "guards.tool_repair.text_calls", "valid boolean"),
        ("[guards.toolloop]\nenabled = false\n", "guards.toolloop", "allowed here: loop, tool_loop, tool_repair"),
        ("[guards]\nenabled = false\n", "guards.enabled", "allowed here: loop, tool_loop, tool_repair"),
        ("[guards]\nloop = true\n", "guards.loop", "valid dictionary"),
        ("guards = true\n", "guards", "valid dictionary"),
    ],
)
def test_schema_errors_name_file_and_field(tmp_path: Path, text: str, field: str, fix: str) -> None:
    path = write(tmp_path / "bad.toml", BASE + text if not text.startswith("guards =") else text + BASE)
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), env={})
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {field}"), msg
    assert fix in msg, msg


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ("[guards.tool_loop]\nmax_repeats = 1\n", "guards.tool_loop.max_repeats", "greater than or equal to 2"),
        ("[guards.tool_loop]\nmax = 1\n", "guards.tool_loop.max", "allowed here: enabled, max_repeats"),
        ("[guards.bogus]\nx = 1\n", "guards.bogus", "allowed here: loop, tool_loop, tool_repair"),
        ("[profiles.p.guards.loop]\nbad = 1\n" + BASE.replace("[backends.x]", "[profiles.p.backends.x]"), "profiles.p.guards.loop.bad", "allowed here: enabled, sensitivity, action"),
        ('[profiles.p.guards.loop]\naction = "kill"\n' + BASE.replace("[backends.x]", "[profiles.p.backends.x]"), "profiles.p.guards.loop.action", "'cut' or 'warn'"),
    ],
)
def test_project_file_schema_errors_name_file_and_field(tmp_path: Path, text: str, field: str, fix: str) -> None:
    path = write(tmp_path / "repo" / ".agentwrap.toml", text)
    with pytest.raises(ConfigError) as err:
        ProfileCatalog(tmp_path / "repo").resolve("p", {})
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {field}"), msg
    assert fix in msg, msg


def test_project_file_allowed_keys_mention_guards(tmp_path: Path) -> None:
    write(tmp_path / "repo" / ".agentwrap.toml", 'profil = "x"\n')
    with pytest.raises(ConfigError, match="allowed here: profile, agents, profiles, guards"):
        ProfileCatalog(tmp_path / "repo").resolve("p", {})


# -- extends ---------------------------------------------------------------------------------------------------


def test_extends_merges_guards_key_by_key(tmp_path: Path) -> None:
    write(user_profiles_dir() / "base.toml", BASE + '[guards.tool_loop]\nmax_repeats = 6\n[guards.loop]\naction = "warn"\n')
    write(user_profiles_dir() / "child.toml", 'extends = "base"\n[guards.tool_loop]\nenabled = false\n[guards.tool_repair]\nnames = false\n')
    guards = load_profile("child", env={}, cwd=tmp_path).guards
    assert guards == GuardsConfig(
        LoopGuardConfig(action="warn"),
        ToolLoopGuardConfig(enabled=False, max_repeats=6),
        ToolRepairConfig(names=False),
    )
    assert load_profile("base", env={}, cwd=tmp_path).guards.tool_loop == ToolLoopGuardConfig(max_repeats=6)


def test_project_inline_profile_extends_a_builtin_with_guards(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root / ".agentwrap.toml", '[profiles.anthropic]\nextends = "anthropic"\n[profiles.anthropic.guards.tool_loop]\nmax_repeats = 3\n')
    profile = ProfileCatalog(root).resolve("anthropic", {})
    assert profile.source_kind == "project" and profile.guards.tool_loop.max_repeats == 3
    assert "anthropic" in profile.backends  # the built-in's backends, merged


# -- the project file's top-level [guards] ------------------------------------------------------------------------


PROJECT_GUARDS = '[guards.tool_loop]\nmax_repeats = 8\n[guards.loop]\nenabled = false\n'


def test_project_guards_apply_over_the_selected_profile(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(user_profiles_dir() / "mine.toml", BASE + "[guards.tool_loop]\nenabled = false\nmax_repeats = 3\n[guards.tool_repair]\nnames = false\n")
    write(root / ".agentwrap.toml", 'profile = "mine"\n' + PROJECT_GUARDS)
    for flag in (None, "mine"):
        profile, _ = select_profile("claude", flag, {}, root)
        assert profile is not None and profile.guards == GuardsConfig(
            LoopGuardConfig(enabled=False),
            ToolLoopGuardConfig(enabled=False, max_repeats=8),  # the project's key beats the profile's; the rest stays
            ToolRepairConfig(names=False),
        )
    # The same profile outside the project keeps its own guards.
    assert load_profile("mine", env={}, cwd=tmp_path).guards.tool_loop == ToolLoopGuardConfig(enabled=False, max_repeats=3)


def test_project_guards_apply_to_a_profile_switched_to_in_chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    write(root / ".agentwrap.toml", PROJECT_GUARDS)
    monkeypatch.chdir(root)
    assert load_profile("anthropic", env={}).guards.tool_loop.max_repeats == 8  # what `!/profile(anthropic)` loads


@pytest.mark.parametrize("flag", [None, "native"])
def test_project_guards_apply_to_native_pass_through(tmp_path: Path, flag: str | None) -> None:
    root = tmp_path / "repo"
    write(root / ".agentwrap.toml", PROJECT_GUARDS)
    routing = resolve_routing(AGENTS["claude"], flag, {}, str(root))
    assert routing.profile.source_kind == "native"
    assert routing.profile.guards == GuardsConfig(LoopGuardConfig(enabled=False), ToolLoopGuardConfig(max_repeats=8))


def test_native_pass_through_without_project_guards_has_the_defaults(tmp_path: Path) -> None:
    routing = resolve_routing(AGENTS["claude"], None, {}, str(tmp_path))
    assert routing.profile.source_kind == "native" and routing.profile.guards == GuardsConfig()
    write(tmp_path / "repo" / ".agentwrap.toml", "[agents.codex]\nprofile = \"offline\"\n")
    assert resolve_routing(AGENTS["claude"], None, {}, str(tmp_path / "repo")).profile.guards == GuardsConfig()


# -- profiles show / new -------------------------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    app = make_profiles_app()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_show_json_has_the_guards_in_effect(run) -> None:
    write(user_profiles_dir() / "mine.toml", 'extends = "anthropic"\n[guards.tool_loop]\nmax_repeats = 5\n')
    result = run("show", "mine", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    p = json.loads(result.stdout)["profile"]
    assert p["guards"] == {**DEFAULTS, "tool_loop": {"enabled": True, "max_repeats": 5}}
    assert p["project_guards"] == {}
    builtin = json.loads(run("show", "anthropic", "--json").stdout)["profile"]
    assert builtin["guards"] == DEFAULTS


def test_show_text_has_the_guards_as_toml(run) -> None:
    write(user_profiles_dir() / "mine.toml", BASE + '[guards.loop]\naction = "warn"\n')
    result = run("show", "mine")
    assert result.exit_code == 0, result.stderr
    data = tomllib.loads(result.stdout)
    assert data["guards"] == {**DEFAULTS, "loop": {**DEFAULTS["loop"], "action": "warn"}}
    assert "[guards.tool_loop]" in result.stdout


def test_show_mentions_the_project_guards(run, tmp_path: Path) -> None:
    project = write(tmp_path / "work" / ".agentwrap.toml", PROJECT_GUARDS)
    result = run("show", "anthropic")
    assert result.exit_code == 0, result.stderr
    assert f"# sessions under {project} use these guards with its [guards] over them: loop.enabled = false, tool_loop.max_repeats = 8" in result.stdout
    assert tomllib.loads(result.stdout)["guards"] == DEFAULTS  # the profile's own, shown as they are
    doc = json.loads(run("show", "anthropic", "--json").stdout)["profile"]
    assert doc["project_guards"] == {"loop": {"enabled": False}, "tool_loop": {"max_repeats": 8}}


def test_show_a_path_with_a_broken_project_file_is_one_warning_line(run, tmp_path: Path) -> None:
    write(tmp_path / "work" / ".agentwrap.toml", "[guards.tool_loop]\nmax_repeats = 1\n")
    path = write(tmp_path / "p.toml", BASE)
    result = run("show", str(path))
    assert result.exit_code == 0 and "Traceback" not in result.stderr
    assert "warning" in result.stderr and "guards.tool_loop.max_repeats" in result.stderr and result.stderr.count("\n") == 1
    assert tomllib.loads(result.stdout)["guards"] == DEFAULTS


def test_starter_mentions_guards_commented_out_and_they_are_valid(run) -> None:
    result = run("new", "mine")
    assert result.exit_code == 0, result.stderr
    text = (user_profiles_dir() / "mine.toml").read_text(encoding="utf-8")
    for line in ("# [guards.loop]", "# [guards.tool_loop]", "# [guards.tool_repair]", "#   max_repeats = 4"):
        assert line in text
    assert load_profile("mine", env={}).guards == GuardsConfig()  # commented out: the defaults
    # Uncommented as written, the guards lines are a valid profile with the default values.
    header = STARTER_HEADER.format(name="x")
    start = header.index("# [guards.loop]")
    lines = [line[1:].strip().split("  ")[0] for line in header[start:].splitlines()]  # drop "#" and the explanation
    uncommented = tomllib.loads("\n".join(lines))
    assert {name: set(table) for name, table in uncommented["guards"].items()} == {name: set(keys) for name, keys in GUARD_KEYS.items()}
    path = write(user_profiles_dir() / "uncommented.toml", BASE + "\n".join(lines) + "\n")
    assert load_profile(str(path), env={}).guards == GuardsConfig()


def test_native_pass_through_reports_a_broken_project_guards_table(tmp_path: Path) -> None:
    """The project file decides: its broken [guards] table is an error. Named explicitly
    (`--profile native`), native pass-through works and the broken file is a warning."""
    path = write(tmp_path / "repo" / ".agentwrap.toml", '[guards.loop]\naction = "stop"\n')
    with pytest.raises(ConfigError) as err:
        resolve_routing(AGENTS["claude"], None, {}, str(tmp_path / "repo"))
    assert str(err.value).startswith(f"{path}: guards.loop.action"), str(err.value)
    plan = plan_session(AGENTS["claude"], "native", {}, str(tmp_path / "repo"))
    assert plan.error is None and plan.profile.guards == GuardsConfig()
    (warning,) = plan.warnings
    assert str(path) in warning and "guards.loop.action" in warning
