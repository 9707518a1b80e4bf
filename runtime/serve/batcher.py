"""Micro-batching: decoded clips from concurrent requests share one inference call.

A clip waits at most ``max_wait_s`` (from when it was queued) for others to fill a batch of up to
``max_batch`` videos. Inference runs in one dedicated thread, off the event loop; while it runs,
the next batch gathers, so a busy server fills its batches without waiting at all. Each request
gets back its own rows of the logits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np


@dataclass
class BatchResult:
    """One video's share of a batch."""

    logits: np.ndarray  # (num_clips, num_labels)
    batch_size: int  # videos in the inference call
    wait_s: float  # from queued to the batch's start
    inference_s: float  # the whole batch's inference time


@dataclass
class _Item:
    pixel_values: np.ndarray  # (num_clips, T, 3, H, W)
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Gathers clips into batches and runs ``infer`` on them in a worker thread.

    Args:
        infer: preprocessed clips (N, T, 3, H, W) → logits (N, num_labels).
        max_batch: videos per call at most.
        max_wait_s: how long the first clip of a batch waits for more.
        on_batch: called on the event loop after each batch with (batch size, seconds).
    """

    def __init__(self, infer: Callable[[np.ndarray], np.ndarray], max_batch: int,
                 max_wait_s: float, on_batch: Callable[[int, float], None] | None = None):
        self.infer, self.max_batch, self.max_wait_s = infer, max_batch, max_wait_s
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="vidsort-infer")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start gathering (call from the event loop that will submit)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    @property
    def waiting(self) -> int:
        """Clips queued for a batch."""
        return self._queue.qsize()

    async def submit(self, pixel_values: np.ndarray) -> BatchResult:
        """Queue one video's clips and wait for its logits.

        Args:
            pixel_values: float32 (num_clips, T, 3, H, W).

        Returns:
            Its `BatchResult`; raises what inference raised for its batch.
        """
        item = _Item(pixel_values, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(item)
        return await item.future

    async def close(self) -> None:
        """Stop after the batch in progress; clips still queued get a RuntimeError."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(RuntimeError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    async def _gather(self) -> list[_Item]:
        first = await self._queue.get()
        batch = [first]
        deadline = first.queued + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                if remaining <= 0:
                    batch.append(self._queue.get_nowait())
                else:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
        # a request that was cancelled while queued (client gone, shutdown) needs no inference
        return [item for item in batch if not item.future.done()]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:
                continue
            started = time.perf_counter()
            inputs = np.concatenate([item.pixel_values for item in batch], axis=0)
            try:
                logits = await loop.run_in_executor(self._executor, self.infer, inputs)
            except asyncio.CancelledError:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(RuntimeError("the server is shutting down"))
                raise
            except Exception as exc:  # one failed call fails its own batch, not the server
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            seconds = time.perf_counter() - started
            if self.on_batch is not None:
                self.on_batch(len(batch), seconds)
            offset = 0
            for item in batch:
                n = item.pixel_values.shape[0]
                if not item.future.done():
                    item.future.set_result(BatchResult(logits[offset:offset + n], len(batch),
                                                       started - item.queued, seconds))
                offset += n
