"""Who may reach the served app, and how: logins kept off the command line, and HTTPS.

A password given as `--auth user:password` is in the process list for every user of the machine
to read (`ps`), so `rag chat` (and `rag serve` when it comes) also takes the logins from a file
(`--auth-file`, one `user:password` a line) or from the `RAG_AUTH` variable. A login over plain
HTTP crosses the network in clear: `--ssl-keyfile`/`--ssl-certfile` serve HTTPS, or a reverse
proxy does it in front (README, "Chat"). Nothing here imports gradio.
"""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

from rag.errors import RagError

AUTH_VARIABLE = "RAG_AUTH"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def read_logins(auth: str | None = None, auth_file: Path | None = None,
                environ=os.environ) -> list[tuple[str, str]] | None:
    """The logins the app asks for: from ``auth_file`` or ``auth``, else from RAG_AUTH; None for none.

    Args:
        auth: one `user:password` (`--auth`).
        auth_file: a file of `user:password` lines; blank lines and lines starting with # are skipped.
        environ: where RAG_AUTH is read (one or more `user:password` lines).
    Returns:
        (user, password) pairs, or None when no login is configured.
    Raises:
        RagError: both flags given, the file unreadable or empty, a line that is not user:password.
    """
    if auth and auth_file:
        raise RagError("give --auth or --auth-file, not both")
    if auth_file:
        try:
            text = Path(auth_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RagError(f"cannot read the logins in --auth-file {auth_file} ({exc})") from exc
        logins = _parse(text, f"--auth-file {auth_file}")
        if not logins:
            raise RagError(f"--auth-file {auth_file} holds no login; write one user:password a line")
        return logins
    if auth:
        return _parse(auth, "--auth")
    if environ.get(AUTH_VARIABLE, "").strip():
        return _parse(environ[AUTH_VARIABLE], AUTH_VARIABLE)
    return None


def readable_by_others(path: Path) -> bool:
    """Whether users other than the owner may read ``path`` (a password file should be 0600)."""
    return bool(Path(path).stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))


def tls_files(keyfile: Path | None, certfile: Path | None) -> dict:
    """The `launch` options for HTTPS: {} without files, else ssl_keyfile and ssl_certfile.

    Raises:
        RagError: only one of the two given, a file that does not exist, a key and certificate
            that do not load together.
    """
    if not keyfile and not certfile:
        return {}
    if not keyfile or not certfile:
        raise RagError("--ssl-keyfile and --ssl-certfile go together: the private key and its certificate (PEM)")
    for flag, path in (("--ssl-keyfile", keyfile), ("--ssl-certfile", certfile)):
        if not Path(path).is_file():
            raise RagError(f"{flag} {path}: no such file")
    try:  # here, not in the server's thread, where a bad pair would only show as "port taken"
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile, password=lambda: b"")
    except ssl.SSLError as exc:
        raise RagError(f"cannot serve HTTPS with --ssl-keyfile {keyfile} and --ssl-certfile {certfile} ({exc}); "
                       f"pass an unencrypted PEM key and the certificate that belongs to it") from exc
    return {"ssl_keyfile": str(keyfile), "ssl_certfile": str(certfile)}


def exposure_warnings(host: str, logins, tls: dict, auth_on_command_line: bool, auth_file: Path | None) -> list[str]:
    """What the operator should know before the app opens: a password others can read, a login
    that crosses the network in clear."""
    warnings = []
    if auth_on_command_line:
        warnings.append(f"--auth puts the password in the process list for every user of this machine; "
                        f"use --auth-file or {AUTH_VARIABLE}")
    if auth_file and readable_by_others(auth_file):
        warnings.append(f"{auth_file} is readable by other users; chmod 600 it")
    if logins and host not in LOOPBACK and not tls:
        warnings.append(f"logins on {host} travel in clear over plain HTTP; pass --ssl-keyfile/--ssl-certfile "
                        f"or serve behind an HTTPS reverse proxy")
    return warnings


def _parse(text: str, source: str) -> list[tuple[str, str]]:
    logins = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            where = f"{source}, line {number}," if source.startswith("--auth-file") else source
            example = "--auth reader:s3cret" if source == "--auth" else "reader:s3cret"
            raise RagError(f"{where} takes user:password, e.g. {example}")
        logins.append((user, password))
    return logins
