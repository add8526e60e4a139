"""`lathe files upload|list|get|validate|delete`."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cli.client.config import UsageError
from cli.client.http import ApiClient, ApiError
from cli.client.output import console, errors, fields, print_json, show_list

FILE_FIELDS = ("id", "filename", "bytes", "purpose", "status", "status_details", "format",
               "n_examples", "created_at")  # fmt: skip
FILE_COLUMNS = (
    ("id", "id"),
    ("filename", "filename"),
    ("bytes", "bytes"),
    ("status", "status"),
    ("format", "format"),
    ("examples", "n_examples"),
    ("created", "created_at"),
)


def transfer_bar() -> Progress:
    """On stderr, as curl's and pip's: stdout stays the command's output (`--json | jq`)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=False,
    )


class _CountingFile(io.FileIO):
    """A file httpx streams from in 64 KiB reads; each read advances the bar. httpx sizes the
    multipart body from fstat, so the request keeps its Content-Length."""

    def __init__(self, path: Path, progress: Progress, task: TaskID):
        super().__init__(path, "rb")
        self._progress, self._task = progress, task

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        self._progress.update(self._task, completed=self.tell())
        return chunk


def upload(client: ApiClient, args: argparse.Namespace) -> None:
    path = Path(args.path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    with transfer_bar() as progress:
        task = progress.add_task(f"upload {path.name}", total=path.stat().st_size)
        with _CountingFile(path, progress, task) as f:
            obj = client.request(
                "POST",
                "/files",
                data={"purpose": args.purpose},
                files={"file": (path.name, f, "application/octet-stream")},
                timeout=None,  # validation of a large file runs before the answer
            )
    show_file(obj, args)
    if obj.get("status") == "error":  # stored but unusable: a script must not go on with it
        raise ApiError(f"{obj['id']} failed validation: {obj.get('status_details') or ''}")


def show_file(obj: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print_json(obj)
    else:
        console.print(fields(obj, FILE_FIELDS, title=f"file {obj['id']}"))


def list_files(client: ApiClient, args: argparse.Namespace) -> None:
    show_list(client.get("/files", limit=args.limit, purpose=args.purpose), FILE_COLUMNS, args.json)


def get_file(client: ApiClient, args: argparse.Namespace) -> None:
    show_file(client.get(f"/files/{args.file_id}"), args)


def delete_file(client: ApiClient, args: argparse.Namespace) -> None:
    obj = client.request("DELETE", f"/files/{args.file_id}")
    print_json(obj) if args.json else console.print(f"deleted {obj['id']}")


def validate(client: ApiClient, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"model": args.model, "method": {"type": args.method}}
    hp = {"max_seq_length": args.max_seq_length, "n_epochs": args.n_epochs}
    body["hyperparameters"] = {k: v for k, v in hp.items() if v is not None}
    report = client.post(f"/files/{args.file_id}/validate", body)
    if args.json:
        return print_json(report)
    from cli.client.report import render_validation

    render_validation(report)
    if not report["ok"]:
        raise SystemExit(1)


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    files = sub.add_parser("files", help="datasets: upload, list, validate").add_subparsers(
        dest="files_cmd", required=True
    )
    p = files.add_parser("upload", parents=[common], help="upload a dataset (progress bar)")
    p.add_argument("path")
    p.add_argument("--purpose", default="fine-tune")
    p.set_defaults(call=upload)
    p = files.add_parser("list", parents=[common], help="list uploaded files")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--purpose")
    p.set_defaults(call=list_files)
    p = files.add_parser("get", parents=[common], help="one file's status")
    p.add_argument("file_id")
    p.set_defaults(call=get_file)
    p = files.add_parser("delete", parents=[common], help="delete a file")
    p.add_argument("file_id")
    p.set_defaults(call=delete_file)
    p = files.add_parser(
        "validate", parents=[common], help="dry run against a base model: errors, tokens, cost"
    )
    p.add_argument("file_id")
    p.add_argument("--model", required=True, help="base model whose tokenizer the job would use")
    p.add_argument("--method", default="supervised")
    p.add_argument("--max-seq-length", type=int)
    p.add_argument("--n-epochs", type=int)
    p.set_defaults(call=validate)
