"""The dashboard's pages: templates rendered with nothing secret in them (the API key lives in
the browser), and Swagger UI on the vendored assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.ui.job_form import adapter_fields, data_fields, method_forms

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

router = APIRouter(include_in_schema=False)

# pages with no server-side context: path → (template, title); each page's script is
# static/js/<template>.js
PAGES = {
    "jobs": ("jobs", "Jobs"),
    "datasets": ("datasets", "Datasets"),
    "models": ("models", "Models"),
    "playground": ("playground", "Playground"),
    "evals": ("evals", "Evals"),
    "signin": ("signin", "Sign in"),
}


def _render(request: Request, template: str, title: str, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(
        request, f"{template}.html", {"title": title, "page": template, **context}
    )


@router.get("/ui")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/jobs")


@router.get("/ui/jobs/new", response_class=HTMLResponse)
def new_job(request: Request) -> HTMLResponse:
    return _render(
        request,
        "new_job",
        "New job",
        methods=method_forms(),
        adapter=adapter_fields(),
        data=data_fields(),
    )


@router.get("/ui/jobs/{job_id}", response_class=HTMLResponse)
def job(request: Request, job_id: str) -> HTMLResponse:
    return _render(request, "job", job_id, job_id=job_id)


@router.get("/ui/datasets/{file_id}", response_class=HTMLResponse)
def dataset(request: Request, file_id: str) -> HTMLResponse:
    return _render(request, "dataset", file_id, file_id=file_id)


@router.get("/ui/evals/{eval_id}", response_class=HTMLResponse)
def eval_page(request: Request, eval_id: str) -> HTMLResponse:
    """An eval's runs; `?run=<id>` (a run's report_url) also lists that run's output items."""
    return _render(request, "eval", eval_id, eval_id=eval_id)


def _page(template: str, title: str):
    def page(request: Request) -> HTMLResponse:
        return _render(request, template, title)

    return page


for _path, (_template, _title) in PAGES.items():
    router.add_api_route(f"/ui/{_path}", _page(_template, _title), response_class=HTMLResponse)


@router.get("/docs", response_class=HTMLResponse)
def swagger() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Lathe — API",
        swagger_js_url="/ui/static/vendor/swagger-ui-bundle.js",
        swagger_css_url="/ui/static/vendor/swagger-ui.css",
        swagger_favicon_url="/ui/static/vendor/favicon-32x32.png",
    )
