"""Ctrl-C in the middle of a real run over loopback: exit 130, a complete report, a clean rerun."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer import report
from tests.helpers import (
    SandboxProcess,
    command,
    invoke,
    people,
    posix_only,
    register_args,
    status_counts,
    token_env,
    write_csv,
)

pytestmark = posix_only


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT]],
    ids=["ctrl-c", "sigterm", "ctrl-c-twice"],
)
def test_ctrl_c_writes_the_report_exits_130_and_a_rerun_finishes(
    tmp_path: Path, sandbox_process: Callable[..., SandboxProcess], signals: list[int]
) -> None:
    """Once: the calls under way finish. Twice: it stops at once. Either way nothing is lost."""
    server = sandbox_process("--rate", "0", "--latency", "0.05", "--no-dedupe")
    source = write_csv(tmp_path / "guests.csv", people(300))
    argv = command(*register_args(source, server.api_url, "--rate", "40"))
    env = token_env()
    run = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(random.uniform(1.5, 3.5))  # start-up takes under a second: mid-run, at random
    for number in signals:
        run.send_signal(number)
        time.sleep(0.05)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "Interrupted" in err
    assert "Traceback" not in err
    report = tmp_path / "guests-joinurls.xlsx"
    if len(signals) == 1:
        assert out == f"Report: {report}\n"
        first = status_counts(report)
        assert sum(first.values()) == 300
        assert 0 < first["registered"] < 300
        assert first["pending"] > 0
    # twice: stopped at once, the report maybe before it was written; the journal has it all

    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert "Resuming: " in rerun.stderr
    if len(signals) == 1:
        assert f"Resuming: {first['registered']} of 300 rows were settled" in rerun.stderr
    assert status_counts(report) == {"registered": 300}
    # the sandbox registers a repeated e-mail again: 300 means nobody was sent twice
    assert "it held 300 registrants" in server.stop()


def test_ctrl_c_held_down_still_exits_130_with_nothing_lost(
    tmp_path: Path, sandbox_process: Callable[..., SandboxProcess]
) -> None:
    """Interrupts every few milliseconds until the process is gone: some land while it stops,
    some after its report is written and it is on its way out. None may kill it by signal."""
    server = sandbox_process("--rate", "0", "--latency", "0.05", "--no-dedupe")
    source = write_csv(tmp_path / "guests.csv", people(200))
    argv = command(*register_args(source, server.api_url, "--rate", "40"))
    env = token_env()
    run = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(random.uniform(1.5, 2.5))
    while run.poll() is None:
        run.send_signal(signal.SIGINT)
        time.sleep(0.003)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "Traceback" not in err
    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert status_counts(tmp_path / "guests-joinurls.xlsx") == {"registered": 200}
    assert "it held 200 registrants" in server.stop()


def test_a_command_run_inside_a_program_leaves_its_signal_handlers_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the g2w-import process itself ignores a late Ctrl-C on its way out; a program that
    runs the command inside itself and is interrupted gets its own handlers back."""
    source = write_csv(tmp_path / "guests.csv", people(3))
    writes = report.write_xlsx  # the workbook, from rows written ahead or not

    def interrupted(*args: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)  # taken by the run's handler, as a Ctrl-C is
        return writes(*args)

    monkeypatch.setattr(report, "write_xlsx", interrupted)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    result = invoke("register", str(source), "--sandbox", "--yes")
    assert "Stopping: letting the calls under way finish" in result.output  # taken, and
    assert result.exit_code == 0, result.output  # everyone was registered before it came
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
