"""The local web page, ``g2w-import ui``: the same import as the command, by pointing and clicking.

    desk.py     the page's state: the file chosen, its check, the import, the result, its undo,
                the export of a registrant list, the folder
    signin.py   who is signed in, and the sign-in the page can start
    guard.py    loopback only: the Host header, the launch secret, CSRF, security headers
    app.py      the Starlette app: routes in, JSON and files out
    server.py   the socket on 127.0.0.1, uvicorn, the address printed and opened
    static/     the page itself: HTML, CSS and a little JavaScript, no CDN

Nothing here reads, checks, sends or reports by itself: every check and every import is a call
of :func:`importer.jobs.register.register`, every undo of :func:`importer.jobs.cancel.undo`, every
export of :func:`importer.jobs.export.export`. Starlette and uvicorn are imported only by
``app.py``, ``guard.py`` and ``server.py``, which the command loads when it is run.
"""
