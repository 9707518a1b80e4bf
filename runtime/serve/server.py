"""Running the server: load the model, start uvicorn (one process), print the URL, and on
Ctrl-C / SIGTERM drain the requests in progress, then exit 0.

uvicorn drains by itself (it stops accepting, lets each connection finish its request, then
runs the app's shutdown), but afterwards re-raises the signal it caught, so the process would
end by SIGTERM (or KeyboardInterrupt) instead of exiting 0; `_Server` keeps the drain and
drops the re-raise.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn
from vidsort.serve.app import create_app
from vidsort.serve.service import InferenceService
from vidsort.serve.settings import ServeSettings

#: how long a drain waits for requests in progress before it cancels them (a client that
#: stalls mid-upload must not keep the server up forever)
DRAIN_TIMEOUT_S = 300
EXIT_OK, EXIT_USAGE = 0, 2


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: InferenceService,
                 log: Callable[..., None] = print):
        super().__init__(config)
        self.service, self.log = service, log

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(sig: int, frame) -> None:
            if not self.should_exit:
                self.log(f"vidsort serve: {signal.Signals(sig).name}: draining "
                         f"{self.service.in_flight} request(s) in progress, then exiting "
                         "(Ctrl-C again to stop at once)")
            self.service.draining = True
            self.handle_exit(sig, frame)

        originals = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            self.log(f"vidsort serve: listening on {self.url()}  (model {self.service.model_name},"
                     f" {self.service.classifier.precision}, {self.service.classifier.provider};"
                     " Ctrl-C to stop)", flush=True)

    def url(self) -> str:
        """The address the server listens on (the real port when asked for port 0)."""
        host, port = self.config.host, self.config.port
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                break
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"


def run_server(settings: ServeSettings, log: Callable[..., None] = print) -> int:
    """Serve until Ctrl-C or SIGTERM.

    Args:
        settings: the server's settings.
        log: where status lines go (``print``-like).

    Returns:
        The exit code: 0 after a drain, 2 when the settings are unusable or the port is taken.
        A model that does not load raises its `VidsortError` (the CLI prints it).
    """
    problems = settings.problems()
    if problems:
        log("vidsort serve: " + "; ".join(problems), file=sys.stderr)
        return EXIT_USAGE
    started = time.perf_counter()
    service = InferenceService.load(settings)
    log(f"vidsort serve: model loaded in {time.perf_counter() - started:.1f} s; "
        f"{settings.decode_workers} decode worker(s), batches of up to {settings.max_batch} "
        f"within {settings.max_wait_ms:g} ms", flush=True)
    config = uvicorn.Config(create_app(service), host=settings.host, port=settings.port,
                            log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=DRAIN_TIMEOUT_S)
    server = _Server(config, service, log)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits 1 when it cannot listen (it logged why)
        log(f"vidsort serve: could not serve on {settings.host}:{settings.port}",
            file=sys.stderr)
        return EXIT_USAGE if exc.code else EXIT_OK
    finally:
        service.preparer.close()  # idempotent; the app's shutdown normally did it
    if server.started:
        log("vidsort serve: stopped", flush=True)
    return EXIT_OK
