"""Nobody registered twice, no join URL lost: kills, lost answers, chaos, quotas, a second run."""

from __future__ import annotations

import collections
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from importer.engine.journal import Journal
from importer.files import data_folder
from importer.sandbox import ORGANIZER_KEY, WEBINAR_KEY
from tests.helpers import (
    ENV,
    SandboxProcess,
    ThreadedServer,
    command,
    kill_repeatedly,
    people,
    posix_only,
    register,
    register_args,
    server_registrants,
    sheet_rows,
    token_env,
    write_csv,
)


def assert_each_registered_once(
    entries: list[dict[str, Any]], rows: list[dict[str, Any]], count: int
) -> None:
    emails = collections.Counter(entry["email"] for entry in entries)
    assert len(emails) == count
    assert max(emails.values()) == 1, emails.most_common(3)
    by_email = {entry["email"]: entry for entry in entries}
    assert len(rows) == count
    for row in rows:
        assert row["status"] in ("registered", "already_registered"), row
        server = by_email[row["email"]]
        assert row["registrantKey"] == str(server["registrantKey"])
        assert row["joinUrl"] == server["joinUrl"]


@posix_only
def test_killed_at_random_moments_and_rerun_registers_everyone_exactly_once(
    tmp_path: Path, sandbox_process: Callable[..., SandboxProcess]
) -> None:
    # Without dedupe the sandbox registers a repeated e-mail again: a blind re-send would show.
    server = sandbox_process("--rate", "0", "--latency", "0.02", "--no-dedupe")
    source = write_csv(tmp_path / "guests.csv", people(1000))
    out = tmp_path / "guests.xlsx"
    argv = command(
        *register_args(
            source,
            server.api_url,
            "--rate",
            "50",
            "--out",
            str(out),
            "--journal",
            str(tmp_path / "journal.sqlite3"),
            "--quiet",
        )
    )
    env = token_env(ENV["G2W_ACCESS_TOKEN"])
    assert kill_repeatedly(argv, seed=20261128, runs=12, pause=(0.5, 2.0), env=env) >= 10
    final = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert final.returncode == 0, final.stderr
    assert_each_registered_once(server_registrants(server.api_url), sheet_rows(out), 1000)
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0
    assert len(server_registrants(server.api_url)) == 1000  # the finished run sent nothing


def test_lost_answers_are_settled_by_reconciliation(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0, drop_rate=0.05, dedupe=False, seed=11)
    source = write_csv(tmp_path / "guests.csv", people(400))
    result = register(server.api_url, source, "--rate", "200")
    assert result.exit_code == 0, result.output
    assert server.sandbox.stats["dropped"] >= 10
    assert_each_registered_once(
        server.sandbox.registrants(), sheet_rows(tmp_path / "guests-joinurls.xlsx"), 400
    )


def test_chaos_of_errors_429s_and_slow_answers(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(
        rate=0,
        error_rate=0.05,
        throttle_rate=0.05,
        slow_rate=0.02,
        slow_seconds=3,
        dedupe=False,
        seed=12,
    )
    source = write_csv(tmp_path / "guests.csv", people(1000))
    result = register(server.api_url, source, "--rate", "200", "--timeout", "1")
    assert result.exit_code == 0, result.output
    stats = server.sandbox.stats
    assert min(stats["errors"], stats["throttled"], stats["slow"]) > 5
    assert_each_registered_once(
        server.sandbox.registrants(), sheet_rows(tmp_path / "guests-joinurls.xlsx"), 1000
    )


def test_quota_stops_with_exit_3_and_a_rerun_finishes(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0, quota=300)
    source = write_csv(tmp_path / "guests.csv", people(500))
    first = register(server.api_url, source, "--rate", "100")
    assert first.exit_code == 3, first.output
    assert (
        "Stopped early: the API refuses further calls for now (HTTP 403: Daily request "
        "quota exceeded). 200 rows are pending: run the same command again" in first.stderr
    )
    statuses = collections.Counter(
        row["status"] for row in sheet_rows(tmp_path / "guests-joinurls.xlsx")
    )
    assert statuses == {"registered": 300, "pending": 200}

    server.sandbox.config.quota = None  # a new day
    second = register(server.api_url, source, "--rate", "100")
    assert second.exit_code == 0, second.output
    assert "Resuming: 300 of 500 rows were settled by an earlier run." in second.stderr
    assert_each_registered_once(
        server.sandbox.registrants(), sheet_rows(tmp_path / "guests-joinurls.xlsx"), 500
    )


def test_max_calls_caps_a_run_and_the_next_run_goes_on(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(30))
    first = register(server.api_url, source, "--max-calls", "12", "--concurrency", "1")
    assert first.exit_code == 3
    assert "the run made the 12 calls --max-calls allows" in first.stderr
    # the webinar, its form, the organizer's webinars (for its approval setting), and 9
    # registrations (a first run reads no registrant list before sending)
    assert len(server.sandbox.registrants()) == 9
    second = register(server.api_url, source, "--max-calls", "100")
    assert second.exit_code == 0
    assert server.sandbox.stats["created"] == 30


def test_a_finished_run_run_again_sends_nothing(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(20))
    assert register(server.api_url, source).exit_code == 0
    calls = server.sandbox.stats["calls"]
    again = register(server.api_url, source, "--out", str(tmp_path / "again.csv"))
    assert again.exit_code == 0
    assert (
        "Earlier:  20 of 20 rows were settled by an earlier run of g2w-import; not sent again."
        in again.stderr
    )
    assert "Resuming" not in again.stderr  # the run before finished: nothing to resume
    # only reads: the webinar, its form, its approval setting, and the check of every row
    assert server.sandbox.stats["calls"] == calls + 4
    assert server.sandbox.stats["list_reads"] == 2  # one check for each run
    assert server.sandbox.stats["created"] == 20
    assert (tmp_path / "again.csv").read_text(encoding="utf-8-sig").count("registered") == 20


def test_people_registered_elsewhere_are_found_by_409_and_not_registered_twice(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    # A first run reads no registrant list before sending: GoTo answers 409 for people it has
    # (without their keys, as the spec's 409), and one read of the list settles them all.
    server = loopback_sandbox(rate=0)
    rows = people(10)
    for first, last, email in rows[1:4]:
        server.sandbox.add_registrant({"firstName": first, "lastName": last, "email": email})
    source = write_csv(tmp_path / "guests.csv", rows)
    result = register(server.api_url, source)
    assert result.exit_code == 0
    assert "Done: 7 registered, 3 already registered." in result.stderr
    assert server.sandbox.stats["conflicts"] == 3
    assert server.sandbox.stats["list_reads"] == 1
    rows_out = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert_each_registered_once(server.sandbox.registrants(), rows_out, 10)
    statuses = [row["status"] for row in rows_out]
    assert statuses == ["already_registered"] * 3 + ["registered"] * 7


def test_a_second_import_of_the_same_webinar_is_refused(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(3))
    path = tmp_path / "journal.sqlite3"
    locks = data_folder() / "locks"
    with Journal.open(path, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY, locks=locks):
        result = register(server.api_url, source, "--journal", str(path))
        # another journal for the same webinar does not get round the lock
        other = register(server.api_url, source, "--journal", str(tmp_path / "other.sqlite3"))
    for refused in (result, other):
        assert refused.exit_code == 2
        assert "another import for this webinar is running" in refused.stderr
    assert server.sandbox.stats["calls"] == 0
    assert register(server.api_url, source, "--journal", str(path)).exit_code == 0


@posix_only
def test_a_journal_path_that_is_no_journal_is_left_as_it_was(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(2))
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a journal\n" * 50)
    notes.chmod(0o644)
    result = register(server.api_url, source, "--journal", str(notes))
    assert result.exit_code == 2
    assert "is not a usable journal" in result.stderr
    assert stat.S_IMODE(notes.stat().st_mode) == 0o644
    assert notes.read_text() == "my notes, not a journal\n" * 50
    assert server.sandbox.stats["created"] == 0
