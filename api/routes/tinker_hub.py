"""`/hf`: a read-only Hugging Face hub layout for base models' tokenizer files
(core.tinker.tokenizer_files). Public like /health: tokenizers are no secret, and the hub
client sends no Lathe key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from core.errors import NotFound
from core.tinker import tokenizer_files as tf

router = APIRouter(prefix="/hf", include_in_schema=False)


def _info(settings, repo_id: str) -> dict[str, Any]:
    found = tf.files(settings, repo_id)
    return {
        "id": repo_id,
        "modelId": repo_id,
        "sha": tf.commit(repo_id, found),
        "private": False,
        "siblings": [{"rfilename": name} for name in sorted(found)],
    }


@router.get("/api/models/{ns}/{name}")
@router.get("/api/models/{ns}/{name}/revision/{revision}")
async def model_info(ns: str, name: str, request: Request, revision: str = "main") -> dict:
    return await run_in_threadpool(_info, request.app.state.settings, f"{ns}/{name}")


@router.get("/api/models/{ns}/{name}/tree/{revision}")
@router.get("/api/models/{ns}/{name}/tree/{revision}/{path:path}")
async def tree(ns: str, name: str, revision: str, request: Request, path: str = "") -> list:
    info = await run_in_threadpool(_info, request.app.state.settings, f"{ns}/{name}")
    if path:
        return []  # no folders (e.g. additional_chat_templates)
    return [{"type": "file", "path": s["rfilename"]} for s in info["siblings"]]


@router.api_route("/{ns}/{name}/resolve/{revision}/{filename:path}", methods=["GET", "HEAD"])
async def resolve(ns: str, name: str, revision: str, filename: str, request: Request) -> Response:
    settings, repo_id = request.app.state.settings, f"{ns}/{name}"
    found = await run_in_threadpool(tf.files, settings, repo_id)
    path = found.get(filename)
    if path is None:
        return Response(status_code=404, headers={"X-Error-Code": "EntryNotFound"})
    headers = {
        "X-Repo-Commit": await run_in_threadpool(tf.commit, repo_id, found),
        "ETag": f'"{await run_in_threadpool(tf.etag, path)}"',
    }
    if request.method == "HEAD":
        headers["Content-Length"] = str(path.stat().st_size)
        return Response(status_code=200, headers=headers)
    return FileResponse(path, headers=headers)


__all__ = ["router", "NotFound"]
