"""A job: inputs → records in an output that survives SIGKILL and resumes.

`run_job` opens the output (`vidsort.jobs.store`), reads which files it already holds, streams
the inputs past that index and hands the rest to an engine (`vidsort.jobs.local` or
`vidsort.jobs.ray_engine`). Engines give each record to a `RecordSink`, which writes them in
batches and keeps the counts. Ctrl-C sets a flag: the engine stops taking records after the one
in hand, the sink writes what it holds, and the job ends as interrupted (rerun with
``--resume`` to finish); a second Ctrl-C stops at once.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vidsort.errors import import_extra
from vidsort.isolation import IsolationSettings
from vidsort.jobs.progress import JobProgress, wants_progress
from vidsort.jobs.records import FileKey, is_error, stat_key
from vidsort.jobs.sources import iter_job_inputs
from vidsort.jobs.store import DoneIndex, JobError, Store, open_store
from vidsort.options import ENGINES


@dataclass(frozen=True)
class JobSpec:
    """What a job does; picklable (the Ray engine ships it to its workers).

    Attributes:
        model_dir: the exported model directory.
        inputs: files, directories and ``@list.txt`` arguments.
        out: ``.jsonl``, ``.parquet`` or a directory for Parquet part files.
        recursive: expand directories.
        resume: continue the job ``out`` holds (skip the files it has).
        engine: ``local`` or ``ray``.
        ray_address: ``auto``, ``ray://host:port`` or None for a local Ray instance.
        classifier: `VideoClassifier` keyword arguments other than ``isolation``.
        isolation: decode worker settings (None: decode in threads of the same process).
        top_k, function, batch_size: as for `VideoClassifier.classify_many`.
        segments: for ``--segments``, `vidsort.segments.segment_video` options (``stride_s``,
            ``min_score``, ``batch_size``): each record is then a timeline; None: one set of
            labels per file.
        progress: show a progress bar (None: when stderr is a terminal).
        flush_every: records per write (None: the store's ``batch_records``).
    """

    model_dir: str
    inputs: tuple[str, ...]
    out: str
    recursive: bool = False
    resume: bool = False
    engine: str = "local"
    ray_address: str | None = None
    classifier: Mapping[str, Any] = field(default_factory=dict)
    isolation: IsolationSettings | None = field(default_factory=IsolationSettings)
    top_k: int = 5
    function: str | None = None
    batch_size: int = 1
    segments: Mapping[str, Any] | None = None
    progress: bool | None = None
    flush_every: int | None = None


@dataclass
class JobSummary:
    """What a job did. ``done`` counts records written now (``failed`` of them errors);
    ``skipped`` inputs were in the output already (``skipped_failed`` of them as errors)."""

    out: str
    done: int = 0
    failed: int = 0
    skipped: int = 0
    skipped_failed: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False

    def line(self) -> str:
        """The summary line printed at the end."""
        earlier = f" ({self.skipped_failed} failed earlier)" if self.skipped_failed else ""
        text = (f"done {self.done} ({self.failed} failed), skipped {self.skipped}{earlier}, "
                f"elapsed {self.elapsed_s:.1f} s, output {self.out}")
        if self.interrupted:
            text += "; interrupted: rerun with --resume to finish"
        return text

    @property
    def any_failed(self) -> bool:
        """Whether some input of the job has an error record (now or from an earlier run)."""
        return bool(self.failed or self.skipped_failed)


class RecordSink:
    """Collects an engine's records and writes them to the store in batches."""

    def __init__(self, store: Store, summary: JobSummary, progress: JobProgress,
                 flush_every: int | None = None):
        self.store, self.summary, self.progress = store, summary, progress
        self.batch_records = flush_every or store.batch_records
        self._batch: list[dict[str, Any]] = []
        self._first_at = 0.0

    def add(self, record: dict[str, Any]) -> None:
        """Take one record; writes the batch when it is full or old enough."""
        if not self._batch:
            self._first_at = time.monotonic()
        self._batch.append(record)
        failed = is_error(record)
        self.summary.failed += failed
        self.progress.update(1, self.summary.failed, self.summary.skipped)
        if (len(self._batch) >= self.batch_records
                or time.monotonic() - self._first_at >= self.store.batch_seconds):
            self.flush()

    def skip(self, failed_earlier: bool) -> None:
        """Count an input the output already holds."""
        self.summary.skipped += 1
        self.summary.skipped_failed += failed_earlier
        self.progress.update(1, self.summary.failed, self.summary.skipped)

    def flush(self) -> None:
        """Write the records held (durable when this returns)."""
        if self._batch:
            self.store.write(self._batch)
            self.summary.done += len(self._batch)
            self._batch = []


def pending_files(spec: JobSpec, done: DoneIndex,
                  sink: RecordSink) -> Iterator[tuple[str, FileKey]]:
    """The inputs the output does not hold yet, with their keys, streamed.

    An input given twice (a file inside a directory also given, a repeated list line) is
    taken once, so the output holds one record per file.
    """
    seen: set[bytes] = set()
    for path in iter_job_inputs(spec.inputs, spec.recursive):
        key = stat_key(path)
        digest = key.digest()
        if digest in done or digest in seen:
            sink.skip(done.failed(digest))
            continue
        seen.add(digest)
        yield path, key


class StopFlag:
    """Set by the first Ctrl-C while a job runs; the second raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: Any = None

    def is_set(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum: int, frame: Any) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt
        self._event.set()

    def __enter__(self) -> StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C keeps its default meaning
            self._previous = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_job(spec: JobSpec) -> JobSummary:
    """Run a job to the end, or until Ctrl-C.

    Args:
        spec: what to classify, with which model, into which output.

    Returns:
        The `JobSummary`. Raises `JobError` when the output is refused (exists without
        ``resume``, locked, not a job's output) and the errors of model loading.
    """
    if spec.engine not in ENGINES:
        raise JobError(f"unknown engine {spec.engine!r}; choose one of {', '.join(ENGINES)}")
    if spec.segments is not None and spec.engine != "local":
        raise JobError("--segments runs on the local engine only (for now)")
    if spec.engine == "ray":
        import_extra("ray.data", "ray")  # missing: say so before the output is touched
    started = time.perf_counter()
    store = open_store(spec.out, spec.resume)
    summary = JobSummary(out=spec.out)
    try:
        done = store.done() if spec.resume else DoneIndex()
        show = wants_progress() if spec.progress is None else spec.progress
        with JobProgress(show, spec.inputs, spec.recursive) as progress, StopFlag() as stop:
            sink = RecordSink(store, summary, progress, spec.flush_every)
            try:
                if spec.engine == "ray":
                    from vidsort.jobs.ray_engine import run_ray as engine
                else:
                    from vidsort.jobs.local import run_local as engine
                engine(spec, pending_files(spec, done, sink), sink, stop)
            finally:
                sink.flush()  # what is done stays done, whatever ended the run
            summary.interrupted = stop.is_set()
    except BaseException:
        if summary.done:
            store.close()
        else:  # e.g. the model did not load: leave no empty output behind
            store.discard()
        raise
    store.close()
    summary.elapsed_s = time.perf_counter() - started
    return summary
