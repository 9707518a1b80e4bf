"""The work behind ``POST /v1/classify``: an uploaded file → isolated decode → micro-batched
inference → top-k labels, with the error mapping and the metrics.

Decoding goes to the isolated workers (`vidsort.isolation.IsolatedPreparer`, kept open for the
server's life): a file that hangs or crashes its decoder costs only its own request (504 / 400)
and its worker is replaced. Each request waits for its decode in a thread of its own (the
preparer's API blocks), so one slow file never holds up the answers of others.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from vidsort.classifier import VideoClassifier
from vidsort.decode import DecodeLimits
from vidsort.errors import DecoderCrashed, DecodeTimeout, VideoError, VidsortError
from vidsort.isolation import IsolatedPreparer, IsolationSettings
from vidsort.pipeline import PreparedClip
from vidsort.postprocess import top_k_predictions
from vidsort.serve.batcher import MicroBatcher
from vidsort.serve.metrics import ServeMetrics
from vidsort.serve.problems import RequestError
from vidsort.serve.settings import ServeSettings
from vidsort.serve.uploads import Upload

#: a decode that succeeded this recently shows the workers are alive (no ping needed)
ALIVE_WINDOW_S = 5.0
#: how long /readyz waits for an idle worker to answer a ping
PING_TIMEOUT_S = 2.0


def segments_supported() -> bool:
    """Whether this vidsort can classify long videos segment by segment."""
    return hasattr(VideoClassifier, "classify_segments")


class InferenceService:
    """The model, the decode workers and the batcher of one server.

    Args:
        settings: the server's settings.
        classifier: a loaded classifier whose ``isolation`` is ``preparer``.
        preparer: the open decode worker pool.
    """

    def __init__(self, settings: ServeSettings, classifier: VideoClassifier,
                 preparer: IsolatedPreparer):
        self.settings, self.classifier, self.preparer = settings, classifier, preparer
        self.metrics = ServeMetrics(settings.max_batch)
        self.batcher = MicroBatcher(classifier.predict_logits, settings.max_batch,
                                    settings.max_wait_ms / 1000, self._on_batch)
        # threads only wait on the workers' futures; one per admitted request at most
        self._waiters = ThreadPoolExecutor(settings.max_queue, thread_name_prefix="vidsort-wait")
        self.in_flight = 0
        self.draining = False
        self._last_alive = 0.0
        self._decode_ewma = 0.2  # seconds per video, for Retry-After
        self.metrics.queue_depth.set_function(lambda: self.in_flight)
        self.metrics.batch_queue.set_function(lambda: self.batcher.waiting)

    @classmethod
    def load(cls, settings: ServeSettings) -> InferenceService:
        """Start the decode workers, then load the model.

        Returns:
            The service; raises `VidsortError` (e.g. `ModelDirError`) when the model cannot load.
        """
        isolation = IsolationSettings(workers=settings.decode_workers,
                                      timeout_s=settings.timeout_s,
                                      memory_mb=settings.memory_mb)
        preparer = IsolatedPreparer(isolation)
        # workers start while the model loads
        preparer.start()
        try:
            classifier = VideoClassifier(settings.model_dir, provider=settings.provider,
                                         precision=settings.precision, threads=settings.threads,
                                         limits=DecodeLimits(), isolation=preparer)
        except BaseException:
            preparer.close()
            raise
        return cls(settings, classifier, preparer)

    def start(self) -> None:
        """Start batching (from the event loop)."""
        self.batcher.start()

    async def close(self) -> None:
        """Stop batching and the decode workers."""
        await self.batcher.close()
        self._waiters.shutdown(wait=False, cancel_futures=True)
        self.preparer.close()

    # ------------------------------------------------------------------ admission

    def admit(self) -> None:
        """Count a request in, or refuse it with a 503 (queue full or shutting down)."""
        if self.draining:
            self.metrics.rejected.labels("draining").inc()
            raise RequestError(503, "ShuttingDown", "the server is shutting down",
                               retry_after=5)
        if self.in_flight >= self.settings.max_queue:
            self.metrics.rejected.labels("queue_full").inc()
            raise RequestError(503, "QueueFull", f"{self.in_flight} requests in progress "
                               f"(--max-queue {self.settings.max_queue}); retry later",
                               retry_after=self.retry_after())
        self.in_flight += 1

    def release(self) -> None:
        """Count a request out."""
        self.in_flight -= 1

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained by one worker's share (1-60)."""
        per_worker = self.in_flight / self.settings.decode_workers
        return max(1, min(60, math.ceil(per_worker * self._decode_ewma)))

    # ------------------------------------------------------------------ the work

    async def classify(self, upload: Upload, top_k: int) -> dict[str, Any]:
        """Classify a spooled upload.

        Args:
            upload: the received file (deleted by the caller).
            top_k: labels to return.

        Returns:
            ``{"predictions", "model", "timings", ...}``; raises `RequestError` for a file that
            is not a video (400), hangs its decoder (504) or crashes it (400).
        """
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(self._waiters, self._prepare, str(upload.path))
        if isinstance(prepared, VidsortError):
            raise self._decode_error(prepared, upload.name)
        decode_s = prepared.info["timings"]["decode_s"] + prepared.info["timings"]["preprocess_s"]
        self.metrics.decode.observe(decode_s)
        self._decode_ewma = 0.9 * self._decode_ewma + 0.1 * decode_s
        result = await self.batcher.submit(prepared.pixel_values)
        self.metrics.batch_wait.observe(result.wait_s)
        predictions = top_k_predictions(result.logits.mean(axis=0), self.classifier.labels,
                                        top_k, self.classifier.function)
        info = prepared.info
        return {
            "predictions": predictions,
            "model": self.model_name,
            "timings": {"upload_s": round(upload.seconds, 4), **info["timings"],
                        "batch_wait_s": round(result.wait_s, 4),
                        "inference_s": round(result.inference_s, 4)},
            "batch_size": result.batch_size,
            "video": {"name": upload.name, "bytes": upload.size,
                      **{k: info[k] for k in ("width", "height", "num_video_frames", "backend")
                         if k in info}},
        }

    async def classify_segments(self, upload: Upload, top_k: int) -> dict[str, Any]:
        """Labels with timestamps for a spooled (long) upload (`VideoClassifier.classify_segments`).

        Its windows form their own inference batches, so it bypasses the micro-batcher; its
        decoding streams from a worker process of its own, with the server's timeout and cap.

        Returns:
            ``{"predictions" (whole video), "segments", "windows", "duration_s", "fps", "model",
            "timings"}``; raises `RequestError` as `classify` does.
        """
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            result = await loop.run_in_executor(
                self._waiters, partial(self.classifier.classify_segments, str(upload.path),
                                       top_k=top_k))
        except VidsortError as exc:
            raise self._decode_error(exc, upload.name) from None
        except ValueError as exc:  # arguments the segmenter refuses
            raise RequestError(422, "InvalidParameter", str(exc)) from None
        return {
            "predictions": result.get("labels", []),
            "model": self.model_name,
            "timings": {"upload_s": round(upload.seconds, 4),
                        "segments_s": round(time.perf_counter() - started, 4)},
            "segments": result.get("segments", []),
            "windows": result.get("windows", []),
            "duration_s": result.get("duration_s"),
            "fps": result.get("fps"),
            "video": {"name": upload.name, "bytes": upload.size},  # not the temporary path
        }

    def _prepare(self, path: str) -> PreparedClip | VidsortError:
        for _, result in self.preparer.iter_prepared([path], self.classifier.spec, prefetch=0):
            if not isinstance(result, VidsortError):
                self._last_alive = time.monotonic()
            return result
        raise AssertionError("iter_prepared yields one result per input")  # pragma: no cover

    def _decode_error(self, exc: VidsortError, name: str) -> RequestError:
        # The message names the upload as the client called it, never the server's temp path.
        reason = exc.reason if isinstance(exc, VideoError) else str(exc)
        kind = type(exc).__name__
        if isinstance(exc, DecodeTimeout):
            self.metrics.worker_restarts.labels("timeout").inc()
            return RequestError(504, kind, f"{name}: {reason}")
        if isinstance(exc, DecoderCrashed):
            self.metrics.worker_restarts.labels("crash").inc()
        return RequestError(400, kind, f"{name}: {reason}")

    def _on_batch(self, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.inference.observe(seconds)

    # ------------------------------------------------------------------ status

    @property
    def model_name(self) -> str:
        """The model's source (Hub id or embedded name) when the manifest has it, else its
        directory's name."""
        return str(self.classifier.model.manifest.get("source") or self.classifier.model.path.name)

    async def workers_alive(self) -> bool:
        """Whether a decode worker answers (or decoded a file in the last few seconds)."""
        if time.monotonic() - self._last_alive < ALIVE_WINDOW_S:
            return True
        try:
            await asyncio.wait_for(asyncio.wrap_future(self.preparer.start()), PING_TIMEOUT_S)
        except Exception:  # timed out (all busy or hung) or the pool is broken
            return False
        self._last_alive = time.monotonic()
        return True

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/model`` answers."""
        model, manifest, s = self.classifier.model, self.classifier.model.manifest, self.settings
        validation = manifest.get("validation") or {}
        return {
            "model": self.model_name,
            "labels": model.labels,
            "num_labels": len(model.labels),
            "provider": self.classifier.provider,
            "precision": self.classifier.precision,
            "variants": sorted(model.variants),
            "manifest": {
                "model_type": model.model_type,
                "format_version": manifest.get("format_version"),
                "task": manifest.get("task"),
                "num_frames": model.num_frames,
                "image_size": list(model.image_size),
                "sampling": {"clip_len": model.clip_len,
                             "frame_sample_rate": model.frame_sample_rate,
                             "strategy": model.strategy},
                "problem_type": model.problem_type,
                "quantization": manifest.get("quantization"),
                "validation": {k: v for k, v in validation.items() if k in model.variants},
                "created": manifest.get("created"),
            },
            "function": self.classifier.function,
            "segments": segments_supported(),
            "limits": {"max_upload_mb": s.max_upload_mb, "max_batch": s.max_batch,
                       "max_wait_ms": s.max_wait_ms, "max_queue": s.max_queue,
                       "decode_workers": s.decode_workers, "timeout_s": s.timeout_s},
        }
