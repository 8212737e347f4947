"""`agentwrap runs`, `runs prune` and `show` through typer's runner: exit codes, stdout and
stderr apart, every --json parsed."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentwrap.cli import _build_app
from agentwrap.capture.runs import INDEX_FILE_NAME
from tests.support.bundles import T0, Turn, copy_run, cut_footer, record_run


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """invoke(*args) in agentwrap's own app, with AGENTWRAP_CAPTURE_DIR pointing at tmp_path/cap."""
    monkeypatch.setenv("AGENTWRAP_CAPTURE_DIR", str(tmp_path / "cap"))
    app = _build_app()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


@pytest.fixture
def cap(tmp_path: Path) -> Path:
    return tmp_path / "cap"


def three_runs(cap: Path) -> dict[str, Path]:
    """A priced claude run, a codex run with a failed request, a gemini run cut short."""
    return {
        "claude": record_run(cap, agent="claude", profile="work", run_id="c1a0de01", started=T0,
                             turns=[Turn(prompt="refactor the parser", usage=(10_000, 500, 8_000, 0)),
                                    Turn(model="claude-haiku-4-5", prompt="title please", usage=(300, 20, 0, 0))]),
        "codex": record_run(cap, agent="codex", profile="offline", run_id="c0dex002", started=T0 + timedelta(hours=1),
                            turns=[Turn(model="gpt-5", upstream=None, prompt="write a changelog"),
                                   Turn(model="gpt-5", upstream=None, status=529)], exit_code=1),
        "gemini": record_run(cap, agent="gemini", profile="work", run_id="9e313103", started=T0 + timedelta(hours=2),
                             turns=[Turn(model="gemini-2.5-pro", upstream=None, prompt="explain the bug")], close=False),
    }


def test_runs_table_has_a_header_and_one_row_per_run(cli, cap) -> None:
    three_runs(cap)
    r = cli("runs")
    assert r.exit_code == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["id", "time", "agent", "profile", "models", "reqs", "errs", "tokens", "cost", "exit", "took"]
    gemini, codex, claude = (line.split() for line in lines[1:4])
    # the id, the local start time (two words), then the rest
    assert gemini[0] == "9e313103" and gemini[3:] == ["gemini", "work", "gemini-2.5-pro", "1", "0", "1.1k", "-", "cut", "-"]
    assert codex[0] == "c0dex002" and codex[3:] == ["codex", "offline", "gpt-5", "2", "1", "1.1k", "-", "1", "12.5s"]
    # claude-sonnet-4-5 at Anthropic: 2,000 uncached input, 8,000 cache reads, 500 output; haiku 300 in, 20 out
    assert claude[0] == "c1a0de01" and claude[3:7] == ["claude", "work", "claude-sonnet-4-5,", "claude-haiku-4-5"]
    assert claude[7:10] == ["2", "0", "10.8k"] and claude[10].startswith("$0.0") and claude[11:] == ["0", "12.5s"]
    assert str(cap) not in "\n".join(lines[:4])  # no path column: the id is what show and replay take
    assert lines[4].startswith("3 runs · ") and f"KiB in {cap}" in lines[4] and "keeping the newest 50 within 1.0 GiB" in lines[4]


def test_runs_json_keeps_its_schema_and_reports_size_and_cost(cli, cap) -> None:
    paths = three_runs(cap)
    r = cli("runs", "--json")
    assert r.exit_code == 0 and r.stderr == ""
    doc = json.loads(r.stdout)
    assert doc["schema"] == 1 and doc["capture_dir"] == str(cap) and doc["total_runs"] == 3
    assert doc["total_bytes"] == sum(p.stat().st_size for p in paths.values())
    assert doc["retention"] == {"keep_runs": 50, "max_bytes": 1 << 30}
    by_agent = {row["agent"]: row for row in doc["runs"]}
    claude = by_agent["claude"]
    assert claude["models"] == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    # Anthropic list prices: sonnet 4.5 $3/MTok in, $0.30 cache read, $15 out; haiku 4.5 $1 in, $5 out
    expected = (2000 * 3 + 8000 * 0.3 + 500 * 15) / 1e6 + (300 * 1 + 20 * 5) / 1e6
    assert claude["cost_usd"] == pytest.approx(expected) and claude["unpriced_requests"] == 0
    assert (claude["requests"], claude["errors"], claude["tokens"], claude["exit_code"]) == (2, 0, 10_820, 0)
    codex = by_agent["codex"]
    assert codex["cost_usd"] is None and codex["unpriced_requests"] == 1 and codex["errors"] == 1
    gemini = by_agent["gemini"]
    assert gemini["complete"] is False and gemini["requests"] == 1 and gemini["models"] == ["gemini-2.5-pro"]
    for row in doc["runs"]:
        assert set(row) >= {"time", "agent", "profile", "duration_s", "exit_code", "requests", "tokens", "path",
                            "complete", "run_id", "error", "models", "errors", "cost_usd", "size_bytes"}


@pytest.mark.parametrize(("args", "expected"), [
    (["--agent", "codex"], ["c0dex002"]),
    (["--profile", "work"], ["9e313103", "c1a0de01"]),
    (["--errors"], ["9e313103", "c0dex002"]),
    (["--since", "2026-11-20T10:30:00Z"], ["9e313103"]),
    (["--grep", "REFACTOR the"], ["c1a0de01"]),
    (["--grep", "changelog", "--agent", "codex"], ["c0dex002"]),
    (["--grep", "haiku"], ["c1a0de01"]),  # models are searched too
    (["--grep", "no such words"], []),
    (["--profile", "work", "-n", "1"], ["9e313103"]),
])
def test_runs_filters(cli, cap, args, expected) -> None:
    three_runs(cap)
    r = cli("runs", "--json", *args)
    assert r.exit_code == 0, r.stderr
    assert [row["run_id"] for row in json.loads(r.stdout)["runs"]] == expected


def test_no_match_says_so_on_stderr(cli, cap) -> None:
    three_runs(cap)
    r = cli("runs", "--agent", "codex", "--grep", "nothing like this")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == f"agentwrap: no runs match in {cap}\n"
    r = cli("runs")
    assert r.exit_code == 0  # unfiltered still lists
    empty = cli("runs", "--capture-dir", str(cap / "none"))
    assert empty.exit_code == 0 and empty.stdout == "" and "no runs recorded yet" in empty.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["-n", "0"], "agentwrap: -n/--limit must be 1 or more, not 0\n"),
    (["-n", "-3"], "agentwrap: -n/--limit must be 1 or more, not -3\n"),
    (["--agent", "cursor"], "agentwrap: unknown agent 'cursor' for --agent. Known agents: claude, codex, gemini\n"),
    (["--since", "last week"], "agentwrap: --since must be an age such as 30m, 12h, 7d or 2w, or a date such as 2026-11-20, not 'last week'\n"),
])
def test_runs_usage_errors_with_a_thousand_runs(cli, cap, tmp_path, args, message) -> None:
    copy_run(record_run(tmp_path / "src"), cap, 1000)
    r = cli("runs", *args)
    assert r.exit_code == 2 and r.stdout == "" and r.stderr == message


def test_a_thousand_runs_list_quickly_and_the_index_spares_rereading(cli, cap, tmp_path) -> None:
    copy_run(record_run(tmp_path / "src", turns=[Turn(), Turn(model="claude-opus-4-1")]), cap, 1000)
    r = cli("runs", "--json", "-n", "30")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["total_runs"] == 1000 and len(doc["runs"]) == 30
    assert doc["runs"][0]["run_id"] == "a1b2c3d4" and doc["runs"][0]["models"] == ["claude-sonnet-4-5", "claude-opus-4-1"]
    index = json.loads((cap / INDEX_FILE_NAME).read_text())
    assert len(index["runs"]) == 30 and "genai-prices" in index["pricing"]
    assert oct((cap / INDEX_FILE_NAME).stat().st_mode & 0o777) == "0o600"
    # The newest bundle's content changes but not its size or time: the index answers for it.
    newest = max(cap.glob("*.cbor"))
    st = newest.stat()
    newest.write_bytes(newest.read_bytes().replace(b"claude-opus-4-1", b"claude-opus-4-X"))
    os.utime(newest, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert json.loads(cli("runs", "--json", "-n", "1").stdout)["runs"][0]["models"][1] == "claude-opus-4-1"
    os.utime(newest, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # touched: read again
    assert json.loads(cli("runs", "--json", "-n", "1").stdout)["runs"][0]["models"][1] == "claude-opus-4-X"


def test_unreadable_bundles_are_listed_not_fatal(cli, cap) -> None:
    three_runs(cap)
    (cap / "20261121T000000Z-claude-bad00000.cbor").write_bytes(b"garbage")
    r = cli("runs")
    assert r.exit_code == 0 and "unreadable:" in r.stdout.splitlines()[1] and "bad00000" in r.stdout
    doc = json.loads(cli("runs", "--json").stdout)
    assert "not an agentwrap bundle" in doc["runs"][0]["error"]


# -- show by id --------------------------------------------------------------------------


def test_show_takes_a_run_id_a_prefix_latest_or_a_path(cli, cap) -> None:
    paths = three_runs(cap)
    for spec in ("c1a0de01", "c1a", "C1A0", paths["claude"].name, paths["claude"].name[:-5], str(paths["claude"])):
        r = cli("show", "--json", spec)
        assert r.exit_code == 0, (spec, r.stderr)
        assert json.loads(r.stdout)["run"]["run_id"] == "c1a0de01"
    latest = cli("show", "--json")
    assert json.loads(latest.stdout)["run"]["run_id"] == "9e313103"  # no argument: latest
    assert json.loads(cli("show", "--json", "latest").stdout)["run"]["run_id"] == "9e313103"


def test_show_refuses_an_ambiguous_prefix_in_one_line(cli, cap) -> None:
    three_runs(cap)
    r = cli("show", "c")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("agentwrap: run id 'c' is ambiguous: it matches 2 runs: c0dex002 (2026-11-20 10:00:00Z codex), "
                               "c1a0de01 (2026-11-20 09:00:00Z claude). Give more characters.")


def test_show_ambiguous_among_many_names_a_few(cli, cap, tmp_path) -> None:
    copy_run(record_run(tmp_path / "src"), cap, 40)
    r = cli("show", "0000000")
    assert r.exit_code == 2 and "matches 16 runs" in r.stderr and "and 11 more" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize(("spec", "message"), [
    ("ffff", "no run 'ffff' in {cap}: give a run id from `agentwrap runs`, `latest`, or a bundle path"),
    ("nowhere/run.cbor", "bundle nowhere/run.cbor not found"),
    ("other.cbor", "bundle other.cbor not found (not here, nor in {cap})"),
])
def test_show_unknown_run(cli, cap, spec, message) -> None:
    three_runs(cap)
    r = cli("show", spec)
    assert r.exit_code == 2 and r.stdout == "" and r.stderr == f"agentwrap: {message.format(cap=cap)}\n"


def test_show_html_dash_writes_the_page_to_stdout(cli, cap, tmp_path, monkeypatch) -> None:
    three_runs(cap)
    monkeypatch.chdir(tmp_path)
    r = cli("show", "c1a0", "--html", "-")
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.startswith("<!doctype html>") and r.stdout.rstrip().endswith("</html>")
    assert not (tmp_path / "-").exists()
    both = cli("show", "c1a0", "--html", "-", "--json")
    assert both.exit_code == 2 and both.stdout == "" and "--html - and --json both write to stdout" in both.stderr
    to_file = cli("show", "c1a0", "--html", str(tmp_path / "run.html"))
    assert to_file.exit_code == 0 and to_file.stdout == "" and "wrote" in to_file.stderr
    assert (tmp_path / "run.html").read_text().startswith("<!doctype html>")


def test_show_text_has_cost_per_request_and_run(cli, cap) -> None:
    three_runs(cap)
    r = cli("show", "c1a0de01")
    assert r.exit_code == 0
    head = r.stdout.splitlines()[:3]
    assert "exit 0 · 12.5 s · 2 requests · tokens in 10,300 / out 520 (cached 8,000) · cost $0.0" in head[2]
    exchanges = [line for line in r.stdout.splitlines() if line.startswith("── ")]
    assert len(exchanges) == 2 and all("$0.0" in line for line in exchanges)
    assert "claude-sonnet-4-5 via main  200" in exchanges[0]


# -- prune -------------------------------------------------------------------------------


def _old(paths) -> None:
    long_ago = (datetime.now(timezone.utc) - timedelta(days=10)).timestamp()
    for p in paths:
        os.utime(p, (long_ago, long_ago))


def test_prune_keep_and_dry_run(cli, cap, tmp_path) -> None:
    paths = copy_run(record_run(tmp_path / "src"), cap, 6)
    _old(paths)
    dry = cli("runs", "prune", "--keep", "2", "--dry-run")
    assert dry.exit_code == 0 and dry.stderr == ""
    lines = dry.stdout.splitlines()
    assert [ln.split()[:2] for ln in lines[:4]] == [["would", "delete"]] * 4
    assert lines[0].split()[2] == "00000003" and lines[-1].startswith("would delete 4 runs (")
    assert lines[-1].endswith(f"2 runs ({lines[-1].split('(')[2].split(')')[0]}) would be left in {cap}")
    assert len(list(cap.glob("*.cbor"))) == 6
    r = cli("runs", "prune", "--keep", "2", "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["schema"] == 1 and doc["dry_run"] is False
    assert [d["run_id"] for d in doc["deleted"]] == ["00000003", "00000002", "00000001", "00000000"]
    assert doc["kept_runs"] == 2 and doc["freed_bytes"] == 4 * paths[0].stat().st_size if paths[0].exists() else True
    assert sorted(p.name for p in cap.glob("*.cbor")) == sorted(p.name for p in paths[4:])


def test_prune_older_than_and_the_configured_default(cli, cap, tmp_path, isolated_env) -> None:
    paths = copy_run(record_run(tmp_path / "src"), cap, 5)  # started T0 + 0..4 minutes
    _old(paths)
    r = cli("runs", "prune", "--older-than", "2026-11-20T09:02:00Z")
    assert r.exit_code == 0 and r.stdout.splitlines()[-1].startswith("deleted 2 runs (")
    conf = isolated_env / ".config" / "agentwrap" / "config.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text("[capture]\nkeep_runs = 1\n")
    r = cli("runs", "prune", "--json")
    assert [d["run_id"] for d in json.loads(r.stdout)["deleted"]] == ["00000003", "00000002"]
    conf.write_text('[capture]\nkeep_runs = "many"\n')
    bad = cli("runs", "prune")
    assert bad.exit_code == 2 and bad.stdout == "" and bad.stderr.startswith(f"agentwrap: {conf}: capture.keep_runs")
    listing = cli("runs")  # a broken config file does not stop the listing; it is named on stderr
    assert listing.exit_code == 0 and "capture.keep_runs" in listing.stderr and "1 run · " in listing.stdout


def test_prune_spares_a_run_that_may_still_be_running(cli, cap, tmp_path) -> None:
    paths = copy_run(record_run(tmp_path / "src"), cap, 3)
    _old(paths)
    cut_footer(paths[0])  # no footer, modified just now
    r = cli("runs", "prune", "--keep", "1")
    assert r.exit_code == 0 and paths[0].exists() and not paths[1].exists()
    assert r.stderr == "agentwrap: kept 1 run that may still be running: 00000000\n"


def test_prune_usage_errors(cli, cap) -> None:
    r = cli("runs", "prune", "--keep", "-1")
    assert r.exit_code == 2 and r.stderr == "agentwrap: --keep must be 0 or more, not -1\n"
    r = cli("runs", "prune", "--older-than", "ages")
    assert r.exit_code == 2 and r.stderr.startswith("agentwrap: --older-than must be an age")
    r = cli("runs", "prune", "--json")  # nothing there: nothing to do
    assert r.exit_code == 0 and json.loads(r.stdout)["deleted"] == []


def test_prune_reports_what_it_could_not_delete(cli, cap, tmp_path) -> None:
    paths = copy_run(record_run(tmp_path / "src"), cap, 3)
    _old(paths)
    if os.geteuid() != 0:
        cap.chmod(0o500)
        undo = lambda: cap.chmod(0o700)  # noqa: E731
    else:  # root deletes from a read-only directory; an immutable file stops it
        if subprocess.run(["chattr", "+i", str(paths[0])], capture_output=True).returncode != 0:
            pytest.skip("no way to make a file undeletable here")
        undo = lambda: subprocess.run(["chattr", "-i", str(paths[0])], check=True)  # noqa: E731
    try:
        r = cli("runs", "prune", "--keep", "1")
    finally:
        undo()
    assert r.exit_code == 1 and r.stderr.startswith(f"agentwrap: cannot delete {paths[0]}: Operation not permitted"
                                                     if os.geteuid() == 0 else "agentwrap: cannot delete")
    assert paths[0].exists() and paths[2].exists()


def test_start_times_are_local_and_short_within_the_year(monkeypatch) -> None:
    import time

    from agentwrap.runs_cli import _local_time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        now = datetime(2026, 12, 1, tzinfo=timezone.utc)
        assert _local_time("2026-11-20T09:00:00Z", now) == "11-20 04:00"
        assert _local_time("2025-11-20T09:00:00Z", now) == "2025-11-20 04:00"
        assert _local_time(None, now) == "?" and _local_time("garbage", now) == "garbage"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_replay_takes_run_ids_too(cli, cap) -> None:
    three_runs(cap)
    for spec, message in (("ffff", "no run 'ffff'"), ("c", "run id 'c' is ambiguous")):
        r = cli("replay", spec)
        assert r.exit_code == 2 and r.stdout == "" and r.stderr.startswith(f"agentwrap: {message}") and r.stderr.count("\n") == 1
