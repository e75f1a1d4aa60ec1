"""`engram mcp`: the MCP server on standard input and output (app/mcp_server.py), and
`engram mcp --print-config`, the snippet an MCP host needs to start it."""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_mcp(args: argparse.Namespace) -> int:
    from app import mcp_server  # the SDK loads only for this command

    if args.print_config:
        print(json.dumps(mcp_server.host_config(), indent=2))
        return 0
    return mcp_server.run_stdio()


def register(sub: Any) -> None:
    p = sub.add_parser(
        "mcp", help="run the MCP server (stdio) other assistants use as their memory"
    )
    p.add_argument(
        "--print-config", action="store_true", help="print the JSON an MCP host needs, and exit"
    )
    p.set_defaults(func=cmd_mcp)
