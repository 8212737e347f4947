"""Retention: sizes and ages as users write them, the config file, and which runs go."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentwrap.capture.retention import (
    DEFAULT_KEEP_RUNS,
    DEFAULT_MAX_BYTES,
    LIVE_GRACE_S,
    RetentionSettings,
    apply_retention,
    bundle_files,
    config_file,
    format_size,
    load_retention_settings,
    parse_age,
    parse_size,
)
from agentwrap.errors import ConfigError
from tests.support.bundles import T0, copy_run, record_run

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("text", "expected"), [
    ("1GiB", 1 << 30), ("1 GiB", 1 << 30), ("1G", 1 << 30), ("1gb", 10**9), ("500MB", 500 * 10**6),
    ("500MiB", 500 << 20), ("1.5GiB", 3 << 29), ("2048", 2048), (2048, 2048), ("10k", 10 << 10), ("3 B", 3),
    ("0", None), (0, None), ("0GiB", None),
])
def test_parse_size(text, expected) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "1 XB", "-5", "1.2.3G", True, 1.5, "", None])
def test_parse_size_refuses_with_the_setting_named(text) -> None:
    with pytest.raises(ConfigError, match="capture.max_size must be a size"):
        parse_size(text, "capture.max_size")


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", NOW - timedelta(minutes=30)), ("12h", NOW - timedelta(hours=12)), ("7d", NOW - timedelta(days=7)),
    ("2w", NOW - timedelta(weeks=2)), ("90s", NOW - timedelta(seconds=90)), ("1.5h", NOW - timedelta(minutes=90)),
    ("3 days", NOW - timedelta(days=3)), ("2026-11-20T08:00:00Z", datetime(2026, 11, 20, 8, tzinfo=timezone.utc)),
    ("2026-11-20T08:00+02:00", datetime(2026, 11, 20, 6, tzinfo=timezone.utc)),
])
def test_parse_age(text, expected) -> None:
    assert parse_age(text, now=NOW) == expected


def test_a_bare_date_is_local_midnight(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    import time

    time.tzset()
    try:
        assert parse_age("2026-11-20") == datetime(2026, 11, 19, 15, tzinfo=timezone.utc)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("text", ["yesterday", "7", "3 fortnights", "", "2026-13-01"])
def test_parse_age_refuses(text) -> None:
    with pytest.raises(ConfigError, match=r"--since must be an age such as 30m, 12h, 7d or 2w, or a date"):
        parse_age(text, "--since", now=NOW)


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 1023, 1024, 52_086, 5 << 20, 3 << 30, None)] == [
        "0 B", "1023 B", "1.0 KiB", "50.9 KiB", "5.0 MiB", "3.0 GiB", "-"]


# -- the config file ---------------------------------------------------------------------


def write_config(text: str) -> Path:
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_config_file(isolated_env) -> None:
    assert config_file() == isolated_env / ".config" / "agentwrap" / "config.toml"
    assert load_retention_settings() == RetentionSettings(DEFAULT_KEEP_RUNS, DEFAULT_MAX_BYTES) == RetentionSettings(50, 1 << 30)


@pytest.mark.parametrize(("text", "expected"), [
    ('[capture]\nkeep_runs = 10\nmax_size = "200MB"\n', RetentionSettings(10, 200 * 10**6)),
    ("[capture]\nkeep_runs = 0\nmax_size = 0\n", RetentionSettings(None, None)),
    ("[capture]\nkeep_runs = 5\n", RetentionSettings(5, 1 << 30)),
    ('[other]\nx = 1\n', RetentionSettings(50, 1 << 30)),  # tables of other features are not ours to judge
])
def test_config_file_values(isolated_env, text, expected) -> None:
    write_config(text)
    assert load_retention_settings() == expected


@pytest.mark.parametrize(("text", "message"), [
    ("[capture]\nkeep_run = 10\n", "unknown key capture.keep_run. Known keys: capture.keep_runs, capture.max_size"),
    ("[capture]\nkeep_runs = -1\n", "capture.keep_runs must be a whole number of runs"),
    ('[capture]\nkeep_runs = "ten"\n', "capture.keep_runs must be a whole number of runs"),
    ('[capture]\nmax_size = "huge"\n', "capture.max_size must be a size"),
    ("capture = 3\n", r"\[capture\] must be a table"),
    ("[capture\n", "not valid TOML"),
])
def test_config_file_errors_name_the_file_and_key(isolated_env, text, message) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_retention_settings()
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# -- which runs go -----------------------------------------------------------------------


def _runs(tmp_path: Path, n: int) -> list[Path]:
    """`n` finished runs, newest last, modified long ago (none looks live)."""
    src = record_run(tmp_path / "src")
    paths = copy_run(src, tmp_path / "cap", n)
    old = (NOW - timedelta(days=30)).timestamp()
    for p in paths:
        os.utime(p, (old, old))
    return paths


def _left(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_count_cap_keeps_the_newest(tmp_path) -> None:
    paths = _runs(tmp_path, 8)
    deleted = apply_retention(tmp_path / "cap", paths[-1], RetentionSettings(keep_runs=3, max_bytes=None), now=NOW)
    assert sorted(deleted) == sorted(str(p) for p in paths[:5])
    assert _left(tmp_path / "cap") == sorted(p.name for p in paths[5:])
    assert apply_retention(tmp_path / "cap", paths[-1], RetentionSettings(3, None), now=NOW) == []  # idempotent


def test_size_cap_cuts_at_the_first_run_that_does_not_fit(tmp_path) -> None:
    paths = _runs(tmp_path, 6)
    size = paths[0].stat().st_size
    deleted = apply_retention(tmp_path / "cap", None, RetentionSettings(keep_runs=None, max_bytes=int(size * 2.5)), now=NOW)
    assert sorted(deleted) == sorted(str(p) for p in paths[:4])  # the two newest fit


def test_the_current_run_is_never_deleted_even_alone_over_the_caps(tmp_path) -> None:
    paths = _runs(tmp_path, 4)
    current = paths[1]  # not the newest: a concurrent session started later
    deleted = apply_retention(tmp_path / "cap", current, RetentionSettings(keep_runs=1, max_bytes=10), now=NOW)
    assert str(current) not in deleted and current.exists()
    assert _left(tmp_path / "cap") == [current.name]


def test_a_run_that_may_still_be_writing_is_spared(tmp_path) -> None:
    paths = _runs(tmp_path, 3)
    live = record_run(tmp_path / "cap", run_id="11ve0000", started=T0 - timedelta(days=1), close=False)
    killed = record_run(tmp_path / "cap", run_id="dead0000", started=T0 - timedelta(days=2), close=False)
    long_ago = (datetime.now(timezone.utc) - timedelta(seconds=LIVE_GRACE_S + 60)).timestamp()
    os.utime(killed, (long_ago, long_ago))  # cut short and untouched for more than a day: a killed run
    deleted = apply_retention(tmp_path / "cap", paths[-1], RetentionSettings(keep_runs=1, max_bytes=None))
    assert live.exists() and str(killed) in deleted
    assert sorted(deleted) == sorted([str(p) for p in paths[:2]] + [str(killed)])


def test_no_caps_delete_nothing_and_foreign_files_are_left_alone(tmp_path) -> None:
    paths = _runs(tmp_path, 3)
    cap = tmp_path / "cap"
    for name in ("notes.txt", "my.cbor", ".runs-index.json", "20261120T090000Z-claude-x.cbor.tmp"):
        (cap / name).write_text("keep me")
    assert apply_retention(cap, None, RetentionSettings(None, None), now=NOW) == []
    assert apply_retention(cap, None, RetentionSettings(keep_runs=1, max_bytes=None), now=NOW) == [str(p) for p in paths[1::-1]]
    assert _left(cap) == sorted([".runs-index.json", "20261120T090000Z-claude-x.cbor.tmp", "my.cbor", "notes.txt", paths[2].name])


def test_settings_default_to_the_config_file(tmp_path, isolated_env) -> None:
    paths = _runs(tmp_path, 4)
    write_config("[capture]\nkeep_runs = 2\n")
    assert sorted(apply_retention(tmp_path / "cap", paths[-1], now=NOW)) == sorted(str(p) for p in paths[:2])
    write_config("[capture]\nkeep_runs = nope\n")
    with pytest.raises(ConfigError):
        apply_retention(tmp_path / "cap", paths[-1], now=NOW)


def test_corrupt_and_missing_directories(tmp_path) -> None:
    assert apply_retention(tmp_path / "missing", None, RetentionSettings(1, None)) == []
    paths = _runs(tmp_path, 2)
    paths[0].write_bytes(b"not a bundle")  # an unreadable bundle is a run like any other
    old = (NOW - timedelta(days=30)).timestamp()
    os.utime(paths[0], (old, old))
    assert apply_retention(tmp_path / "cap", None, RetentionSettings(1, None), now=NOW) == [str(paths[0])]


def test_bundle_files_read_names_not_contents(tmp_path) -> None:
    paths = _runs(tmp_path, 3)
    files = bundle_files(tmp_path / "cap")
    assert [f.path for f in files] == [str(p) for p in reversed(paths)]
    assert files[0].short_id == "00000002" and files[0].started == T0 + timedelta(minutes=2)
    assert files[0].size == paths[2].stat().st_size


def test_retention_of_a_thousand_runs_is_quick(tmp_path) -> None:
    import time

    paths = _runs(tmp_path, 1000)
    started = time.perf_counter()
    deleted = apply_retention(tmp_path / "cap", paths[-1], RetentionSettings(), now=NOW)
    assert len(deleted) == 950 and len(list((tmp_path / "cap").iterdir())) == 50
    assert time.perf_counter() - started < 5  # one scandir and one unlink per run
    started = time.perf_counter()
    assert apply_retention(tmp_path / "cap", paths[-1], RetentionSettings(), now=NOW) == []
    assert time.perf_counter() - started < 0.5  # the steady state: nothing opened
