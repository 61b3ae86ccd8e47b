"""Where the sign-in lives: the system keyring when one works, else a file only the user can read.

The stored record holds the access and refresh tokens, their expiry, the organizer key and the
OAuth client that issued them (a refresh needs the client's id and secret). Nothing from it is
ever printed: :meth:`Credentials.__repr__` hides the secrets, and ``whoami`` shows only the
organizer, the account, the place and the expiry.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, Protocol

from importer.errors import NotSignedIn as NotSignedIn  # where the front doors import it from
from importer.errors import UsageError
from importer.files import write_atomically

SERVICE = "g2w-import"
#: renew at most this many seconds before the access token runs out
RENEW_BEFORE = 120.0


@dataclass(frozen=True)
class Credentials:
    """An access token and what is needed to renew it: a refresh token, or a personal access
    token (PAT) to exchange again, with the OAuth client that may do either."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  #: seconds since the epoch
    lifetime: float | None = None  #: how long the access token was issued for, in seconds
    organizer_key: str | None = None
    account: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    auth_url: str | None = None
    #: the API the login was made for, when it is not GoTo's (a sandbox served on this machine):
    #: commands given no --api-url use it
    api_url: str | None = None
    #: a personal access token: exchanged for access tokens, never sent as one
    pat: str | None = field(default=None, repr=False)

    @property
    def renewable(self) -> bool:
        """Whether a new access token can be had without the person."""
        return bool((self.refresh_token or self.pat) and self.client_id and self.client_secret)

    @property
    def kind(self) -> str:
        """What signs this login in, in words: for ``whoami``."""
        if self.pat:
            return "personal access token"
        return "OAuth sign-in" if self.refresh_token else "access token"

    def secrets(self) -> list[str]:
        """Everything in it that must never be shown."""
        found = (self.access_token, self.refresh_token, self.client_secret, self.pat)
        return [secret for secret in found if secret]

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds until the access token expires (negative once it has), if known."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    def renewed(
        self, access_token: str, refresh_token: str | None, expires_in: float | None
    ) -> Credentials:
        """The same sign-in with a new access token (and the refresh token that came with it)."""
        return replace(
            self,
            access_token=access_token,
            refresh_token=refresh_token or self.refresh_token,
            expires_at=time.time() + expires_in if expires_in else None,
            lifetime=expires_in,
        )

    def due(self, now: float | None = None) -> bool:
        """Whether to renew before the next call: there is no access token yet (a PAT not yet
        exchanged), or it is within a quarter of its lifetime of its end, two minutes at most
        (GoTo's tokens last an hour)."""
        if not self.access_token:
            return True
        left = self.expires_in(now)
        if left is None:
            return False
        return left < min(RENEW_BEFORE, (self.lifetime or RENEW_BEFORE * 4) / 4)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Credentials:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise ValueError("not a credentials record")
        names = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in names})


class Store(Protocol):
    """A place for one stored sign-in."""

    def load(self) -> Credentials | None:
        """The stored sign-in, or None."""

    def save(self, credentials: Credentials) -> None:
        """Store (replace) the sign-in, atomically."""

    def delete(self) -> bool:
        """Forget the sign-in; True if there was one."""

    def where(self) -> str:
        """Where it lives, for people."""


class FileStore:
    """A JSON file created with mode 0600 from the start and replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def where(self) -> str:
        return str(self.path)

    def load(self) -> Credentials | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(
                f"{self.path}: other users may read these credentials (mode "
                f"{stat.S_IMODE(info.st_mode):o}); run: chmod 600 {self.path}"
            )
        try:
            return Credentials.from_json(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(
                f"{self.path}: the stored sign-in cannot be read; run g2w-import logout, then "
                "g2w-import login"
            ) from exc

    def save(self, credentials: Credentials) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

        def write(temp: Path) -> None:
            os.chmod(temp, 0o600)  # before a single byte of the secret is in it
            temp.write_text(credentials.to_json(), encoding="utf-8")

        write_atomically(self.path, write, private=True)

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


class KeyringStore:
    """The operating system's keyring (Keychain, Credential Manager, Secret Service)."""

    def where(self) -> str:
        import keyring

        return f"the system keyring ({type(keyring.get_keyring()).__name__}, service {SERVICE})"

    def load(self) -> Credentials | None:
        import keyring

        text = keyring.get_password(SERVICE, "credentials")
        return Credentials.from_json(text) if text else None

    def save(self, credentials: Credentials) -> None:
        import keyring

        keyring.set_password(SERVICE, "credentials", credentials.to_json())

    def delete(self) -> bool:
        import keyring
        from keyring.errors import PasswordDeleteError

        try:
            keyring.delete_password(SERVICE, "credentials")
        except PasswordDeleteError:
            return False
        return True


def default_file() -> Path:
    """The credentials file in the user's config folder."""
    import platformdirs

    folder = Path(platformdirs.user_config_dir("g2w-import", appauthor=False))
    return folder / "credentials.json"


def store() -> Store:
    """The keyring when one is usable here, else the credentials file.

    ``G2W_CREDENTIALS=file`` forces the file (``G2W_CREDENTIALS_FILE`` names it).
    """
    forced = os.environ.get("G2W_CREDENTIALS", "").strip().lower()
    path = os.environ.get("G2W_CREDENTIALS_FILE", "").strip()
    if forced != "file" and not path and _keyring_usable():
        return KeyringStore()
    return FileStore(Path(path) if path else default_file())


def every_store() -> list[Store]:
    """Every place a sign-in may have been stored on this computer: the keyring when one is
    usable, the credentials file named by ``G2W_CREDENTIALS_FILE``, and the default file (a
    login made with ``G2W_CREDENTIALS=file``, or where no keyring worked at the time)."""
    places: list[Store] = [KeyringStore()] if _keyring_usable() else []
    named = os.environ.get("G2W_CREDENTIALS_FILE", "").strip()
    paths = [Path(named)] if named else []
    if default_file() not in paths:
        paths.append(default_file())
    return places + [FileStore(path) for path in paths]


def forget() -> list[str]:
    """Remove the stored sign-in from every place it may be (:func:`every_store`); where it
    was found, for people."""
    removed = []
    for place in every_store():
        try:
            if place.delete():
                removed.append(place.where())
        except Exception as exc:  # a keyring backend may raise anything; say which place
            raise UsageError(
                f"{place.where()}: the stored sign-in cannot be removed ({exc}); remove it "
                "there by hand"
            ) from exc
    return removed


def _keyring_usable() -> bool:
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:  # a backend named in keyring's own settings that cannot be loaded here
        return False
    return not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 0) > 0


class Found(NamedTuple):
    """Credentials found, where they came from (for ``whoami``), and what to do when the API
    refuses their token."""

    credentials: Credentials
    store: Store | None
    source: str
    when_refused: str


def resolve(token: str | None = None, token_file: Path | None = None) -> Found:
    """The credentials to use, first found wins.

    In order: ``token`` given in Python; the environment variable ``G2W_ACCESS_TOKEN``;
    ``G2W_PAT`` with ``G2W_CLIENT_ID`` and ``G2W_CLIENT_SECRET`` (for automation: exchanged,
    and exchanged again when it runs out); ``token_file``; the stored login. Only a stored
    login comes with a store to keep renewed tokens in.
    """
    if token is not None and token.strip():
        _one_word(token.strip(), "the token given")
        return Found(Credentials(token.strip()), None, "the token given", "give a new token")
    token = os.environ.get("G2W_ACCESS_TOKEN", "").strip()
    if token:
        _one_word(token, "G2W_ACCESS_TOKEN")
        return Found(
            Credentials(token),
            None,
            "the environment variable G2W_ACCESS_TOKEN",
            "set a new token in G2W_ACCESS_TOKEN, or unset it to use the stored login",
        )
    pat = os.environ.get("G2W_PAT", "").strip()
    if pat:
        client_id = os.environ.get("G2W_CLIENT_ID", "").strip()
        client_secret = os.environ.get("G2W_CLIENT_SECRET", "").strip()
        if not (client_id and client_secret):
            raise UsageError(
                "G2W_PAT is set, but a personal access token is exchanged by your OAuth "
                "client: set G2W_CLIENT_ID and G2W_CLIENT_SECRET too"
            )
        found = Credentials(
            "",
            client_id=client_id,
            client_secret=client_secret,
            auth_url=os.environ.get("G2W_AUTH_URL", "").strip() or None,
            pat=pat,
        )
        return Found(
            found,
            None,
            "the personal access token in G2W_PAT",
            "check the personal access token in G2W_PAT (revoked, or of another account?)",
        )
    if token_file is not None:
        return Found(
            Credentials(read_token_file(token_file)),
            None,
            f"the token file {token_file}",
            f"put a new token in {token_file}",
        )
    place = store()
    stored = place.load()
    if stored is None:
        raise NotSignedIn()
    return Found(
        stored, place, f"the stored login in {place.where()}", "sign in again with g2w-import login"
    )


def _one_word(token: str, where: str) -> None:
    """Refuse a token with spaces, line breaks or control characters in it: no server issues
    one, and in a header it would be a broken request, not a refused token."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in token):
        raise UsageError(
            f"{where}: the token holds spaces, line breaks or control characters; copy the "
            "token alone"
        )


def token_file_warning(path: Path) -> str | None:
    """A warning when others may read a token file (as ssh warns about keys), else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if os.name != "posix" or not path.is_file() or not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (
        f"--token-file {path}: other users may read this token (mode {mode:o}); "
        f"run: chmod 600 {path}"
    )


def read_token_file(path: Path) -> str:
    """The token in a file: one line, a byte-order mark or spaces around it dropped."""
    if path.exists() and not path.is_file():  # a pipe would block, a device never end
        raise UsageError(f"--token-file {path}: is not a regular file; put the token in one")
    if path.is_file() and path.stat().st_size > 64 * 1024:
        raise UsageError(f"--token-file {path}: is far too large for a token; check the file")
    try:
        token = path.read_text(encoding="utf-8-sig").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise UsageError(f"--token-file {path}: cannot be read ({reason})") from exc
    if not token:
        raise UsageError(f"--token-file {path}: the file is empty")
    if len(token.split()) != 1:
        raise UsageError(
            f"--token-file {path}: holds more than one word; put the token alone in it"
        )
    return token
