"""`lathe chat MODEL`: one message (`-m`) or a conversation, streamed as it is generated."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.client.http import ApiClient, sse_events
from cli.client.output import console


def _reply(client: ApiClient, args: argparse.Namespace, messages: list[dict[str, str]]) -> str:
    """POST /chat/completions with `stream: true`; prints each delta as it arrives."""
    body: dict[str, Any] = {"model": args.model, "messages": messages, "stream": True}
    for name in ("temperature", "max_tokens", "seed"):
        if (value := getattr(args, name)) is not None:
            body[name] = value
    parts: list[str] = []
    with client.stream("POST", "/chat/completions", json=body, timeout=None) as response:
        for sse in sse_events(response.iter_lines()):
            if sse.data == "[DONE]":
                break
            for choice in json.loads(sse.data).get("choices", []):
                if text := (choice.get("delta") or {}).get("content"):
                    parts.append(text)
                    sys.stdout.write(text)
                    sys.stdout.flush()
    sys.stdout.write("\n")
    return "".join(parts)


def _prompts(args: argparse.Namespace):
    """`-m` messages, else lines typed (or piped) until EOF, `exit` or `quit`."""
    if args.message:
        yield from args.message
        return
    interactive = sys.stdin.isatty()
    if interactive:
        console.print(f"chatting with {args.model}; Ctrl-D or 'exit' ends")
    while True:
        try:
            line = console.input("[bold]you>[/bold] ") if interactive else input()
        except EOFError:
            return
        if line.strip() in ("exit", "quit"):
            return
        if line.strip():
            yield line


def chat(client: ApiClient, args: argparse.Namespace) -> None:
    messages = [{"role": "system", "content": args.system}] if args.system else []
    for prompt in _prompts(args):
        messages.append({"role": "user", "content": prompt})
        messages.append({"role": "assistant", "content": _reply(client, args, messages)})


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("chat", parents=[common], help="chat with a base or fine-tuned model")
    p.add_argument("model")
    p.add_argument(
        "-m", "--message", action="append", help="send this (repeat for several turns) and exit"
    )
    p.add_argument("--system", help="a system message first")
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", dest="max_tokens", type=int)
    p.add_argument("--seed", type=int)
    p.set_defaults(call=chat)
