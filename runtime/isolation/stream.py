"""A generator run in a killable worker process, its items streamed back as they come.

`pool.IsolatedPreparer` gives one result per file; a long video read window by window
(`vidsort.segments`) instead produces a stream of preprocessed frames for minutes. Here the
producer (a picklable generator function) runs in a fresh worker process per call and sends each
item through a pipe; a reader thread in the caller keeps up to ``ahead`` items queued, so the
producer runs ahead of the consumer but never further (bounded memory: the pipe blocks it).

The same protections as the pool, adapted to a stream:

- timeout: ``timeout_s`` is the longest the worker may take to deliver its *next* item while the
  caller waits for it (a progress timeout: a 2-hour video is fine as long as frames keep
  coming; time the caller spends on the model does not count). Past it the worker is killed:
  `DecodeTimeout`.
- a worker that dies (segfault, abort, the kernel's OOM killer): `DecoderCrashed` with the
  signal; memory capped with ``RLIMIT_DATA`` (`memory.cap_memory`), over it a typed error.
- the producer's own `VideoError` arrives with its type, path and reason.
"""

from __future__ import annotations

import faulthandler
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from vidsort.errors import DecoderCrashed, DecodeTimeout, VideoError, VidsortError
from vidsort.isolation.faults import FAULT_ENV, inject_fault, parse_faults
from vidsort.isolation.memory import cap_memory
from vidsort.isolation.pool import IsolationSettings, _context, _describe_exit, _getcwd, _rebuild

# How long the caller waits for a killed worker to be reaped, in seconds.
_JOIN_S = 5.0


def _worker_main(conn: Any, target: Callable[..., Iterator[Any]], args: tuple, name: str | None,
                 memory_mb: int | None, faults: tuple, cwd: str | None) -> None:
    """Worker side: run ``target(*args)`` and send ``("item", x)``... then ``("end",)`` or an
    error as plain data (VideoError subclasses do not pickle with their arguments)."""
    if not os.environ.get("PYTHONFAULTHANDLER"):
        faulthandler.disable()  # the caller reports a crash as a typed error; a dump is noise
    if cwd is not None and cwd != _getcwd():
        os.chdir(cwd)  # relative paths mean what they meant in the caller
    try:
        if memory_mb is not None:
            try:
                cap_memory(memory_mb)
            except (OSError, ValueError):  # platform without RLIMIT_DATA: run uncapped
                memory_mb = None
        if name is not None:
            inject_fault(name, faults, memory_mb)
        for item in target(*args):
            conn.send(("item", item))
        conn.send(("end",))
    except VideoError as exc:
        conn.send(("error", type(exc).__name__, exc.path, exc.reason))
    except MemoryError as exc:
        where = f"over the {memory_mb} MB cap per decode worker" if memory_mb else "no cap set"
        conn.send(("error", "DecoderCrashed", name,
                   f"decoder process ran out of memory ({where}): {exc or 'MemoryError'}"))
    except (BrokenPipeError, EOFError):
        pass  # the caller stopped listening
    except Exception as exc:  # a bug on one file must not reach the caller as a traceback
        reason = str(exc) if isinstance(exc, VidsortError) else \
            f"unexpected {type(exc).__name__}: {exc}"
        conn.send(("error", "VideoError", name, reason))
    finally:
        conn.close()


def stream_in_worker(target: Callable[..., Iterator[Any]], args: tuple,
                     settings: IsolationSettings | None = None, name: str | None = None,
                     ahead: int = 4) -> Iterator[Any]:
    """Run the generator function ``target(*args)`` in a worker process; yield its items.

    Args:
        target: a top-level generator function (picklable, as are ``args`` and its items).
        args: its arguments.
        settings: timeout (per item, see the module docstring), memory cap, start method;
            ``workers`` does not apply (one worker per call).
        name: the file this is about, for error messages and test fault injection.
        ahead: items the worker may deliver before the caller takes them.

    Returns:
        An iterator over the items. Raises `DecodeTimeout`, `DecoderCrashed` or the producer's
        `VideoError` (typed, naming ``name``); closing it early kills the worker.
    """
    settings = settings or IsolationSettings()
    ctx = _context(settings.start_method)
    parent, child = ctx.Pipe(duplex=False)
    faults = parse_faults(os.environ.get(FAULT_ENV))
    process = ctx.Process(target=_worker_main, daemon=True,
                          args=(child, target, args, name, settings.memory_mb, faults, _getcwd()))
    try:
        process.start()
    except OSError as exc:  # out of processes or memory: this file's error, not the caller's end
        parent.close()
        raise DecoderCrashed(name, f"could not start a decode worker: {exc}") from None
    finally:
        child.close()  # the worker holds the only write end: its death is our EOF
    items: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()
    reader = threading.Thread(target=_read, args=(parent, items, stop, settings.timeout_s),
                              name="vidsort-stream", daemon=True)
    reader.start()
    try:
        while True:
            message = items.get()
            kind = message[0]
            if kind == "item":
                yield message[1]
            elif kind == "end":
                return
            elif kind == "error":
                raise _rebuild(name or "<stream>", *message[1:])
            elif kind == "timeout":
                _kill(process)
                raise DecodeTimeout(name, f"no progress for {settings.timeout_s:g} s (the "
                                          "decode timeout); the worker was killed")
            else:  # "eof": the worker died before saying it was done
                process.join(_JOIN_S)
                raise DecoderCrashed(name, _describe_exit(process.exitcode))
    finally:
        stop.set()
        _kill(process)
        _drain(items)
        reader.join(_JOIN_S)
        parent.close()


def _read(conn: Any, items: queue.Queue, stop: threading.Event, timeout_s: float | None) -> None:
    """Reader thread: move messages from the pipe to ``items``. The timeout clock runs only
    while there is room in ``items``, i.e. while the caller is waiting on the worker."""
    while not stop.is_set():
        try:
            if not conn.poll(timeout_s):
                put_unless_stopped(items, ("timeout",), stop)
                return
            message = conn.recv()
        except (EOFError, OSError):
            put_unless_stopped(items, ("eof",), stop)
            return
        if not put_unless_stopped(items, message, stop) or message[0] != "item":
            return


def put_unless_stopped(items: queue.Queue, message: Any, stop: threading.Event) -> bool:
    """Put ``message`` into the bounded ``items``, waiting for room until ``stop`` is set.

    Returns:
        Whether it was put (False: stopped first, the consumer is gone).
    """
    while not stop.is_set():
        try:
            items.put(message, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _drain(items: queue.Queue) -> None:
    while True:
        try:
            items.get_nowait()
        except queue.Empty:
            return


def _kill(process: Any) -> None:
    if process.is_alive():
        process.kill()
    process.join(_JOIN_S)
