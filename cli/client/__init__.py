"""The user's side of the `lathe` command: files, jobs, models, chat and login, over the public
`/v1` API (cli.client.http) against any Lathe server. They import neither the server nor
torch; cli.main registers them next to serve/worker/migrate with `add_commands`.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from rich.markup import escape

from cli.client import chat, files, jobs, models
from cli.client.config import DEFAULT_PROFILE, Target, UsageError, resolve, write_profile
from cli.client.http import ApiClient, ApiError
from cli.client.output import console, errors


def _run(args: argparse.Namespace) -> None:
    """Every client command: resolve the server, call, and turn failures into one line."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    client = None
    args.json = getattr(args, "json", False)
    try:
        if args.needs_server:
            target = resolve(args.profile)
            if not target.api_key:
                raise UsageError(NO_KEY)
            client = ApiClient(target)
        args.call(client, args)
    except (ApiError, UsageError) as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:  # `lathe … | head` stopped reading: no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None  # as a process killed by SIGPIPE
    finally:
        if client is not None:
            client.close()


NO_KEY = (
    "no API key: run `lathe login` (it saves a server and key), or set LATHE_API_KEY "
    "(and LATHE_BASE_URL for another server)"
)


def login(_: None, args: argparse.Namespace) -> None:
    """Check the key against the server, then keep both in the profile file."""
    key = args.api_key
    if key is None:
        key = getpass.getpass("API key: ") if sys.stdin.isatty() else sys.stdin.readline()
    target = Target(args.base_url.rstrip("/").removesuffix("/v1"), key.strip(), "login")
    checked = ApiClient(target)
    try:
        n = len(checked.get("/models")["data"])
    finally:
        checked.close()
    path = write_profile(args.profile or DEFAULT_PROFILE, target.base_url, target.api_key or "")
    console.print(f"logged in to {target.base_url} ({n} models); profile saved in {path}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", help=f"profile in the config file (default {DEFAULT_PROFILE})")
    # SUPPRESS: unset here, the top-level `lathe --json …` flag (cli.main) is not overridden
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the server's JSON"
    )
    common.set_defaults(func=_run, needs_server=True)
    files.add_parsers(sub, common)
    jobs.add_parsers(sub, common)
    models.add_parsers(sub, common)
    chat.add_parsers(sub, common)
    p = sub.add_parser("login", parents=[common], help="save a server and key as a profile")
    p.add_argument("--base-url", default="http://127.0.0.1:8000")
    p.add_argument("--api-key", help="default: prompt (or read one line from stdin)")
    p.set_defaults(call=login, needs_server=False)
