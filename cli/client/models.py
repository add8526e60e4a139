"""`lathe models list|get|download|delete|drift`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from urllib.parse import quote

from cli.client.files import transfer_bar
from cli.client.http import ApiClient
from cli.client.output import console, fields, human_bytes, print_json, show_list

MODEL_FIELDS = ("id", "owned_by", "created", "base_model", "adapter_type", "task")
MODEL_COLUMNS = (
    ("id", "id"),
    ("owned_by", "owned_by"),
    ("base_model", "base_model"),
    ("adapter", "adapter_type"),
    ("created", "created"),
)


def _path(model: str) -> str:
    return f"/models/{quote(model, safe=':')}"


def list_models(client: ApiClient, args: argparse.Namespace) -> None:
    show_list(client.get("/models"), MODEL_COLUMNS, args.json)


def get_model(client: ApiClient, args: argparse.Namespace) -> None:
    model = client.get(_path(args.model))
    print_json(model) if args.json else console.print(fields(model, MODEL_FIELDS))


def delete_model(client: ApiClient, args: argparse.Namespace) -> None:
    obj = client.request("DELETE", _path(args.model))
    print_json(obj) if args.json else console.print(f"deleted {obj['id']}")


def _filename(disposition: str | None, model: str) -> str:
    if disposition and (m := re.search(r'filename="([^"]+)"', disposition)):
        return Path(m.group(1)).name  # never a path the server chose
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model) + ".zip"


def download(client: ApiClient, args: argparse.Namespace) -> None:
    """Streams to `<out>.part` and renames when complete: a dropped download leaves no zip."""
    params = {"format": "merged"} if args.merged else {}
    with client.stream("GET", f"{_path(args.model)}/content", params=params, timeout=None) as r:
        out = Path(args.output or _filename(r.headers.get("content-disposition"), args.model))
        if out.is_dir():
            out = out / _filename(r.headers.get("content-disposition"), args.model)
        size = int(r.headers["content-length"]) if "content-length" in r.headers else None
        part = out.with_name(out.name + ".part")
        with transfer_bar() as progress, part.open("wb") as f:
            task = progress.add_task(f"download {out.name}", total=size)
            for chunk in r.iter_bytes():
                f.write(chunk)
                progress.advance(task, len(chunk))
        part.replace(out)
    console.print(f"saved {out} ({human_bytes(out.stat().st_size)})")


def drift(client: ApiClient, args: argparse.Namespace) -> None:
    """The model's drift report (core.drift); `--monitoring on|off` sets the organization's
    opt-in first (off deletes the samples kept)."""
    if args.monitoring:
        client.post("/organization/drift", {"enabled": args.monitoring == "on"})
    report = client.request("GET", f"{_path(args.model)}/drift", timeout=300)
    if args.json:
        print_json(report)
        return
    if report["status"] != "ok":
        console.print(f"{report['status']}: {report.get('message')}")
        return
    emb, tokens, lengths = report["embedding"], report["tokens"], report["lengths"]
    rows = {
        "samples": report["window"]["samples"],
        "reference rows": report["reference"]["rows"],
        "drift score": f"{emb['score']} (p={emb['p_value']:.3g}, "
        f"{'drifted' if emb['drifted'] else 'no drift'})"
        if emb
        else "no encoder configured",
        "prompt chars (traffic / training)": " / ".join(
            str((lengths["prompt_chars"][side] or {}).get("mean"))
            for side in ("traffic", "training")
        ),
        "word JS distance": tokens["js_distance"],
        "unseen word rate": tokens["unseen_word_rate"],
    }
    console.print(fields(rows, list(rows), title=f"drift of {report['model']}"))


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    models = sub.add_parser("models", help="base and fine-tuned models").add_subparsers(
        dest="models_cmd", required=True
    )
    p = models.add_parser("list", parents=[common], help="models you can train on or call")
    p.set_defaults(call=list_models)
    p = models.add_parser("get", parents=[common], help="one model")
    p.add_argument("model")
    p.set_defaults(call=get_model)
    p = models.add_parser("delete", parents=[common], help="delete a fine-tuned model")
    p.add_argument("model")
    p.set_defaults(call=delete_model)
    p = models.add_parser("download", parents=[common], help="a model's weights as a zip")
    p.add_argument("model")
    p.add_argument("--output", "-o", help="file or directory (default: the server's file name)")
    p.add_argument("--merged", action="store_true", help="the adapter folded into its base")
    p.set_defaults(call=download)
    p = models.add_parser("drift", parents=[common], help="recent traffic vs training data")
    p.add_argument("model")
    p.add_argument("--monitoring", choices=("on", "off"), help="opt the organization in/out")
    p.set_defaults(call=drift)
