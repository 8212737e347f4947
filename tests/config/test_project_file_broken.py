"""A broken `.agentwrap.toml` in the working directory does not block a profile the user
names, nor `profiles list`; it is one warning line; `--no-project` ignores the file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agentwrap.doctor import WARN, Context, DoctorOptions, run_checks
from tests.session.test_launcher import standin  # noqa: F401  (fixture)

BROKEN = 'profile = "x"\n[agents.claude\n'  # invalid TOML


@pytest.fixture
def broken_repo(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".agentwrap.toml").write_text(BROKEN)
    monkeypatch.chdir(repo)
    return repo


def test_named_profile_works_with_a_warning(standin, broken_repo):
    proc = standin.run(["claude", "--profile", "offline", "--", "x"], STANDIN_PROTOCOL="anthropic")
    assert proc.returncode == 0, proc.stderr
    assert standin.record()["status"] == 200
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("agentwrap: warning:")]
    assert len(warnings) == 1 and ".agentwrap.toml" in warnings[0] and "invalid TOML" in warnings[0]


def test_unnamed_profile_with_a_broken_file_is_an_error_naming_the_way_out(standin, broken_repo):
    proc = standin.run(["claude", "--", "x"])
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert ".agentwrap.toml" in line and "--no-project" in line


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_project_ignores_the_file(standin, broken_repo, how):
    args = ["claude", "--no-project", "--", "x"] if how == "flag" else ["claude", "--", "x"]
    extra = {"AGENTWRAP_NO_PROJECT": "1"} if how == "env" else {}
    proc = standin.run(args, ANTHROPIC_API_KEY="k", **extra)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr


def test_profiles_list_still_lists(broken_repo):
    proc = subprocess.run([sys.executable, "-m", "agentwrap", "profiles", "list", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = {p["name"] for p in json.loads(proc.stdout)["profiles"]}
    assert {"offline", "anthropic"} <= names
    assert "warning" in proc.stderr and ".agentwrap.toml" in proc.stderr


def test_doctor_shows_the_warning_and_the_named_profile(broken_repo):
    rows = run_checks(DoctorOptions(agents=("claude",), profile="offline"), Context.current())
    warning = next(r for r in rows if r.name == "claude profile selection")
    assert warning.status == WARN and ".agentwrap.toml" in warning.detail and "--no-project" in warning.fix
    assert next(r for r in rows if r.name == "claude profile").status == "ok"
