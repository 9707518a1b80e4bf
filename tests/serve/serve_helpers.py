"""Helpers of the server tests: an in-process service, a live `vidsort serve`, leftovers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

#: labels rendered for the tests (tiny-motion gets these right with high scores)
LABELS = ("moving left", "growing", "rotating clockwise")


def uploads_left(directory: Path) -> list[Path]:
    """Spooled uploads still in ``directory`` (or below)."""
    from vidsort.serve.uploads import TMP_PREFIX

    return sorted(directory.rglob(f"{TMP_PREFIX}*"))


@contextlib.contextmanager
def make_service(model_dir: Path, tmp_dir: Path, faults: str | None = None, **settings):
    """An `InferenceService` on ``model_dir`` spooling into ``tmp_dir``; ``faults`` sets
    ``VIDSORT_TEST_FAULT`` while its decode workers start."""
    from vidsort.isolation import FAULT_ENV
    from vidsort.serve.service import InferenceService
    from vidsort.serve.settings import ServeSettings

    old = os.environ.get(FAULT_ENV)
    if faults:
        os.environ[FAULT_ENV] = faults
    try:
        service = InferenceService.load(ServeSettings(str(model_dir), tmp_dir=str(tmp_dir),
                                                      **settings))
    finally:
        if faults:
            if old is None:
                os.environ.pop(FAULT_ENV, None)
            else:
                os.environ[FAULT_ENV] = old
    try:
        yield service
    finally:
        service.preparer.close()


class LiveServer:
    """A `vidsort serve` subprocess on a free loopback port."""

    def __init__(self, proc: subprocess.Popen, url: str, tmp_dir: Path):
        self.proc, self.url, self.tmp_dir = proc, url, tmp_dir
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(5)


def _default_scheduling() -> None:
    # A test process that encoded an AV1 clip as root runs under SCHED_FIFO 99 (SVT-AV1 sets
    # it); the server would inherit that, and a busy-waiting thread could starve the machine.
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


@contextlib.contextmanager
def live_server(model_dir: Path, tmp_dir: Path, *args: str) -> Iterator[LiveServer]:
    """Start ``vidsort serve model_dir --port 0 *args`` with TMPDIR=tmp_dir; stop it after."""
    env = {**os.environ, "TMPDIR": str(tmp_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vidsort", "serve", str(model_dir),
                             "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=_default_scheduling)
    lines = []
    url = None
    for line in proc.stdout:  # the server prints its URL once it listens
        lines.append(line)
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        proc.kill()
        raise AssertionError("vidsort serve did not start:\n" + "".join(lines))
    server = LiveServer(proc, url, tmp_dir)
    server.output.extend(lines)
    try:
        yield server
    finally:
        server.stop()
