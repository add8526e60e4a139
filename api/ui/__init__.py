"""The dashboard at `/ui` and Swagger UI at `/docs`, both served from local files.

Pages are server-rendered shells; their data comes from the public `/v1` API, fetched by the
browser with the API key the user signed in with, so the dashboard can do nothing a client
of the API could not, and sees only the signed-in organization's objects.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.ui.pages import STATIC_DIR, router


def install(app: FastAPI) -> None:
    """Mount the dashboard's pages, its static files (vendored libraries included) and `/docs`.

    The app must be made with `docs_url=None`: FastAPI's own `/docs` loads Swagger from a CDN."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
