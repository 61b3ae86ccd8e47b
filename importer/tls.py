"""TLS for every call: which certificate authorities are trusted, and what a refused
certificate means.

httpx trusts certifi's CA bundle, or the one ``SSL_CERT_FILE`` names: a company network whose
proxy inspects TLS signs with its own CA, which must be trusted so (README, "Company
networks"). :func:`context` reads the bundle once, for every client the tool builds, and
refuses in one line a ``SSL_CERT_FILE`` that names no bundle; :func:`untrusted` tells a
certificate that failed verification, which no retry can change, from a connection that failed.
"""

from __future__ import annotations

import functools
import os
import re
import ssl

import httpx

from .errors import UntrustedCertificate, UsageError

#: where the README explains certificates on company networks
SEE_README = 'see "Company networks" in the README'
#: OpenSSL's decoration of a reason: ``[SSL: CERTIFICATE_VERIFY_FAILED] … (_ssl.c:1000)``
_DECORATION = re.compile(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$")


def context() -> ssl.SSLContext:
    """The TLS settings of every client: httpx's, from ``SSL_CERT_FILE`` (or ``SSL_CERT_DIR``)
    when set, else certifi's bundle; a :class:`UsageError` when ``SSL_CERT_FILE`` names no
    bundle of PEM certificates."""
    return _context(os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))


@functools.lru_cache(maxsize=4)
def _context(cert_file: str, cert_dir: str) -> ssl.SSLContext:
    """Built once per bundle: reading it costs more than many calls (the arguments are the
    variables httpx reads, as the cache's key)."""
    try:
        return httpx.create_ssl_context()
    except OSError as exc:  # ssl.SSLError among them: a file that holds no PEM certificate
        if not cert_file:
            raise
        if isinstance(exc, ssl.SSLError):
            why = f"cannot be read as PEM certificates ({_reason(exc)})"
        elif isinstance(exc, FileNotFoundError):
            why = "does not exist"
        else:
            why = f"cannot be read ({exc.strerror or exc})"
        raise UsageError(
            f"SSL_CERT_FILE names {cert_file}, which {why}; set it to your CA bundle "
            f"(PEM certificates) or unset it ({SEE_README})"
        ) from exc


def untrusted(exc: BaseException, host: str) -> UntrustedCertificate | None:
    """The stop for a connection to ``host`` that failed because its certificate failed
    verification, found anywhere in the chain of causes of ``exc``; None for any other
    failure."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return UntrustedCertificate(
                f"the TLS certificate of {host} was refused ({_reason(cause)}); a company "
                f"network that inspects TLS needs its CA trusted: {SEE_README}"
            )
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _reason(exc: ssl.SSLError) -> str:
    """``certificate verify failed: self-signed certificate``: OpenSSL's words, undecorated."""
    verify = getattr(exc, "verify_message", None)
    if verify:
        return f"certificate verify failed: {verify}"
    text = exc.strerror or str(exc)
    return _DECORATION.sub("", str(text)).strip() or type(exc).__name__
