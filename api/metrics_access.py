"""Who may read the API's /metrics: Prometheus' convention (an open path on the API port) by
default, and, as the operator chooses, a listen address of its own (LATHE_METRICS_LISTEN, so
the API port does not serve it at all) and/or a bearer token (LATHE_METRICS_TOKEN).

The separate listener is a small WSGI server in a thread of the API process: the HTTP metrics
are counted in this process, so it serves this app's registry as the route would.
"""

from __future__ import annotations

import hmac
import logging
import threading
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from core.settings import Settings

log = logging.getLogger(__name__)


def token_ok(authorization: str | None, token: str | None) -> bool:
    """No token configured, or `authorization` is `Bearer <token>`."""
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def serve_apart(settings: Settings, registry: CollectorRegistry) -> ThreadingWSGIServer:
    """Serve `registry` on LATHE_METRICS_LISTEN, with the token check, in a daemon thread."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
            pass

    exposition = make_wsgi_app(registry)

    def app(environ: dict, start_response: Any) -> Any:
        if not token_ok(environ.get("HTTP_AUTHORIZATION"), settings.metrics.token):
            start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer")])
            return [b"metrics need Authorization: Bearer <LATHE_METRICS_TOKEN>\n"]
        return exposition(environ, start_response)

    host, _, port = (settings.metrics.listen or "").rpartition(":")
    server = make_server(host or "0.0.0.0", int(port), app, ThreadingWSGIServer, Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics served on http://%s/metrics", settings.metrics.listen)
    return server
