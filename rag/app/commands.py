"""The `rag serve` (HTTP API) and `rag mcp` (MCP over stdio) commands, added to the CLI's parser.

Importing this imports neither fastapi nor mcp: they load when a command runs, and a missing one
is an error that names the extra to install.
"""

from __future__ import annotations

import sys
from pathlib import Path


def add_serve_parsers(sub, llm_options, settings_of) -> None:
    """Add `serve` and `mcp` to the CLI's subcommands.

    Args:
        sub: the parser's subparsers; llm_options: adds --model/--backend/--base-url to a parser;
        settings_of: parsed arguments → Settings.
    """
    p = sub.add_parser("serve", help="serve the HTTP API: OpenAI-compatible chat, Dify's knowledge API, "
                                     "articles, MCP at /mcp (docs at /docs)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address (default 127.0.0.1; another needs an API key: RAG_API_KEYS or --api-key)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--api-key", metavar="KEY", help="require this bearer token (several: comma-separated; "
                                                    "visible in the process list: prefer RAG_API_KEYS)")
    p.add_argument("--ssl-keyfile", type=Path, metavar="PATH", help="serve HTTPS: the private key (PEM)")
    p.add_argument("--ssl-certfile", type=Path, metavar="PATH", help="serve HTTPS: its certificate (PEM)")
    llm_options(p)
    p.set_defaults(func=lambda args: cmd_serve(args, settings_of(args)))

    p = sub.add_parser("mcp", help="serve the MCP tools (search_articles, get_article, ask) over stdio")
    llm_options(p)
    p.set_defaults(func=lambda args: cmd_mcp(args, settings_of(args)))


def cmd_serve(args, settings) -> int:
    """Check who may call, then serve until Ctrl+C."""
    from rag.app.access import exposure_warnings, tls_files
    from rag.app.keys import check_listening, key_warnings, read_keys

    keys = read_keys(settings, args.api_key)
    check_listening(args.host, keys)
    tls = tls_files(args.ssl_keyfile, args.ssl_certfile)
    for warning in key_warnings(keys, bool(args.api_key)) + exposure_warnings(args.host, keys, tls, False, None):
        print(f"warning: {warning}", file=sys.stderr)
    serve = _needs_serve_extra(lambda: __import__("rag.app.api", fromlist=["serve"]).serve)
    serve(settings, args.host, args.port, keys, **tls)
    return 0


def cmd_mcp(args, settings) -> int:
    """Serve the MCP tools over stdio until the client closes them."""
    serve_stdio = _needs_serve_extra(lambda: __import__("rag.app.mcpserver", fromlist=["serve_stdio"]).serve_stdio)
    _needs_serve_extra(lambda: __import__("mcp"))
    serve_stdio(settings)
    return 0


def _needs_serve_extra(load):
    """``load()``, with a missing fastapi, uvicorn or mcp said as the extra to install."""
    from rag.errors import RagError

    try:
        return load()
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("fastapi", "uvicorn", "starlette", "mcp", "pydantic"):
            raise
        raise RagError(f"rag serve and rag mcp need {exc.name} ({exc}): run `pip install 'rag[serve]'`") from exc
