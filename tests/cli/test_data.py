"""``journals``, ``journals forget``, expiry as any command starts, ``logout`` everywhere, and
temporary files that do not outlive a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from importer import files
from importer.cli import console
from importer.engine.journals import survey
from importer.goto import credentials
from importer.jobs import journals as keeping
from tests.engine.test_journals import make
from tests.helpers import invoke, one_line_error


def test_journals_lists_each_journal_in_a_line_and_as_json(journals_folder: Path) -> None:
    assert "No journals in" in invoke("journals").stderr
    make(journals_folder, "201", people=3, sending=1, ends="2099-01-01T10:00:00Z")
    make(journals_folder, "202", people=2, ends=None, subject="Autumn")
    listed = invoke("journals")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "webinar",
        "key",
        "subject",
        "people",
        "size",
        "last",
        "used",
        "webinar",
        "over",
    ]
    assert "202" in lines[2]
    assert "Autumn" in lines[2]
    assert "not known yet" in lines[2]
    assert "3 registered, 1 of unknown outcome" in lines[3]
    assert lines[3].endswith("no")
    assert "2 journals in" in listed.stderr
    assert "removed 30 days after" in listed.stderr
    data = json.loads(invoke("journals", "--json").stdout)
    assert [(j["webinarKey"], j["people"], j["unknownOutcome"]) for j in data] == [
        ("202", 2, 0),
        ("201", 4, 1),
    ]
    assert data[1]["states"] == {"registered": 3, "sending": 1}
    assert data[1]["ended"] is False
    assert invoke("journals", "--sandbox").stderr.startswith("No journals in")
    # the group's --sandbox holds for forget too: the user's own journals are not touched
    sandbox = invoke("journals", "--sandbox", "forget", "--all", "--yes")
    assert "sandbox" in sandbox.stderr
    assert "Nothing to remove." in sandbox.stderr
    assert len(survey(keeping.folder())) == 2


def test_forget_shows_its_plan_and_removes_what_it_says(journals_folder: Path) -> None:
    make(journals_folder, "201")
    make(journals_folder, "202")
    dry = invoke("journals", "forget", "--webinar-key", "201", "--dry-run")
    assert dry.exit_code == 0
    assert "remove the journal of Product launch (201)" in dry.stderr
    assert "Dry run: nothing was removed." in dry.stderr
    assert len(survey(journals_folder)) == 2
    done = invoke("journals", "forget", "--webinar-key", "201", "--yes")
    assert done.exit_code == 0
    assert "Removed the journal of Product launch (201)." in done.stderr
    assert [j.webinar for j in survey(journals_folder)] == ["202"]
    person = invoke("journals", "forget", "--email", "P1@example.com", "-y")
    assert person.exit_code == 0
    assert "Removed 1 person from the journal of Product launch (202)." in person.stderr
    nobody = invoke("journals", "forget", "--email", "p1@example.com", "-y")
    assert nobody.exit_code == 0
    assert "no journal holds it" in nobody.stderr


def test_forget_asks_first_and_no_keeps_everything(
    journals_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(journals_folder, "201")
    monkeypatch.setattr(console, "_is_terminal", lambda stream: True)
    declined = invoke("journals", "forget", "--all", stdin="n\n")
    assert declined.exit_code == 1
    assert "Nothing was removed." in declined.stderr
    assert "Remove them for good? [y/N]" in declined.stderr
    assert len(survey(journals_folder)) == 1
    assert invoke("journals", "forget", "--all", stdin="y\n").exit_code == 0
    assert survey(journals_folder) == []


def test_forget_keeps_a_journal_of_unknown_outcome_and_says_why(journals_folder: Path) -> None:
    make(journals_folder, "201", sending=2)
    kept = invoke("journals", "forget", "--all", "--yes")
    assert kept.exit_code == 1
    assert "keep the journal of Product launch (201): 2 people of unknown outcome" in kept.stderr
    assert "or add --force" in kept.stderr
    assert len(survey(journals_folder)) == 1
    assert invoke("journals", "forget", "--all", "--yes", "--force").exit_code == 0
    assert survey(journals_folder) == []


def test_forget_from_a_script_says_what_it_would_remove_and_asks_for_yes(
    journals_folder: Path,
) -> None:
    make(journals_folder, "201")
    piped = invoke("journals", "forget", "--all")  # no terminal to ask on
    assert "remove the journal of Product launch (201)" in piped.stderr
    assert "run it in a terminal to be asked, or add --yes" in one_line_error(piped)
    assert len(survey(journals_folder)) == 1


def test_a_dry_run_or_a_command_naming_the_webinar_removes_nothing_of_it(
    journals_folder: Path,
) -> None:
    make(journals_folder, "201", ends="2020-01-15T17:00:00Z")
    assert "Removed" not in invoke("journals", "forget", "--all", "--dry-run").stderr
    assert len(survey(journals_folder)) == 1
    named = invoke("undo", "--sandbox", "--webinar-key", "201", "--dry-run")
    assert "Removed" not in named.stderr
    assert invoke("journals", "forget", "--webinar-key", "201", "--dry-run").exit_code == 0
    assert len(survey(journals_folder)) == 1


def test_forget_refuses_an_unclear_choice_in_one_line(journals_folder: Path) -> None:
    assert "say what to forget" in one_line_error(invoke("journals", "forget"))
    both = invoke("journals", "forget", "--all", "--ended", "3")
    assert "one way" in one_line_error(both)
    assert "--ended" in one_line_error(invoke("journals", "forget", "--ended", "-1"))


def test_old_journals_are_removed_as_any_command_starts(
    journals_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(journals_folder, "201", ends="2020-01-15T17:00:00Z")
    make(journals_folder, "202", ends="2099-01-15T17:00:00Z")
    assert invoke("register", "--help").exit_code == 0  # help starts nothing
    assert invoke("journals", "forget", "--help").exit_code == 0
    assert len(survey(journals_folder)) == 2
    monkeypatch.setenv("G2W_KEEP_DAYS", "0")
    assert "Removed" not in invoke("journals").stderr
    assert len(survey(journals_folder)) == 2
    monkeypatch.setenv("G2W_KEEP_DAYS", "soon")
    assert "G2W_KEEP_DAYS=soon" in one_line_error(invoke("journals"))  # it is about them
    warned = invoke("fields", "--sandbox")  # any other command goes on
    assert warned.exit_code == 0
    assert "Warning: old journals were not removed: G2W_KEEP_DAYS=soon" in warned.stderr
    monkeypatch.delenv("G2W_KEEP_DAYS")
    started = invoke("fields", "--sandbox")
    lines = [line for line in started.stderr.splitlines() if line.startswith("Removed")]
    assert lines == [
        "Removed 1 journal of webinars over for more than 30 days: Product launch (201) "
        "(G2W_KEEP_DAYS=0 keeps them)."
    ]
    assert [j.webinar for j in survey(journals_folder)] == ["202"]


def test_logout_removes_the_sign_in_from_every_place_it_was_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = credentials.Credentials("access-secret", organizer_key="1")
    named = Path(os.environ["G2W_CREDENTIALS_FILE"])
    credentials.FileStore(named).save(stored)
    credentials.FileStore(credentials.default_file()).save(stored)
    assert named != credentials.default_file()
    out = invoke("logout")
    assert out.exit_code == 0
    assert str(named) in out.stderr
    assert str(credentials.default_file()) in out.stderr
    assert not named.exists()
    assert not credentials.default_file().exists()
    assert "Not signed in" in invoke("logout").stderr


#: a run that makes a temporary file, then is killed outright (or waits to be)
TEMPORARY = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from importer import files
    made = files.temporary(Path(sys.argv[1]), "report.", ".xlsx")
    rows = files.temp_folder() / "rows-of-a-workbook"  # as XlsxWriter keeps them
    rows.write_text("ada@example.com")
    print(made, rows, flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_runs_temporary_files_are_removed_at_the_next_start(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    argv = [sys.executable, "-c", TEMPORARY, str(tmp_path)]
    killed = subprocess.run([*argv, "kill"], capture_output=True, text=True, env=env, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    left, rows = (Path(name) for name in killed.stdout.split())
    assert left.exists()
    assert rows.exists()
    with subprocess.Popen([*argv, "wait"], stdout=subprocess.PIPE, text=True, env=env) as running:
        try:
            assert running.stdout is not None
            in_use, in_use_rows = (Path(name) for name in running.stdout.readline().split())
            assert invoke("journals").exit_code == 0
            assert not left.exists()  # the killed run's
            assert not rows.parent.exists()
            assert in_use_rows.exists()
            assert in_use.exists()  # a running one's stays
        finally:
            running.kill()
    assert files.sweep() == 2
    assert not in_use.exists()
    assert not in_use_rows.exists()
    # a record is followed only to the tool's own temporary files
    record = files.data_folder() / "running" / "999999-dead.txt"
    keep = tmp_path / ".bashrc"
    keep.write_text("mine")
    record.write_text(f"{keep}\n{tmp_path / 'notes.txt'}\n")
    assert files.sweep() == 0
    assert keep.read_text() == "mine"
    assert list((files.data_folder() / "running").iterdir()) == []
