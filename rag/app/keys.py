"""API keys for `rag serve`: bearer tokens, required whenever the server listens beyond loopback.

Keys come from `--api-key` (visible in the process list, like `rag chat --auth`, so a warning says
so) or `RAG_API_KEYS` (`Settings.api_keys`), comma-separated: several keys let clients be given
keys of their own and one be withdrawn without the others changing. A client sends one as
``Authorization: Bearer KEY`` — what the `openai` SDK (`api_key=`), LangChain, Dify and the MCP
clients send. Keys are compared in constant time, with every configured key, so that neither a
partial match nor which key matched shows in the response time. Which addresses count as loopback
is `rag.app.access.LOOPBACK`, the chat's rule. Nothing here imports fastapi.
"""

from __future__ import annotations

import hmac
from typing import Callable

from rag.app.access import LOOPBACK
from rag.config import Settings
from rag.errors import RagError

KEYS_VARIABLE = "RAG_API_KEYS"
SHORT_KEY = 16  # characters under which a key is warned about as guessable
# Paths every caller may read without a key: the API's description, which holds no data.
OPEN_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")


def read_keys(settings: Settings, api_key: str | None = None) -> tuple[str, ...]:
    """The keys the server accepts: ``api_key`` (`--api-key`) if given, else `Settings.api_keys`.

    Returns:
        The keys, stripped, empty ones dropped; () for none.
    Raises:
        RagError: a key holding spaces or control characters (no client can send it in a header).
    """
    source, text = ("--api-key", api_key) if api_key else (KEYS_VARIABLE, settings.api_keys)
    keys = tuple(dict.fromkeys(k.strip() for k in (text or "").split(",") if k.strip()))
    for n, key in enumerate(keys, start=1):
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key) or not key.isascii():
            raise RagError(f"{source}: key {n} holds spaces, control or non-ASCII characters, which an "
                           f"Authorization header cannot carry; use letters, digits and -._~+/ "
                           f"(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return keys


def check_listening(host: str, keys: tuple[str, ...]) -> None:
    """Refuse to serve beyond loopback without a key.

    Raises:
        RagError: ``host`` is not a loopback address and no key is configured.
    """
    if host not in LOOPBACK and not keys:
        raise RagError(f"rag serve would listen on {host}, beyond this machine, and answer anyone: set "
                       f"{KEYS_VARIABLE}=KEY (several: comma-separated) or pass --api-key KEY, which clients send "
                       f"as `Authorization: Bearer KEY`; or listen on 127.0.0.1 (the default)")


def key_warnings(keys: tuple[str, ...], on_command_line: bool) -> list[str]:
    """What the operator should know about the keys before the server opens."""
    warnings = []
    if on_command_line:
        warnings.append(f"--api-key puts the key in the process list for every user of this machine; "
                        f"set {KEYS_VARIABLE} instead")
    if any(len(k) < SHORT_KEY for k in keys):
        warnings.append(f"an API key shorter than {SHORT_KEY} characters is easy to guess; make one with "
                        f"`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    return warnings


def key_matches(presented: str, keys: tuple[str, ...]) -> bool:
    """Whether ``presented`` is one of ``keys``, compared in constant time with each of them."""
    given = presented.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:  # no early exit: the time does not say which key (or whether any) matched
        found |= hmac.compare_digest(given, key.encode())
    return found


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header; None when there is none or it has
    another form."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class RequireKey:
    """ASGI middleware: every HTTP request but those for `OPEN_PATHS` carries one of the keys.

    Args:
        app: the application.
        keys: the accepted keys; () lets every request through (loopback only, `check_listening`).
        refuse: (path, "missing" or "wrong", message) → the ASGI response to send; the API words it
            in the shape the path's protocol uses (OpenAI's or Dify's).
    """

    def __init__(self, app, keys: tuple[str, ...], refuse: Callable[[str, str, str], Callable]):
        self.app, self.keys, self.refuse = app, keys, refuse

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys or scope.get("path", "") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), None)
        token = bearer_token(header)
        if token is None:
            kind = "missing" if header is None else "malformed"
            message = ("no API key: send it as the header `Authorization: Bearer KEY`" if header is None else
                       "the Authorization header is not `Bearer KEY`; send the API key that way")
            return await self.refuse(scope["path"], kind, message)(scope, receive, send)
        if not key_matches(token, self.keys):
            message = "the API key is not one this server accepts; ask its operator for a key"
            return await self.refuse(scope["path"], "wrong", message)(scope, receive, send)
        return await self.app(scope, receive, send)
