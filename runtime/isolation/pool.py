"""Decoding in worker processes: a decoder that hangs, crashes or eats memory costs one file,
never the caller.

Decoders are native code: decord can loop forever in ``get_batch`` holding the GIL (no Python
timeout stops that), FFmpeg can segfault on malformed input, 4K files can blow up memory. Here
`vidsort.pipeline.prepare_clip` runs in a pebble ``ProcessPool``: a worker past the per-file
timeout is killed and replaced (`DecodeTimeout`), one that dies is replaced (`DecoderCrashed`),
and each worker's memory is capped by the kernel. Results equal `pipeline.iter_prepared`'s.

Start method ``forkserver`` by default: a fork of a caller that has threads can deadlock (a
forked worker inherited the preprocessor's thread pool without its threads and hung until we
dropped that cache); ``spawn`` pays a fresh interpreter and the decoder imports for every
replacement. The fork server imports the decode stack once and forks small workers from it,
and workers never re-run the caller's main script. It costs ~0.5 s at first use; a CLI can
instead use ``fork`` and start the pool before it loads the model (single-threaded then).

Memory cap ``RLIMIT_DATA`` (private writable memory), set in each worker to its idle size plus
``memory_mb``. The kernel enforces it even while native code holds the GIL (a watchdog thread
in the worker could not run), and unlike ``RLIMIT_AS`` it ignores reserved-but-unwritten
address space (glibc's per-thread arenas, shared libraries), which grows with core count and
would make a fixed cap fail at random on big machines. Over the cap, Python raises
``MemoryError``, FFmpeg returns ENOMEM, decord aborts: all typed errors for that file. A worker
that such a file left more than half full leaves before its next file, which then goes to a
fresh worker (`vidsort.isolation.memory`), so one oversized file costs only itself.

Test-only fault hooks (`VIDSORT_TEST_FAULT`) live in `vidsort.isolation.faults`.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import vidsort.errors
from pebble import ProcessExpired, ProcessPool
from vidsort import pipeline
from vidsort.errors import DecoderCrashed, DecodeTimeout, VideoError, VidsortError
from vidsort.isolation.faults import FAULT_ENV, inject_fault, parse_faults
from vidsort.isolation.forkserver_launch import NoMainForkServerContext
from vidsort.isolation.memory import EXIT_RECYCLE, cap_memory, full_for_its_cap
from vidsort.options import DECODE_MEMORY_MB, DECODE_TIMEOUT_S, DECODE_WORKERS
from vidsort.pipeline import PreparedClip, PrepareSpec, prepare_clip

START_METHODS = ("forkserver", "spawn", "fork")


@dataclass(frozen=True)
class IsolationSettings:
    """How decoding is isolated from the caller.

    Attributes:
        workers: decode processes (each decodes one file at a time).
        timeout_s: per-file limit in seconds from the moment a worker starts the file
            (``None``: no limit); past it the worker is killed and replaced.
        memory_mb: cap on each worker's memory growth while decoding, in MB (``None``: no cap).
        start_method: forkserver | spawn | fork (``None``: forkserver where available).
    """

    workers: int = DECODE_WORKERS
    timeout_s: float | None = DECODE_TIMEOUT_S
    memory_mb: int | None = DECODE_MEMORY_MB
    start_method: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 or None, got {self.timeout_s}")
        if self.memory_mb is not None and self.memory_mb < 64:
            raise ValueError(f"memory_mb must be >= 64 or None, got {self.memory_mb}")
        if self.start_method is not None and self.start_method not in START_METHODS:
            raise ValueError(f"unknown start_method {self.start_method!r}; "
                             f"choose one of {', '.join(START_METHODS)}")


# --------------------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {"memory_mb": None, "faults": (), "base": 0}


def _init_worker(memory_mb: int | None, faults: tuple[tuple[str, str], ...]) -> None:
    # Must never raise: pebble would log a traceback and the worker would die idle, which
    # pebble reports as a broken pool.
    _WORKER["memory_mb"], _WORKER["faults"] = memory_mb, faults
    # A forked worker inherits the caller's cached preprocessors, whose thread pools have no
    # threads after a fork: work submitted to them would wait forever.
    pipeline._PREPROCESSORS.clear()
    if not os.environ.get("PYTHONFAULTHANDLER"):
        # A fork inherits the caller's faulthandler (pytest enables one): its dump of a dying
        # worker would only be noise, the caller reports the crash as a typed error.
        faulthandler.disable()
    if memory_mb is not None:
        try:
            _WORKER["base"] = cap_memory(memory_mb)
        except (OSError, ValueError):  # platform without RLIMIT_DATA: run uncapped
            _WORKER["memory_mb"] = None


def _ping() -> int:
    return os.getpid()


def _prepare_in_worker(video: Any, spec: PrepareSpec, cwd: str | None) -> tuple:
    """Run `prepare_clip` in a worker; errors come back as plain data (see `_rebuild`).

    VideoError subclasses take ``(path, reason)`` but pickle as their one-string message, so
    they cannot cross the process boundary as exceptions; and one unpicklable exception would
    make pebble declare the whole pool broken.
    """
    if cwd is not None and cwd != _getcwd():
        os.chdir(cwd)  # relative paths mean what they meant in the caller
    if full_for_its_cap(_WORKER["memory_mb"], _WORKER["base"]):
        os._exit(EXIT_RECYCLE)
    try:
        inject_fault(video, _WORKER["faults"], _WORKER["memory_mb"])
        return ("ok", prepare_clip(video, spec))
    except VideoError as exc:
        return ("error", type(exc).__name__, exc.path, exc.reason)
    except MemoryError as exc:
        cap = _WORKER["memory_mb"]
        where = f"over the {cap} MB cap per decode worker" if cap else "no cap set"
        return ("error", "DecoderCrashed", _path(video),
                f"decoder process ran out of memory ({where}): {exc or 'MemoryError'}")
    except Exception as exc:  # a bug on one file must not end the batch
        why = f"unexpected {type(exc).__name__}: {exc}"
        return ("error", "VideoError", _path(video), str(exc) if isinstance(exc, VidsortError)
                else why)


# --------------------------------------------------------------------------- caller side


def _getcwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # cwd was deleted
        return None


def _path(video: Any) -> str | None:
    return None if isinstance(video, np.ndarray) else os.fspath(video)


def _rebuild(video: Any, kind: str, path: str | None, reason: str) -> VideoError:
    cls = getattr(vidsort.errors, kind, VideoError)
    if not (isinstance(cls, type) and issubclass(cls, VideoError)):
        cls = VideoError
    return cls(path if path is not None else _path(video), reason)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "decoder process died"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        why = {"SIGKILL": ": killed from outside, often the kernel's out-of-memory killer",
               "SIGSEGV": ": the decoder hit a memory fault on this file",
               "SIGABRT": ": the decoder aborted, e.g. a failed check or out of memory"}
        return f"decoder process died (signal {-code}, {name}{why.get(name, '')})"
    return f"decoder process exited with code {code}"


def _context(start_method: str | None) -> Any:
    available = multiprocessing.get_all_start_methods()
    method = start_method or ("forkserver" if "forkserver" in available else "spawn")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        # Workers fork from a server that has already imported numpy, the decoders and the
        # preprocessor: a replacement after a crash starts in milliseconds. (Takes effect
        # only if this process has not started its fork server yet.)
        ctx.set_forkserver_preload(["vidsort.pipeline"])
        if NoMainForkServerContext is not None:
            return NoMainForkServerContext()
    return ctx


_RECYCLED: Any = object()  # `_settle`'s answer for a worker that left before the file started


class _Pending:
    __slots__ = ("video", "future", "attempts")

    def __init__(self, video: Any, future: Future, attempts: int):
        self.video, self.future, self.attempts = video, future, attempts


class IsolatedPreparer:
    """A pool of decode workers that can serve many batches (a server keeps one open).

    Args:
        settings: workers, timeout, memory cap, start method.

    Use as a context manager, or call `close` when done.
    """

    def __init__(self, settings: IsolationSettings | None = None):
        self.settings = settings or IsolationSettings()
        self._faults = parse_faults(os.environ.get(FAULT_ENV))
        self._ctx = _context(self.settings.start_method)
        self._pool: ProcessPool | None = None
        self._threads: ThreadPoolExecutor | None = None

    def __enter__(self) -> IsolatedPreparer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> Future:
        """Start the workers in the background now (e.g. while a model loads).

        Returns:
            A future that resolves once a worker has answered. Otherwise the first file
            submitted starts them.
        """
        return self._ensure_pool().schedule(_ping)

    def _ensure_pool(self) -> ProcessPool:
        if self._pool is None or not self._pool.active:
            if self._pool is not None:
                self._pool.stop()
                self._pool.join()
            self._pool = ProcessPool(max_workers=self.settings.workers,
                                     initializer=_init_worker,
                                     initargs=(self.settings.memory_mb, self._faults),
                                     context=self._ctx)
        return self._pool

    def close(self) -> None:
        """Stop the workers (any file still being decoded is abandoned)."""
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
            self._pool = None
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None

    def _submit(self, video: Any, spec: PrepareSpec) -> Future:
        if isinstance(video, np.ndarray):
            # Arrays need no decoder, so nothing to isolate; a thread keeps them pipelined
            # without copying frames to another process.
            if self._threads is None:
                self._threads = ThreadPoolExecutor(1, thread_name_prefix="vidsort-arrays")
            return self._threads.submit(prepare_clip, video, spec)
        args = (video, spec, _getcwd())
        try:
            return self._ensure_pool().schedule(_prepare_in_worker, args=args,
                                                timeout=self.settings.timeout_s)
        except RuntimeError:  # the pool broke between the check and the call
            self._pool = None
            return self._ensure_pool().schedule(_prepare_in_worker, args=args,
                                                timeout=self.settings.timeout_s)

    def iter_prepared(
        self,
        videos: Iterable[Any],
        spec: PrepareSpec,
        prefetch: int = 2,
    ) -> Iterator[tuple[Any, PreparedClip | VidsortError]]:
        """Prepare videos in the workers, yielding ``(video, clip or error)`` in input order.

        Args:
            videos: paths or frames arrays (arrays are prepared in a thread of this process).
            spec: how to prepare them.
            prefetch: videos submitted ahead of the consumer (at least ``workers`` are).

        Returns:
            An iterator like `vidsort.pipeline.iter_prepared`'s; a file that hangs or kills its
            worker yields `DecodeTimeout` or `DecoderCrashed` and the rest go on.
        """
        window = max(max(0, prefetch) + 1, self.settings.workers)
        pending: deque[_Pending] = deque()
        try:
            for video in videos:
                pending.append(_Pending(video, self._submit(video, spec), 0))
                if len(pending) >= window:
                    yield self._resolve(pending, spec)
            while pending:
                yield self._resolve(pending, spec)
        finally:
            for item in pending:  # consumer stopped early: do not leave work running
                item.future.cancel()

    def _resolve(self, pending: deque[_Pending],
                 spec: PrepareSpec) -> tuple[Any, PreparedClip | VidsortError]:
        head = pending[0]
        while True:
            try:
                result = self._settle(head)
            except BrokenProcessPool:
                # pebble gives up on the whole pool when a worker dies while no task runs on
                # it (not this file's fault): start a fresh pool and resubmit everything
                # pending, once per file.
                if head.attempts < 1:
                    self._pool = None
                    for item in pending:
                        if not isinstance(item.video, np.ndarray):
                            item.future.cancel()
                            item.future = self._submit(item.video, spec)
                            item.attempts += 1
                    continue
                result = DecoderCrashed(_path(head.video),
                                        "decoder pool broke twice while this file was queued")
            if result is _RECYCLED and head.attempts < 2:
                # the worker left before starting this file (see `memory.full_for_its_cap`): not
                # this file's doing, give it a fresh worker
                head.future = self._submit(head.video, spec)
                head.attempts += 1
                continue
            if result is _RECYCLED:
                result = DecoderCrashed(_path(head.video), "decoder workers kept leaving "
                                        "before this file started (memory cap too small?)")
            pending.popleft()
            return head.video, result

    def _settle(self, item: _Pending) -> PreparedClip | VidsortError:
        name = _path(item.video)
        try:
            outcome = item.future.result()
        except FutureTimeout:
            return DecodeTimeout(name, f"decoding did not finish after {self.settings.timeout_s:g}"
                                       " s (the per-file timeout); the worker was killed and "
                                       "replaced")
        except ProcessExpired as exc:
            if exc.exitcode == EXIT_RECYCLE:
                return _RECYCLED
            return DecoderCrashed(name, f"{_describe_exit(exc.exitcode)}; the worker was replaced")
        except VidsortError as exc:  # from the in-process array path
            return exc
        except BrokenProcessPool:
            raise
        except Exception as exc:  # cancelled, or a pickling problem with one input
            return VideoError(name, f"unexpected {type(exc).__name__}: {exc}")
        if isinstance(outcome, PreparedClip):  # array path
            return outcome
        return outcome[1] if outcome[0] == "ok" else _rebuild(item.video, *outcome[1:])


def iter_prepared_isolated(
    videos: Iterable[Any],
    spec: PrepareSpec,
    prefetch: int = 2,
    settings: IsolationSettings | None = None,
) -> Iterator[tuple[Any, PreparedClip | VidsortError]]:
    """Like `vidsort.pipeline.iter_prepared`, with decoding in killable worker processes.

    Args:
        videos: paths or uint8 frames arrays (T, H, W, 3); arrays stay in this process.
        spec: sampling, decoding and preprocessing settings.
        prefetch: videos prepared ahead of the consumer (bounds memory).
        settings: workers, per-file timeout, memory cap (default `IsolationSettings()`).

    Returns:
        An iterator of ``(video, PreparedClip or VidsortError)`` in input order. A file that
        hangs yields `DecodeTimeout`, one that kills its worker `DecoderCrashed`; the batch
        goes on with a fresh worker.
    """
    with IsolatedPreparer(settings) as preparer:
        yield from preparer.iter_prepared(videos, spec, prefetch)
