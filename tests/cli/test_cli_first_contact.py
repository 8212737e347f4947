"""First contact with the command line: --version, shell completion, help that reads right,
options missing their value, piped output that keeps paths whole."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentwrap import __version__
from agentwrap.cli import _build_app, main
from agentwrap.doctor.base import Check
from agentwrap.doctor_cli import render_table

REPO = Path(__file__).resolve().parents[2]


def agentwrap(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentwrap", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, timeout=60, **kw)


@pytest.fixture
def cli():
    app = _build_app()
    runner = CliRunner()
    return lambda *args, **kw: runner.invoke(app, list(args), **kw)


# -- version -------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag(flag, cli) -> None:
    proc = agentwrap(flag)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"agentwrap {__version__}\n", "")
    r = cli(flag)  # through typer too (the root option), as in `agentwrap -V runs`
    assert (r.exit_code, r.stdout, r.stderr) == (0, f"agentwrap {__version__}\n", "")
    assert cli("version").stdout == f"{__version__}\n"


# -- help ----------------------------------------------------------------------------------

COMMANDS = [[], ["claude"], ["codex"], ["gemini"], ["doctor"], ["runs"], ["runs", "prune"], ["show"], ["replay"],
            ["version"], ["profiles"], ["profiles", "list"], ["profiles", "show"], ["profiles", "path"], ["profiles", "new"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "agentwrap")
def test_help_names_values_and_shows_switches_as_switches(command, cli) -> None:
    r = cli(*command, "--help", env={"COLUMNS": "200"})
    assert r.exit_code == 0 and r.stderr == ""
    assert not re.search(r"<(bool|str|int|float|list|path)[^>]*>", r.stdout), r.stdout
    for line in r.stdout.splitlines():
        m = re.match(r"^│\s+(--[a-z-]+)\s+(?:-[a-zA-Z]\s+)?(\S+)", line)
        if m and m.group(1) in ("--json", "--quiet", "--help", "--no-capture", "--no-project", "--errors", "--dry-run",
                                "--online", "--wire", "--version"):
            assert not m.group(2).isupper(), f"{m.group(1)} shows a value: {line}"


def test_help_shows_what_options_take(cli) -> None:
    out = cli("claude", "--help", env={"COLUMNS": "200"}).stdout
    assert re.search(r"--profile\s+NAME\|PATH", out) and re.search(r"--capture-dir\s+DIR", out)
    assert "(env: AGENTWRAP_NO_PROJECT=1)" in out and "AGENT_ARGS" in out
    runs = cli("runs", "--help", env={"COLUMNS": "200"}).stdout
    for option, metavar in (("--limit", "N"), ("--since", "AGE|DATE"), ("--grep", "TEXT"), ("--agent", "NAME")):
        assert re.search(rf"{option}\s+(-n\s+)?{re.escape(metavar)}\s", runs), option
    show = cli("show", "--help", env={"COLUMNS": "200"}).stdout
    assert "ID|PATH|latest" in show and re.search(r"--html\s+FILE", show)
    assert "--install-completion" in cli("--help", env={"COLUMNS": "200"}).stdout


# -- options without their value -------------------------------------------------------------


@pytest.mark.parametrize(("argv", "option", "metavar"), [
    (["claude", "--profile"], "--profile", "NAME|PATH"),
    (["codex", "--profile", "--", "exec", "hi"], "--profile", "NAME|PATH"),
    (["gemini", "--profile="], "--profile", "NAME|PATH"),
    (["claude", "-q", "--capture-dir"], "--capture-dir", "DIR"),
])
def test_agent_option_without_its_value(argv, option, metavar, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == ""
    assert err == f"agentwrap: option {option} needs a value: agentwrap {argv[0]} {option} {metavar} -- AGENT_ARGS...\n"
    assert "unknown option" not in err


def test_unknown_agent_options_are_still_named(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["claude", "--profil", "x"])
    assert exit_info.value.code == 2 and "unknown option --profil" in capsys.readouterr().err


def test_other_commands_say_the_option_needs_an_argument(cli) -> None:
    r = cli("doctor", "--profile")
    assert r.exit_code == 2 and r.stdout == "" and "--profile" in r.stderr and "requires an argument" in r.stderr


# -- shell completion ------------------------------------------------------------------------


def test_install_completion_for_bash_and_complete(tmp_path, isolated_env) -> None:
    if not Path("/bin/bash").exists():
        pytest.skip("no bash here")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "agentwrap"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m agentwrap "$@"\n')
    exe.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO), "SHELL": "/bin/bash"}
    # Run from bash, so the shell detection finds it as the user's would.
    proc = subprocess.run(["/bin/bash", "-c", "agentwrap --install-completion"], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0, proc.stderr
    script = isolated_env / ".bash_completions" / "agentwrap.sh"
    assert "bash completion installed in" in proc.stdout and script.is_file()
    assert f"source '{script}'" in (isolated_env / ".bashrc").read_text()
    function = re.search(r"^(\w+)\(\)", script.read_text(), re.M).group(1)

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        cmd = f"source '{script}'; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; {function} agentwrap; " \
              'printf "%s\\n" "${COMPREPLY[@]}"'
        r = subprocess.run(["/bin/bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert "runs" in complete("agentwrap", "ru")
    assert "--profile" in complete("agentwrap", "claude", "--pro")  # an agent command completes, never starts
    assert set(complete("agentwrap", "runs", "--gr")) == {"--grep"}


# -- piped tables ------------------------------------------------------------------------------


def test_doctor_table_piped_keeps_long_paths_whole() -> None:
    path = "/home/someone/projects/a-rather-long-directory-name/another-level/" + "deeper/" * 8 + "settings.json"
    rows = [Check("claude settings", "fail", f"{path} sets ANTHROPIC_BASE_URL, which bypasses the proxy",
                  f"remove it from {path}"),
            Check("loopback bind", "ok", "127.0.0.1 can be bound")]
    out = io.StringIO()  # not a terminal, as with `agentwrap doctor | less`
    render_table(rows, file=out)
    text = out.getvalue()
    assert any(path in line for line in text.splitlines() if "bypasses" in line)  # the path on one line, unbroken
    assert f"fix: remove it from {path}" in text
    assert all(line == line.rstrip() for line in text.splitlines())  # no padding at the ends of lines


def test_runs_piped_keeps_long_models_and_paths_whole(tmp_path) -> None:
    from tests.support.bundles import Turn, record_run

    cap = tmp_path / "cap"
    record_run(cap, profile="a-profile-name-that-goes-on-and-on-" * 3,
               turns=[Turn(model=f"model-{i}-with-a-long-name-for-no-reason") for i in range(4)])
    proc = agentwrap("runs", "--capture-dir", str(cap), env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "60"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3  # header, one row, the total: nothing folded
    assert "model-3-with-a-long-name-for-no-reason" in lines[1] and "a-profile-name-that-goes-on-and-on-" * 3 in lines[1]
