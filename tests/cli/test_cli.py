"""The command end to end: CliRunner against the in-process sandbox and a loopback server."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from importer.cli import cli
from importer.cli.console import Console
from importer.sandbox import KICKOFF_KEY, WEBINAR_KEY
from tests.helpers import (
    TOKEN,
    ThreadedServer,
    invoke,
    people,
    register_args,
    sheet_rows,
    write_csv,
)

CANARY = "canary-token-5f1e9c0d7a"


def test_sandbox_run_registers_everyone_and_writes_the_report(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(6))
    result = invoke("register", str(source), "--sandbox")
    assert result.exit_code == 0, result.output
    report = tmp_path / "guests-joinurls.xlsx"
    assert result.stdout == f"Report: {report}\n"
    assert "To send:  6 registrants" in result.stderr
    assert "Webinar:  Product launch (sandbox)" in result.stderr
    assert "Done: 6 registered.\n" in result.stderr
    rows = sheet_rows(report)
    assert [row["row"] for row in rows] == [2, 3, 4, 5, 6, 7]
    assert all(row["status"] == "registered" for row in rows)
    assert all(
        str(row["joinUrl"]).startswith("https://sandbox.g2w-import.invalid/join/") for row in rows
    )
    assert all(len(str(row["registrantKey"])) == 19 for row in rows)


def test_invalid_and_repeated_rows_are_shown_and_exit_1(tmp_path: Path) -> None:
    rows = [*people(3), ["Dup", "Row", "PERSON0@example.com"], ["", "Lee", "lee@example"]]
    source = write_csv(tmp_path / "guests.csv", rows)
    out = tmp_path / "result.csv"
    result = invoke("register", str(source), "--sandbox", "--out", str(out))
    assert result.exit_code == 1
    assert "row 6, firstName: is empty; fill in the first name" in result.stderr
    assert "row 6, email: 'lee@example' is not a valid e-mail address" in result.stderr
    repeated = "Repeated: 1 row repeats an earlier e-mail and is not sent:\n  row 5 (as row 2)\n"
    assert repeated in result.stderr
    assert "Done: 3 registered, 1 invalid, 1 duplicate.\n" in result.stderr
    text = out.read_text(encoding="utf-8-sig")
    assert "same e-mail as row 2" in text


def test_dry_run_checks_everything_and_sends_nothing(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", [*people(2), ["Bo", "Kim", "bo@"]])
    result = invoke("register", str(source), "--dry-run")
    assert result.exit_code == 1
    assert "row 4, email: 'bo@' is not a valid e-mail address" in result.stderr
    assert "Dry run of the file alone: nothing was sent; 2 rows pass." in result.stderr
    assert not (tmp_path / "guests-joinurls.xlsx").exists()
    clean = write_csv(tmp_path / "clean.csv", people(2))
    assert invoke("register", str(clean), "--dry-run").exit_code == 0


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "guests.csv: no webinar named; pass --webinar-key, fill webinarKey on the "),
        (
            ["--webinar-key", "8.32536E+18"],
            {"G2W_ORGANIZER_KEY": "1"},
            "--webinar-key '8.32536E+18' is a number rounded by Excel",
        ),
        (
            ["--webinar-key", "1", "--organizer-key", "2"],
            {},
            "not signed in: run g2w-import login (or set G2W_ACCESS_TOKEN, or pass --token-file)",
        ),
        (
            ["--webinar-key", "1", "--organizer-key", "2", "--api-url", "http://example.com/api"],
            {"G2W_ACCESS_TOKEN": TOKEN},
            "is not encrypted; use https://",
        ),
        (["--sandbox", "--out", "x.json"], {}, "the report must end in .xlsx or .csv"),
        (["--sandbox", "--token-file", "t.txt"], {}, "--sandbox runs against the built-in API"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    source = write_csv(tmp_path / "guests.csv", people(1))
    blank = {"G2W_ORGANIZER_KEY": "", "G2W_ACCESS_TOKEN": "", "G2W_API_URL": "", **env}
    result = invoke("register", str(source), *args, env=blank)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("empty.csv", b"", "the file is empty"),
        ("garbage.xlsx", b"\x00\x01\x02garbage" * 50, "is not an Excel workbook"),
        ("noemail.csv", b"a,b\n1,2\n", "no e-mail column found"),
    ],
)
def test_unreadable_input_exits_2_without_a_traceback(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = invoke("register", str(path), "--sandbox")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1


def real_args(server: ThreadedServer, source: Path, *extra: str) -> list[str]:
    return register_args(source, server, *extra)


def test_loopback_run_with_verbose_logs_never_shows_the_token(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0, tokens=(CANARY,))
    source = write_csv(tmp_path / "guests.csv", people(12))
    token_file = tmp_path / "token.txt"
    token_file.write_text(CANARY + "\n")
    result = invoke(
        *real_args(
            server,
            source,
            "--token-file",
            str(token_file),
            "--verbose",
            "--out",
            str(tmp_path / "r.csv"),
        )
    )
    assert result.exit_code == 0, result.output
    assert "HTTP Request: POST http://127.0.0.1:" in result.stderr  # verbose really logs
    assert len(server.sandbox.registrants()) == 12
    assert CANARY not in result.output
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != token_file]
    assert any(p.suffix == ".sqlite3" for p in written)  # the journal is searched too
    for path in written:
        assert CANARY.encode() not in path.read_bytes(), path


def test_refused_token_exits_4_before_anything_is_sent(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0, token_calls=0)
    source = write_csv(tmp_path / "guests.csv", people(3))
    result = invoke(*real_args(server, source), env={"G2W_ACCESS_TOKEN": CANARY})
    assert result.exit_code == 4
    assert (
        "the API refused the access token (HTTP 403: Invalid token passed); set a new token in "
        "G2W_ACCESS_TOKEN, or unset it to use the stored login" in result.stderr
    )
    assert server.sandbox.stats["created"] == 0
    assert CANARY not in result.output


def test_token_expiring_mid_run_exits_4_with_pending_rows(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    # the webinar, its form, the organizer's webinars (its approval setting), 3 registrations
    # (a first run reads no registrant list)
    server = loopback_sandbox(rate=0, token_calls=6, tokens=(CANARY,))
    source = write_csv(tmp_path / "guests.csv", people(20))
    result = invoke(
        *real_args(server, source, "--concurrency", "1"), env={"G2W_ACCESS_TOKEN": CANARY}
    )
    assert result.exit_code == 4
    statuses = [row["status"] for row in sheet_rows(tmp_path / "guests-joinurls.xlsx")]
    assert statuses == ["registered"] * 3 + ["pending"] * 17
    assert "17 rows are pending: once this is put right, run the command again." in result.stderr


def test_unknown_webinar_exits_4(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(1))
    args = real_args(server, source)
    args[args.index(WEBINAR_KEY)] = "1111111111111111111"
    result = invoke(*args, env={"G2W_ACCESS_TOKEN": TOKEN})
    assert result.exit_code == 4
    assert "webinar 1111111111111111111 was not found" in result.stderr


def test_quiet_prints_only_the_report_path(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    result = invoke("register", str(source), "--sandbox", "--quiet")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout.startswith("Report: ")


def test_every_command_and_option_has_help() -> None:
    def commands(group: click.Group) -> list[click.Command]:
        return [group, *group.commands.values()]

    for command in commands(cli):  # type: ignore[arg-type]
        assert command.help, command.name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{command.name} {param.opts}"


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "importer", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "register" in done.stdout


def test_api_down_stops_resumably_and_writes_the_report(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0, error_rate=1.0)
    source = write_csv(tmp_path / "guests.csv", people(3))
    result = invoke(
        *real_args(server, source, "--give-up-after", "5"), env={"G2W_ACCESS_TOKEN": TOKEN}
    )
    assert result.exit_code == 3, result.output
    assert "Stopped early: the API is unavailable" in result.stderr
    assert "HTTP 503" in result.stderr
    assert "3 rows are pending: run the same command again to continue." in result.stderr
    assert "Traceback" not in result.output
    rows = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert [row["status"] for row in rows] == ["pending"] * 3
    assert server.sandbox.stats["created"] == 0


def test_api_unreachable_stops_resumably_and_names_the_host(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = write_csv(tmp_path / "guests.csv", people(2))
    url = f"http://127.0.0.1:{port}/G2W/rest/v2"
    result = invoke(
        *register_args(source, url, "--give-up-after", "5"), env={"G2W_ACCESS_TOKEN": TOKEN}
    )
    assert result.exit_code == 3, result.output
    assert f"could not connect to the API at 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.output
    rows = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert [row["status"] for row in rows] == ["pending"] * 2


def test_a_wrong_webinar_key_keeps_the_earlier_report_with_its_join_urls(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = write_csv(tmp_path / "guests.csv", people(3))
    first = invoke(*real_args(server, source), env={"G2W_ACCESS_TOKEN": TOKEN})
    assert first.exit_code == 0, first.output
    report = tmp_path / "guests-joinurls.xlsx"
    urls = [row["joinUrl"] for row in sheet_rows(report)]
    args = real_args(server, source)
    args[args.index(WEBINAR_KEY)] = "1111111111111111111"
    typo = invoke(*args, env={"G2W_ACCESS_TOKEN": TOKEN})
    assert typo.exit_code == 4
    kept = list(tmp_path.glob("guests-joinurls-*.xlsx"))
    assert len(kept) == 1
    assert [row["joinUrl"] for row in sheet_rows(kept[0])] == urls
    assert (
        "guests-joinurls.xlsx held join URLs that this run's report does not have (of 3 "
        f"people); it was kept as {kept[0].name}" in typo.stderr
    )
    assert {row["status"] for row in sheet_rows(report)} == {"pending"}
    again = invoke(*real_args(server, source), env={"G2W_ACCESS_TOKEN": TOKEN})
    assert again.exit_code == 0, again.output
    assert [row["joinUrl"] for row in sheet_rows(report)] == urls
    assert "was kept" not in again.stderr  # nothing of the pending report was lost
    assert "3 rows are pending: once this is put right, run the command again." in typo.stderr


def test_answering_no_at_the_prompt_sends_nothing_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    monkeypatch.setattr(Console, "confirm", lambda self, question: False)
    result = invoke("register", str(source), "--sandbox")
    assert result.exit_code == 1
    assert "Nothing was sent." in result.stderr
    assert not (tmp_path / "guests-joinurls.xlsx").exists()


def test_a_run_for_another_webinar_keeps_the_report_with_the_first_ones_join_urls(
    tmp_path: Path,
) -> None:
    source = write_csv(tmp_path / "guests.csv", people(2))
    report = tmp_path / "guests-joinurls.xlsx"
    assert invoke("register", str(source), "--sandbox").exit_code == 0
    first = [row["joinUrl"] for row in sheet_rows(report)]
    second = invoke("register", str(source), "--sandbox", "--webinar-key", KICKOFF_KEY)
    assert second.exit_code == 0, second.output
    kept = list(tmp_path.glob("guests-joinurls-*.xlsx"))
    assert len(kept) == 1
    assert [row["joinUrl"] for row in sheet_rows(kept[0])] == first
    assert "it was kept as guests-joinurls-" in second.stderr
