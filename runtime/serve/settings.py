"""`vidsort serve`'s settings and their defaults, one definition each.

Light on purpose (no FastAPI, no onnxruntime): the CLI reads the defaults from here for
``vidsort serve --help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidsort.options import DECODE_MEMORY_MB, DECODE_TIMEOUT_S, DECODE_WORKERS

HOST = "127.0.0.1"
PORT = 8000
#: videos per inference call at most
MAX_BATCH = 8
#: how long a decoded clip may wait for others to fill its batch
MAX_WAIT_MS = 20.0
#: requests admitted at once (uploading, decoding, waiting or in inference); more get 503
MAX_QUEUE = 64
MAX_UPLOAD_MB = 512.0
#: labels returned when the request does not say
TOP_K = 5


@dataclass(frozen=True)
class ServeSettings:
    """How the server runs (the flags of ``vidsort serve``).

    Attributes:
        model_dir: a directory written by ``vidsort export``.
        host, port: where to listen.
        provider, precision, threads: the ONNX Runtime session (as for `VideoClassifier`).
        max_batch: videos per inference call at most.
        max_wait_ms: how long a decoded clip waits at most for a batch to fill.
        max_queue: requests in progress at once; beyond it, 503 with ``Retry-After``.
        decode_workers, timeout_s, memory_mb: the isolated decode workers
            (`vidsort.isolation.IsolationSettings`).
        max_upload_mb: largest upload accepted (413 beyond, enforced while it streams).
        tmp_dir: where uploads are spooled (default: the system's temporary directory).
    """

    model_dir: str
    host: str = HOST
    port: int = PORT
    provider: str = "auto"
    precision: str = "auto"
    threads: int = 0
    max_batch: int = MAX_BATCH
    max_wait_ms: float = MAX_WAIT_MS
    max_queue: int = MAX_QUEUE
    decode_workers: int = DECODE_WORKERS
    timeout_s: float = DECODE_TIMEOUT_S
    memory_mb: int | None = DECODE_MEMORY_MB
    max_upload_mb: float = MAX_UPLOAD_MB
    tmp_dir: str | None = None

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty when they are usable)."""
        out = []
        for name in ("max_batch", "max_queue", "decode_workers"):
            if getattr(self, name) < 1:
                out.append(f"--{name.replace('_', '-')} must be >= 1")
        if self.max_wait_ms < 0:
            out.append("--max-wait-ms must be >= 0")
        if self.timeout_s <= 0:
            out.append("--timeout must be > 0")
        if self.max_upload_mb <= 0:
            out.append("--max-upload-mb must be > 0")
        if not 0 <= self.port <= 65535:
            out.append("--port must be 0-65535")
        return out

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes (MiB, as the other ``-mb`` flags)."""
        return int(self.max_upload_mb * 1024**2)
