"""`vidsort serve`: an HTTP inference server for an exported model directory.

FastAPI + uvicorn in one process; uploads stream to temporary files; decoding runs in the
isolated decode workers (`vidsort.isolation`); decoded clips of concurrent requests share
micro-batched inference calls. Needs the serve extra: ``pip install 'vidsort[serve]'``.

- `settings` — `ServeSettings` and the defaults of the command's flags (light: no FastAPI).
- `uploads` — streaming a request body to a temporary file, with the size limit.
- `batcher` — `MicroBatcher`: gathers decoded clips into inference calls, off the event loop.
- `service` — `InferenceService`: decode → batch → labels, error mapping, admission (503).
- `metrics` — the Prometheus metrics.
- `app` — the FastAPI app (`create_app`): routes and the one error shape.
- `server` — `run_server`: uvicorn, the URL, drain on Ctrl-C / SIGTERM.
- `static/index.html` — the page at ``GET /``.

Importing this package imports nothing heavy; the modules above import FastAPI and friends.
"""

from vidsort.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
