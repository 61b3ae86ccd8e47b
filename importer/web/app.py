"""The page's ASGI app: routes in, JSON and files out; everything behind :class:`~.guard.Guard`.

A front door like the command: each route parses what the page sent, calls the desk (which
calls a job) or a lookup, and renders what came back as JSON for the page's script. A
mistake becomes ``{"error": "one line"}`` with a 4xx status; nothing about reading, checking,
sending or reporting is decided here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import importlib.resources
import os
import re
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from importer.engine.journals import survey
from importer.errors import (
    EXIT_API,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROWS,
    EXIT_STOPPED,
    Busy,
    ImporterError,
    InputError,
    RunStopped,
    TooLarge,
)
from importer.events import Brief, PlanView
from importer.goto.credentials import NotSignedIn
from importer.jobs import journals as keeping
from importer.jobs import webinars as lookups
from importer.model import Cancellation, Status, Webinar, local_time
from importer.progress import clock_text
from importer.read import settings
from importer.read.columns import fold
from importer.report import template
from importer.report.cancellations import Cancellations
from importer.report.outcome import Outcome
from importer.report.registrants import Exported
from importer.text import are, counted
from importer.web.desk import Desk, Job, blocker
from importer.web.guard import Guard, message_page
from importer.web.signin import SignIn

T = TypeVar("T")
#: rows needing attention listed in the plan, and result rows shown; the rest are in the files
SHOWN = 500
SHOWN_ROWS = 2000
#: the report's columns the page shows (the report has all of the input's too)
RESULT_COLUMNS = (
    "row",
    "webinarKey",
    "firstName",
    "lastName",
    "email",
    "status",
    "joinUrl",
    "error",
    "note",
)
#: the upcoming webinars listed: those starting within this many days
AHEAD = 365
#: why no webinar can be listed or looked up, in the page's words (the sign-in box says how)
NOT_SIGNED_IN = (
    "Not signed in: once you are (see the top of the page), your webinars are listed here"
)
#: a sign-in or webinar problem, in the page's words (the sign-in box says how to sign in)
_REFUSED = "a sign-in or webinar problem: the token was refused, or the webinar is unknown"
#: what an undo's exit code means, as ``g2w-import undo --help`` says it, in the page's words
UNDO_CODES = {
    EXIT_OK: (
        "every registration g2w-import made for the people of this file is cancelled; anyone "
        "else is left alone"
    ),
    EXIT_ROWS: "finished, but some rows failed or are pending: the report says why, row by row",
    EXIT_STOPPED: (
        "stopped early (a quota, the API unavailable, the disk full): press Undo this import "
        "again later; nobody is cancelled twice"
    ),
    EXIT_API: _REFUSED,
    EXIT_INTERRUPTED: (
        "stopped: press Undo this import again to cancel the rest; nobody is cancelled twice"
    ),
}
#: the same for an export of the registrant list
EXPORT_CODES = {
    EXIT_OK: "the list is complete",
    EXIT_STOPPED: (
        "stopped early (a quota, the API unavailable): some answers are missing; download "
        "the list again later"
    ),
    EXIT_API: _REFUSED,
    EXIT_INTERRUPTED: "stopped: some answers are missing; download the list again for all of them",
}
#: what a download that is not there (yet) needs first
_FIRST = {"undone": "undo the import first", "registrants": "download the registrant list first"}
_STATIC = importlib.resources.files(__package__) / "static"
_MEDIA = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def create_app(desk: Desk, signin: SignIn, *, port: int, secret: str) -> ASGIApp:
    """The page for ``desk``, answering at 127.0.0.1:``port`` to those who know ``secret``."""
    index = (_STATIC / "index.html").read_text("utf-8")
    index = index.replace("{{secret}}", secret)
    static = {name: (_STATIC / name).read_bytes() for name in ("page.css", "page.js")}

    async def page(request: Request) -> Response:
        return HTMLResponse(index)

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            return JSONResponse({"error": f"no such file: {name}"}, status_code=404)
        return Response(static[name], media_type=_MEDIA[name[name.rindex(".") :]])

    async def state(request: Request) -> Response:
        return JSONResponse(_state(desk))

    async def sign_in_state(request: Request) -> Response:
        return JSONResponse(signin.status())

    async def sign_in(request: Request) -> Response:
        typed = await _json(request)  # a client typed on the page, when it was given none
        signin.start(str(typed.get("client_id") or ""), str(typed.get("client_secret") or ""))
        return JSONResponse(signin.status())

    async def webinars(request: Request) -> Response:
        first = dt.date.today()
        try:
            found = await _off_loop(
                lookups.webinars(desk.access, first, first + dt.timedelta(AHEAD))
            )
        except NotSignedIn:
            return JSONResponse({"error": NOT_SIGNED_IN}, status_code=400)
        return JSONResponse({"webinars": [_webinar(w) for w in found]})

    async def webinar(request: Request) -> Response:
        key = settings.check_key("the webinar key", request.query_params.get("key", "").strip())
        try:
            found, _ = await _off_loop(lookups.webinar_and_form(desk.access, key))
        except NotSignedIn:
            return JSONResponse({"error": NOT_SIGNED_IN}, status_code=400)
        return JSONResponse({"webinar": _webinar(found)})

    async def upload(request: Request) -> Response:
        length = request.headers.get("content-length", "")
        chosen = request.query_params.get("webinar", "").strip()
        await desk.receive(
            request.query_params.get("name", ""),
            request.stream(),
            int(length) if length.isdigit() else None,
            webinar=settings.check_key("the webinar key", chosen) if chosen else None,
        )
        return JSONResponse(_state(desk))

    async def check(request: Request) -> Response:
        body = await _json(request)
        key = str(body.get("webinar") or "").strip()
        desk.start_check((settings.check_key("the webinar key", key),) if key else ())
        return JSONResponse(_state(desk))

    async def register(request: Request) -> Response:
        desk.start_import()
        return JSONResponse(_state(desk))

    async def undo_plan(request: Request) -> Response:
        desk.start_undo(await _webinar_key(request), confirmed=False)
        return JSONResponse(_state(desk))

    async def undo(request: Request) -> Response:
        desk.start_undo(await _webinar_key(request), confirmed=True)
        return JSONResponse(_state(desk))

    async def keep(request: Request) -> Response:
        desk.keep()
        return JSONResponse(_state(desk))

    async def export(request: Request) -> Response:
        desk.start_export(await _webinar_key(request))
        return JSONResponse(_state(desk))

    async def journal_list(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(_journals, desk))

    async def journal_forget(request: Request) -> Response:
        key = await _webinar_key(request)
        if key is None:
            return _refused("choose the journal to forget", 400, request)
        said = await asyncio.to_thread(_forget, desk, key)
        return JSONResponse({**await asyncio.to_thread(_journals, desk), "said": said})

    async def stop(request: Request) -> Response:
        desk.stop()
        return JSONResponse(_state(desk))

    async def download(request: Request) -> Response:
        which = request.path_params["which"]
        jobs: dict[str, Job[Any] | None] = {
            "report": desk.run,
            "attention": desk.run,
            "undone": desk.undo,
            "registrants": desk.export,
        }
        job = jobs.get(which)
        path = None
        if job is not None and job.done.is_set():
            path = job.attention_file if which == "attention" else job.report_file
        if path is None or not path.is_file():
            first = _FIRST.get(which, "register the list first")
            return _refused(f"That file is not there (yet); {first}.", 404)
        return FileResponse(path, filename=path.name)

    async def template_file(request: Request) -> Response:
        key = request.query_params.get("webinar", "").strip()
        webinar = form = None
        if key:
            webinar, form = await _off_loop(lookups.webinar_and_form(desk.access, key))
        # under the name it is downloaded as, which its instructions use
        path = desk.folder / f"template-{webinar.key if webinar else 'plain'}" / "registrants.xlsx"
        path.parent.mkdir(mode=0o700, exist_ok=True)
        sandbox = desk.access.sandbox
        await asyncio.to_thread(template.build, path, webinar=webinar, form=form, sandbox=sandbox)
        return FileResponse(path, filename=path.name)

    async def error(request: Request, exc: Exception) -> Response:
        status = 409 if isinstance(exc, Busy) else 413 if isinstance(exc, TooLarge) else 400
        return _refused(_named(str(exc), desk.folder), status, request)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await signin.close()
        await asyncio.to_thread(desk.close)

    routes = [
        Route("/", page),
        Route("/static/{name}", asset),
        Route("/favicon.ico", no_icon),
        Route("/api/state", state),
        Route("/api/sign-in", sign_in_state),
        Route("/api/sign-in", sign_in, methods=["POST"]),
        Route("/api/webinars", webinars),
        Route("/api/webinar", webinar),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/check", check, methods=["POST"]),
        Route("/api/register", register, methods=["POST"]),
        Route("/api/undo/plan", undo_plan, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/undo/keep", keep, methods=["POST"]),
        Route("/api/export", export, methods=["POST"]),
        Route("/api/journals", journal_list),
        Route("/api/journals/forget", journal_forget, methods=["POST"]),
        Route("/api/stop", stop, methods=["POST"]),
        Route("/files/{which}", download),
        Route("/template.xlsx", template_file),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ImporterError: error},
    )
    return Guard(app, port=port, secret=secret)


async def _off_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a lookup in a thread with its own loop: the page keeps answering meanwhile."""
    return await asyncio.to_thread(asyncio.run, coroutine)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


async def _webinar_key(request: Request) -> str | None:
    """The webinar the page chose for an undo or an export; None: the desk's own choice."""
    key = str((await _json(request)).get("webinar") or "").strip()
    return settings.check_key("the webinar key", key) if key else None


def _named(value: Any, folder: Path) -> Any:
    """``value`` with the page's own folder taken out of every text in it: a file the page
    keeps (an upload, its report) is named by its name alone, as the person knows it."""
    if isinstance(value, str):
        inside = re.escape(str(folder) + os.sep) + r"(?:[^\s" + re.escape(os.sep) + r"]+"
        return re.sub(inside + re.escape(os.sep) + r")*", "", value)
    if isinstance(value, dict):
        return {key: _named(item, folder) for key, item in value.items()}
    if isinstance(value, list):
        return [_named(item, folder) for item in value]
    return value


def _refused(message: str, status: int, request: Request | None = None) -> Response:
    """The error as JSON for the page's script, or as a page when a person followed a link."""
    if request is not None and request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    body = f'<p>{html.escape(message)}</p><p><a href="/">Back to the page</a></p>'
    return HTMLResponse(message_page("That did not work", body), status_code=status)


def _webinar(webinar: Webinar | None) -> dict[str, Any] | None:
    if webinar is None:
        return None
    return {
        "key": webinar.key,
        "subject": webinar.subject,
        "starts": webinar.starts,
        # as the command shows a start: on the webinar's own clock, "Wed 13 Jan 2027, 10:00 CET"
        "when": local_time(webinar.starts, webinar.time_zone) if webinar.starts else None,
        "zone": webinar.time_zone,
        "limit": webinar.registration_limit,
        "left": webinar.places_left,
    }


def _state(desk: Desk) -> dict[str, Any]:
    """Everything the page shows about the file, its check, the import and the result."""
    upload, check, run = desk.upload, desk.check, desk.run
    why = blocker(check)
    sending = desk.sending
    said = set(check.listener.notes) if check is not None else set()
    result = _result(run, said) if run is not None and run.done.is_set() else None
    label: str | None = "Register"
    if sending or upload is None:
        label = None
    elif desk.restored or (result is not None and result["pending"]):
        label = "Continue"
    elif result is not None and not result["error"]:
        label = None  # this file is done: its report is below
    state = {
        "file": {"name": upload.name, "size": upload.size} if upload else None,
        "restored": desk.restored,
        "check": _check(check) if check is not None else None,
        "blocker": why,
        "register": label,
        "run": _progress(run) if run is not None else None,
        "result": result,
        "undo": _undo(desk, said),
        "export": _export(desk.export) if desk.export is not None else None,
        # an import, an undo or an export: while one runs, the others wait
        "sending": sending,
        "busy": sending or (check is not None and not check.done.is_set()),
    }
    return dict(_named(state, desk.folder))


def _check(job: Job[Outcome]) -> dict[str, Any]:
    chosen = job.keys[0] if job.keys else ""
    if not job.done.is_set():
        return {"busy": True, "chosen": chosen, "plans": [], "notes": []}
    views = [view for view in job.listener.plans if isinstance(view, PlanView)]
    plans = [_plan(view, job) for view in views] if job.outcome is not None else []
    return {
        "busy": False,
        "chosen": chosen,
        "error": job.error,
        "notes": list(job.listener.notes),
        "plans": plans,
    }


def _plan(view: PlanView, job: Job[Outcome]) -> dict[str, Any]:
    assert job.outcome is not None
    rows = [row for row in job.outcome.rows if row.webinar_key == view.webinar_key]
    attention = [
        (line, problem.column, problem.message)
        for line, problems in view.problems.items()
        for problem in problems
    ]
    attention += [
        (row.line, "email", row.error or "") for row in rows if row.status is Status.DUPLICATE
    ]
    attention.sort(key=lambda item: item[0])
    return {
        "key": view.webinar_key,
        "webinar": _webinar(view.webinar),
        "rows": view.rows,
        "send": sum(1 for row in rows if row.status is Status.PENDING),
        "attention": [
            {"row": line, "column": column, "problem": problem}
            for line, column, problem in attention[:SHOWN]
        ],
        "more": max(0, len(attention) - SHOWN),
        "unused": [
            f"{h} ({view.column_note(h) or 'matches no field or question of this webinar'})"
            if view.webinar is not None
            else h
            for h in view.unused
            if h and fold(h) != "webinarkey"
        ],
        "sheet": view.sheet_note("to read another, save the workbook with that sheet open"),
        "hidden": view.hidden_note("unhide them in Excel to send them"),
        "warnings": list(view.warnings),
        "connection": view.connection,
    }


def _progress(job: Job[Any]) -> dict[str, Any]:
    progress = job.listener.progress()
    plans = [view for view in job.listener.plans if isinstance(view, PlanView)]
    left = progress.left
    return {
        "busy": not job.done.is_set(),
        "stopping": job.stopping,
        "sending": job.listener.sending,
        "total": progress.total,
        "done": progress.done,
        "counts": {str(status): n for status, n in progress.counts.items()},
        "rate": round(progress.rate, 1),
        "left": clock_text(left) if left is not None else None,
        "resumed": sum(view.resumed for view in plans),
        # whether an earlier import stopped with rows left, or simply settled these already
        "resuming": any(view.resuming for view in plans),
        "found": sum(view.found for view in plans),
    }


def _result(job: Job[Outcome], said: set[str]) -> dict[str, Any]:
    """The import's result; its notes are those the check (``said``) did not give already."""
    outcome, built = job.outcome, job.built
    notes = [note for note in job.listener.notes if note not in said] + job.report_notes
    if outcome is None or built is None:
        return {"error": job.error, "pending": 0, "notes": notes}
    counts = outcome.counts
    pending = counts[Status.PENDING]
    shown = [c for c in RESULT_COLUMNS if c in built.headers]
    if not any(row.error for row in outcome.rows):
        shown.remove("error")
    if not any(row.note for row in outcome.rows):  # awaits approval, registered already
        shown.remove("note")
    positions = [built.headers.index(column) for column in shown]
    return {
        "error": None,
        "headline": _headline(outcome),
        "tone": "good" if outcome.exit_code == 0 else "stopped" if outcome.stopped else "",
        "pending": pending,
        "counts": [
            {"status": status.value, "count": counts[status]} for status in Status if counts[status]
        ],
        "columns": shown,
        "rows": [[row[i] for i in positions] for row in built.rows[:SHOWN_ROWS]],
        "more": max(0, len(built.rows) - SHOWN_ROWS),
        "report": job.report_file.name if job.report_file else None,
        "attention": job.attention_file.name if job.attention_file else None,
        "notes": notes,
    }


def _headline(outcome: Outcome) -> str:
    """One line on how the import ended (as the command's ``Done:`` line says it) and, when
    rows are pending, how to go on."""
    stopped = outcome.stopped
    if stopped is None:
        return f"Done: {outcome.summary()}."
    pending = outcome.counts[Status.PENDING]
    again = (
        f"{counted(pending, 'row')} {are(pending)} pending: press Continue to register them; "
        "nobody is registered twice."
    )
    if stopped.exit_code == EXIT_INTERRUPTED:
        return f"Stopped. {again}"
    return f"Stopped early: {stopped}. {again}"


def _undo(desk: Desk, said: set[str]) -> dict[str, Any] | None:
    """The undo of the import shown: the webinars it may be for, the plan to confirm, how far
    it has got, and how it ended; None while there is no import to undo."""
    keys, job = desk.undoable, desk.undo
    if not keys and job is None:
        return None
    known = {
        part.key: part.webinar
        for run in (desk.check, desk.run)
        if run is not None and run.done.is_set() and run.outcome is not None
        for part in run.outcome.webinars
        if part.webinar is not None
    }
    phase = "ready"
    if job is not None and job.busy:
        phase = "planning" if job.dry_run else "running"
    elif job is not None and job.dry_run and job.outcome is not None:
        phase = "confirm"
    elif job is not None and not job.dry_run:
        phase = "done"
    # the undo's own plan, as the command shows it before it asks
    plan = [
        list(line)
        for brief in (job.listener.plans if job is not None and phase == "confirm" else [])
        if isinstance(brief, Brief)
        for line in brief.text()
    ]
    return {
        "webinars": [_webinar(known.get(key)) or {"key": key, "subject": None} for key in keys],
        "key": job.keys[0] if job is not None else None,
        "phase": phase,
        "plan": plan,
        "error": job.error if job is not None and not job.busy else None,
        "run": _progress(job) if job is not None and job.busy else None,
        "result": _undone(job, said) if phase == "done" and job is not None else None,
    }


def _undone(job: Job[Cancellations], said: set[str]) -> dict[str, Any] | None:
    """How an undo ended: its summary line, the meaning of its exit code, its report."""
    outcome = job.outcome
    if outcome is None:
        return None
    counts = outcome.counts
    return {
        "headline": _undo_headline(outcome),
        "tone": _tone(outcome.exit_code, outcome.stopped),
        "meaning": _meaning(outcome.exit_code, UNDO_CODES),
        "counts": [
            {"status": status.value, "count": counts[status]}
            for status in Cancellation
            if counts[status]
        ],
        "report": job.report_file.name if job.report_file else None,
        "notes": [note for note in job.listener.notes if note not in said] + job.report_notes,
    }


def _undo_headline(outcome: Cancellations) -> str:
    """One line on how the undo ended (the command's ``Done:`` line) and, when it stopped with
    rows left, how to go on."""
    stopped = outcome.stopped
    if stopped is None:
        return f"Done: {outcome.summary()}."
    said = "Stopped" if stopped.exit_code == EXIT_INTERRUPTED else f"Stopped early ({stopped})"
    line = f"{said}: {outcome.summary()}."
    if outcome.counts[Cancellation.PENDING]:
        line += " Press Undo this import again to cancel the rest; nobody is cancelled twice."
    return line


def _export(job: Job[Exported]) -> dict[str, Any]:
    """The export of a registrant list: how far it has got, and the file it wrote."""
    outcome = job.outcome
    result = None
    if not job.busy and outcome is not None:
        result = {
            "headline": _export_headline(outcome),
            "tone": _tone(outcome.exit_code, outcome.stopped),
            "meaning": _meaning(outcome.exit_code, EXPORT_CODES),
            "file": job.report_file.name if job.report_file else None,
            "notes": list(job.listener.notes) + job.report_notes,
        }
    return {
        "key": job.keys[0],
        "busy": job.busy,
        "run": _progress(job) if job.busy else None,
        "error": job.error if not job.busy else None,
        "result": result,
    }


def _export_headline(outcome: Exported) -> str:
    """One line on how the export ended (the command's ``Done:`` line), and which answers are
    missing when it stopped early."""
    stopped = outcome.stopped
    if stopped is None:
        return f"Done: {outcome.summary()}."
    said = "Stopped" if stopped.exit_code == EXIT_INTERRUPTED else f"Stopped early ({stopped})"
    missing = counted(outcome.unanswered, "registrant")
    return (
        f"{said}: {outcome.summary()}, without the answers of {missing}; download the list "
        "again for all of them."
    )


#: how the page says to remove a journal kept for rows of unknown outcome all the same
_FORCE_ON_PAGE = (
    "or remove it in a terminal with g2w-import journals forget --force --webinar-key KEY"
)


def _journals(desk: Desk) -> dict[str, Any]:
    """The journals the page's imports keep, as the list on the page shows them."""
    now = dt.datetime.now(dt.UTC)
    found = survey(keeping.folder(desk.access.sandbox))
    listed = [
        {
            **keeping.as_json(j, now),
            "path": None,
            "peopleText": keeping.people_text(j),
            "sizeText": keeping.size_text(j.size),
            "endedText": keeping.ended_text(j, now, desk.keep_days),
            "usedText": keeping.used_text(j),
        }
        for j in found
    ]
    return {"journals": listed, "keepDays": desk.keep_days}


def _forget(desk: Desk, key: str) -> str:
    """Remove the journal of webinar ``key`` (the person confirmed it on the page); what was
    done, in words. Refused while the page is sending: a run of the page may hold it."""
    if desk.sending:
        raise Busy("the page is working: wait until it is over, then forget the journal")
    choice = keeping.Choice(webinar_keys=(key,))
    planned = keeping.plan(choice, keeping.folder(desk.access.sandbox), force_hint=_FORCE_ON_PAGE)
    done = keeping.carry_out(planned)
    if planned.missing:
        raise InputError(f"there is no journal of webinar {key} (any more)")
    kept = [(keeping.named(j), why) for j, why in planned.kept]
    kept += [(keeping.named(each.journal), each.kept) for each in done if each.kept]
    if kept:
        raise InputError(f"the journal of {kept[0][0]} is kept: {kept[0][1]}")
    return f"Removed the journal of {keeping.named(done[0].journal)}."


def _tone(code: int, stopped: RunStopped | None) -> str:
    return "good" if code == EXIT_OK else "stopped" if stopped else ""


def _meaning(code: int, own: dict[int, str]) -> str:
    """What exit code ``code`` means, ``own`` words first, as a sentence that names it."""
    text = own.get(code) or dict(EXIT_CODES).get(code, "")
    return f"{text[:1].upper()}{text[1:]} (exit code {code})."
