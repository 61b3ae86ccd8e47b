"""TLS for every call: which certificate authorities are trusted, and what a refused
certificate means.

Certificates are checked against the operating system's trust store (``truststore``, as pip
does), so that a company network whose proxy inspects TLS works as it does in the browser once
the IT department has installed its CA there; a bundle named by ``SSL_CERT_FILE`` (or a folder
named by ``SSL_CERT_DIR``) is trusted instead (README, "Company networks"). :func:`context`
builds the settings once, for every client the tool builds, and refuses in one line a
``SSL_CERT_FILE`` that names no bundle; :func:`untrusted` tells a certificate that failed
verification, which no retry can change, from a connection that failed.
"""

from __future__ import annotations

import functools
import os
import re
import ssl

import truststore

from importer.errors import UntrustedCertificate, UsageError

#: where the README explains certificates on company networks
SEE_README = 'see "Company networks" in the README'
#: OpenSSL's decoration of a reason: ``[SSL: CERTIFICATE_VERIFY_FAILED] … (_ssl.c:1000)``
_DECORATION = re.compile(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$")


def context() -> ssl.SSLContext:
    """The TLS settings of every client: the operating system's trust store, or the bundle
    ``SSL_CERT_FILE`` names (and the folder ``SSL_CERT_DIR`` names) when set; a
    :class:`UsageError` when ``SSL_CERT_FILE`` names no bundle of PEM certificates."""
    return _context(os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))


@functools.lru_cache(maxsize=4)
def _context(cert_file: str, cert_dir: str) -> ssl.SSLContext:
    """Built once per bundle: reading it costs more than many calls (the arguments are the
    variables that name one, as the cache's key)."""
    if not cert_file and not cert_dir:
        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cert_dir and not os.path.isdir(cert_dir):  # OpenSSL would ignore it, trusting nothing
        raise UsageError(
            f"SSL_CERT_DIR names {cert_dir}, which is no folder; set it to the folder of your "
            f"CA certificates or unset it ({SEE_README})"
        )
    try:
        return ssl.create_default_context(cafile=cert_file or None, capath=cert_dir or None)
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
