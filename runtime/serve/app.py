"""The FastAPI app: routes, the error shape, request metrics.

Every error is JSON ``{"error": {"type", "message"}}``: 400 not a video, 413 too large, 422 bad
parameters, 503 (+ ``Retry-After``) queue full or shutting down, 504 decode timeout. Bad input
never gets a 500, and no response carries a traceback or a server-side path.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from vidsort import __version__
from vidsort.serve.problems import RequestError, error_body
from vidsort.serve.service import PING_TIMEOUT_S, InferenceService, segments_supported
from vidsort.serve.settings import TOP_K
from vidsort.serve.uploads import check_content_length, receive_upload

log = logging.getLogger("vidsort.serve")

#: status recorded for a request whose client went away before the answer (nginx's convention)
CLIENT_GONE = 499
ROUTES = ("/", "/v1/classify", "/v1/model", "/healthz", "/readyz", "/metrics")


class _CountRequests:
    """Pure ASGI middleware: counts every response by path and status (a client that went away
    counts as 499). Not `BaseHTTPMiddleware`, which would sit between the body stream and the
    handler."""

    def __init__(self, app: ASGIApp, service: InferenceService):
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = CLIENT_GONE

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            path = scope["path"] if scope["path"] in ROUTES else "other"
            self.service.metrics.requests.labels(path, str(status)).inc()


def _page() -> str:
    return resources.files("vidsort.serve").joinpath("static/index.html").read_text("utf-8")


def create_app(service: InferenceService) -> FastAPI:
    """The app serving ``service`` (its lifespan starts and closes the service).

    Args:
        service: a loaded `InferenceService`.

    Returns:
        The FastAPI app.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.start()
        try:
            yield
        finally:
            await service.close()

    app = FastAPI(title="vidsort", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None)
    app.add_middleware(_CountRequests, service=service)
    settings, metrics, page = service.settings, service.metrics, _page()

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse(exc.body(), exc.status, headers=exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _bad_parameters(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: "
                             f"{e.get('msg', 'invalid')}" for e in exc.errors())
        return JSONResponse(error_body("InvalidParameter", problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return JSONResponse(error_body(kind, str(exc.detail)), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: the traceback goes to the server's log, never to the client.
        log.error("internal error", exc_info=exc)
        return JSONResponse(error_body("InternalError", f"internal error ({type(exc).__name__});"
                                       " see the server's log"), 500)

    @app.post("/v1/classify")
    async def classify(request: Request,
                       top_k: int = Query(TOP_K, ge=1, description="labels to return"),
                       segments: bool = Query(False, description="long-video segments")) -> Any:
        if segments and not segments_supported():
            raise RequestError(422, "SegmentsUnavailable", "segments=true needs a vidsort with "
                               "long-video segments (VideoClassifier.classify_segments); this "
                               "one has none")
        content_type = request.headers.get("content-type")
        limit = settings.max_upload_bytes
        check_content_length(request.headers.get("content-length"), limit,
                             multipart=bool(content_type and "multipart/" in content_type))
        service.admit()
        started, status, upload = time.perf_counter(), CLIENT_GONE, None
        try:
            upload = await receive_upload(content_type, request.stream(), limit,
                                          settings.tmp_dir)
            metrics.upload.observe(upload.seconds)
            metrics.upload_bytes.inc(upload.size)
            classify = service.classify_segments if segments else service.classify
            result = await classify(upload, top_k)
            result["timings"]["total_s"] = round(time.perf_counter() - started, 4)
            status = 200
            return JSONResponse(result)
        except RequestError as exc:
            status = exc.status
            raise
        except ClientDisconnect:
            return Response(status_code=CLIENT_GONE)  # nobody reads it: counted, then dropped
        except Exception:
            status = 500
            raise
        finally:
            if upload is not None:
                upload.path.unlink(missing_ok=True)
            service.release()
            metrics.latency.labels(str(status)).observe(time.perf_counter() - started)

    @app.get("/v1/model")
    async def model() -> dict:
        return service.describe()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if service.draining:
            raise RequestError(503, "ShuttingDown", "the server is shutting down", retry_after=5)
        if not await service.workers_alive():
            raise RequestError(503, "WorkersUnavailable", "no decode worker answered within "
                               f"{PING_TIMEOUT_S:g} s (all busy or restarting)", retry_after=2)
        return JSONResponse({"status": "ready", "model": service.model_name,
                             "in_flight": service.in_flight})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    return app
