"""The server's Prometheus metrics (prometheus-client), one registry per app.

A registry per app rather than the global one, so that several apps in one process (tests)
do not collide and ``/metrics`` shows this server's figures only.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: seconds; covers a tiny model on a quiet CPU up to a Base model behind a long queue
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0)


class ServeMetrics:
    """Everything ``/metrics`` exposes.

    Args:
        max_batch: the largest batch (sets the batch size histogram's buckets).
    """

    def __init__(self, max_batch: int):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("vidsort_requests", "HTTP requests by path and status "
                                "(status 499: the client went away first)",
                                ["path", "status"], registry=r)
        self.latency = Histogram("vidsort_request_seconds", "POST /v1/classify: time from "
                                 "the request's start to its answer", ["status"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.upload = Histogram("vidsort_upload_seconds", "time to receive an upload",
                                buckets=LATENCY_BUCKETS, registry=r)
        self.upload_bytes = Counter("vidsort_upload_bytes", "bytes of video received",
                                    registry=r)
        self.decode = Histogram("vidsort_decode_seconds", "decode + sample + preprocess time "
                                "in a decode worker, per video", buckets=LATENCY_BUCKETS,
                                registry=r)
        self.batch_wait = Histogram("vidsort_batch_wait_seconds", "time a decoded clip waited "
                                    "for its batch to start", buckets=LATENCY_BUCKETS,
                                    registry=r)
        self.inference = Histogram("vidsort_inference_seconds", "model time per batch",
                                   buckets=LATENCY_BUCKETS, registry=r)
        sizes = [b for b in (1, 2, 4, 8, 16, 32, 64, 128) if b < max_batch] + [max_batch]
        self.batch_size = Histogram("vidsort_batch_size", "videos per inference call",
                                    buckets=[float(b) for b in sizes], registry=r)
        self.queue_depth = Gauge("vidsort_queue_depth", "requests in progress (uploading, "
                                 "decoding, waiting for a batch or in inference)", registry=r)
        self.batch_queue = Gauge("vidsort_batch_queue_depth", "decoded clips waiting for "
                                 "inference", registry=r)
        self.worker_restarts = Counter("vidsort_decode_worker_restarts", "decode workers "
                                       "killed and replaced (timeout or crash)", ["reason"],
                                       registry=r)
        self.rejected = Counter("vidsort_rejected", "requests refused before any work",
                                ["reason"], registry=r)
