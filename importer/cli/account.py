"""Signing in: login, whoami, logout."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import click

from importer.cli.base import (
    auth_url_option,
    callback_port_option,
    cli,
    echo,
    errors,
    open_browser,
    warn_about_token_file,
)
from importer.errors import UsageError
from importer.goto import credentials, oauth
from importer.read import settings
from importer.sandbox import Sandbox, SandboxConfig, SandboxServer
from importer.text import article


@cli.command()
@click.option(
    "--client-id",
    envvar="G2W_CLIENT_ID",
    show_envvar=True,
    metavar="ID",
    help="Your GoTo OAuth client's id. Its secret is read from $G2W_CLIENT_SECRET, or asked "
    "for; never give it on the command line.",
)
@callback_port_option("--port", "")
@auth_url_option
@click.option(
    "--api-url",
    envvar="G2W_API_URL",
    show_envvar=True,
    metavar="URL",
    help="The API's base URL, to ask whose token it is.",
)
@click.option(
    "--with-pat",
    is_flag=True,
    help="Sign in with a personal access token read from standard input; it is exchanged "
    "for access tokens whenever one runs out.",
)
@click.option(
    "--with-token",
    is_flag=True,
    help="Read a bare access token from standard input (it lasts about an hour and cannot be "
    "renewed).",
)
@click.option(
    "--organizer-key",
    envvar="G2W_ORGANIZER_KEY",
    show_envvar=True,
    metavar="KEY",
    help="The organizer key, if the API does not say whose token it is.",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Sign in to a sandbox served for the purpose, to see how it works (nothing is kept).",
)
@click.option("--no-browser", is_flag=True, help="Only print the sign-in address.")
@click.option(
    "--wait",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the browser to come back.",
)
def login(
    client_id: str | None,
    port: int,
    auth_url: str | None,
    api_url: str | None,
    with_pat: bool,
    with_token: bool,
    organizer_key: str | None,
    sandbox: bool,
    no_browser: bool,
    wait: float,
) -> None:
    """Sign in once; every later command uses (and renews) the stored login."""
    with errors():
        if with_pat and with_token:
            raise UsageError("--with-pat and --with-token cannot go together; choose one")
        place = None if sandbox else credentials.store()
        key = settings.check_key("--organizer-key", organizer_key) if organizer_key else None
        way = _Way(client_id, port, auth_url, api_url, with_pat, with_token, key, no_browser, wait)
        signed = asyncio.run(way.sign_in(sandbox))
        if api_url:
            signed = replace(signed, api_url=settings.api_url(api_url))
        if not signed.organizer_key:
            raise UsageError(
                "the API did not say whose token this is; run login again with --organizer-key"
            )
        settings.check_key("the organizer key", signed.organizer_key)
        who = f" as {signed.account}" if signed.account else ""
        if place is None:
            echo(
                f"Signed in to the sandbox{who} (organizer {signed.organizer_key}); nothing was "
                "kept, since the sandbox stops with this command.",
                colour="green",
            )
            return
        place.save(signed)
        echo(
            f"Signed in{who} (organizer {signed.organizer_key}) with {article(signed.kind)} "
            f"{signed.kind}; the login is kept in {place.where()}.",
            colour="green",
        )
        if signed.api_url:
            echo(f"Commands given no --api-url use {signed.api_url}, the API of this login.")
        if with_token:
            echo(
                "Warning: an access token lasts about an hour and cannot be renewed; for long "
                "or repeated imports sign in with g2w-import login or --with-pat.",
                colour="yellow",
            )


@dataclass
class _Way:
    """How login was asked to sign in."""

    client_id: str | None
    port: int
    auth_url: str | None
    api_url: str | None
    with_pat: bool
    with_token: bool
    organizer_key: str | None
    no_browser: bool
    wait: float

    async def sign_in(self, sandbox: bool) -> credentials.Credentials:
        """The sign-in asked for, against GoTo or a sandbox served for the purpose."""
        secret = os.environ.get("G2W_CLIENT_SECRET", "").strip() or None
        async with contextlib.AsyncExitStack() as stack:
            if sandbox:
                config = SandboxConfig(
                    redirect_uri=oauth.redirect_uri(self.port), pats=("sandbox-pat",)
                )
                served = await stack.enter_async_context(SandboxServer(Sandbox(config)))
                self.auth_url, self.api_url = served.base_url, served.api_url
                self.client_id, secret = self.client_id or "sandbox-client", secret or "sandbox"
            return await self._sign_in(secret)

    async def _sign_in(self, secret: str | None) -> credentials.Credentials:
        url = settings.api_url(self.api_url)
        if self.with_token:
            token = _read_secret("--with-token", "g2w-import login --with-token < token.txt")
            return await oauth.sign_in_with_token(token, url, self.organizer_key)
        pat = (
            _read_secret("--with-pat", "g2w-import login --with-pat < pat.txt")
            if self.with_pat
            else None
        )
        if not self.client_id:
            raise UsageError(
                "signing in needs your GoTo OAuth client: set G2W_CLIENT_ID and "
                "G2W_CLIENT_SECRET (or pass --client-id); see the README's Sign in"
            )
        if not secret and pat is None and sys.stdin.isatty():
            secret = click.prompt("Client secret", hide_input=True, err=True).strip()
        if not secret:
            raise UsageError("set G2W_CLIENT_SECRET to your OAuth client's secret")
        sign_in_url = (self.auth_url or oauth.AUTH_URL).rstrip("/")
        if pat is not None:
            return await oauth.sign_in_with_pat(
                pat,
                client_id=self.client_id,
                client_secret=secret,
                auth_url=sign_in_url,
                api_url=url,
                organizer_key=self.organizer_key,
            )
        return await oauth.sign_in(
            auth_url=sign_in_url,
            api_url=url,
            client_id=self.client_id,
            client_secret=secret,
            port=self.port,
            wait=self.wait,
            show=echo,
            open_browser=None if self.no_browser else open_browser,
        )


def _read_secret(what: str, example: str) -> str:
    """A secret from standard input (never the command line, where ``ps`` shows it)."""
    value = sys.stdin.readline().strip()
    if not value:
        raise UsageError(f"{what} is read from standard input, and none came; e.g. {example}")
    return value


@cli.command()
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Check this token file instead of the environment and the stored login.",
)
def whoami(token_file: Path | None) -> None:
    """Show who is signed in, where the login is kept and when the token expires."""
    with errors():
        warn_about_token_file(token_file, quiet=False)
        signed, _, source, _ = credentials.resolve(token_file=token_file)
    click.echo(f"Using:     {source} ({signed.kind})")
    click.echo(f"Organizer: {signed.organizer_key or 'asked of the API at each run'}")
    if signed.account:
        click.echo(f"Account:   {signed.account}")
    if signed.api_url:
        click.echo(f"API:       {signed.api_url}")
    left = signed.expires_in()
    if left is None:
        click.echo("Expires:   unknown")
        return
    when = dt.datetime.fromtimestamp(signed.expires_at or 0).astimezone()
    state = "expired" if left <= 0 else f"in {left / 60:.0f} minutes"
    renewed = "; renewed automatically" if signed.renewable else "; cannot be renewed"
    click.echo(f"Expires:   {when:%Y-%m-%d %H:%M %Z} ({state}){renewed}")


@cli.command()
def logout() -> None:
    """Forget the stored login, wherever it was kept on this computer."""
    with errors():
        removed = credentials.forget()
    if removed:
        echo(f"Signed out: the login was removed from {' and '.join(removed)}.")
    else:
        echo("Not signed in: nothing to remove.")
