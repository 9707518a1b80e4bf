"""`stream_in_worker`: a generator in a killable process; hangs, crashes and errors are typed.

The producers are top-level functions of this module: the fork server imports it by name.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from vidsort.errors import DecoderCrashed, DecodeTimeout, VideoDecodeError
from vidsort.isolation import IsolationSettings
from vidsort.isolation.stream import stream_in_worker

FAST = IsolationSettings(timeout_s=2.0, memory_mb=None)


def counting(n: int, then: str = "end"):
    for i in range(n):
        yield np.full(1000, i, dtype=np.float32)
    if then == "hang":
        time.sleep(3600)
    elif then == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif then == "error":
        raise VideoDecodeError("clip.mp4", "damaged after frame 2")
    elif then == "bug":
        raise KeyError("oops")


def endless_pids():
    while True:
        yield os.getpid()


def hog():
    yield 1
    blocks = [np.ones(64 * 2**20, np.uint8) for _ in range(64)]  # 4 GiB, over a 64 MB cap
    yield len(blocks)


def test_items_arrive_in_order():
    got = list(stream_in_worker(counting, (5,), FAST, "clip.mp4"))
    assert [int(a[0]) for a in got] == [0, 1, 2, 3, 4]


def test_producer_errors_arrive_typed():
    got = []
    with pytest.raises(VideoDecodeError, match="clip.mp4: damaged after frame 2"):
        for item in stream_in_worker(counting, (3, "error"), FAST, "clip.mp4"):
            got.append(item)
    assert len(got) == 3
    with pytest.raises(Exception, match="unexpected KeyError") as info:
        list(stream_in_worker(counting, (1, "bug"), FAST, "clip.mp4"))
    assert "clip.mp4" in str(info.value)


def test_a_hang_mid_stream_is_a_timeout_after_the_items_before_it():
    got = []
    started = time.perf_counter()
    with pytest.raises(DecodeTimeout, match="clip.mp4: no progress for 2 s"):
        for item in stream_in_worker(counting, (2, "hang"), FAST, "clip.mp4"):
            got.append(item)
    assert len(got) == 2
    assert time.perf_counter() - started < 10


def test_a_crash_is_typed_with_the_signal():
    with pytest.raises(DecoderCrashed, match="SIGSEGV"):
        list(stream_in_worker(counting, (2, "segv"), FAST, "clip.mp4"))


def test_the_memory_cap_holds():
    with pytest.raises(DecoderCrashed, match="out of memory"):
        list(stream_in_worker(hog, (), IsolationSettings(timeout_s=30, memory_mb=64), "big.mp4"))


def test_a_slow_consumer_is_not_a_timeout():
    # the clock runs only while the caller waits on the worker
    got = []
    settings = IsolationSettings(timeout_s=1.0, memory_mb=None)
    for item in stream_in_worker(counting, (2,), settings, "clip.mp4", ahead=1):
        got.append(item)
        time.sleep(1.5)
    assert len(got) == 2


def test_closing_early_stops_the_worker():
    stream = stream_in_worker(endless_pids, (), FAST, "clip.mp4", ahead=2)
    pid = next(stream)
    stream.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
