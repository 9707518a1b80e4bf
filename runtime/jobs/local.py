"""The local engine: one `VideoClassifier` in this process, decoding in its worker processes
(per-file timeout and memory cap), run ahead of inference so decoding overlaps the model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace

from vidsort.errors import error_record
from vidsort.jobs.job import JobSpec, RecordSink, StopFlag
from vidsort.jobs.records import FileKey, make_record


def run_local(spec: JobSpec, pending: Iterable[tuple[str, FileKey]], sink: RecordSink,
              stop: StopFlag) -> None:
    """Classify the pending files in input order, giving each record to ``sink``.

    Args:
        spec: the job (model, classifier options, isolation, top-k, batch size).
        pending: ``(path, key)`` of the files to do, streamed.
        sink: takes the records.
        stop: checked after each record; once set, the rest is left for ``--resume``.
    """
    from vidsort.classifier import VideoClassifier
    from vidsort.isolation import IsolatedPreparer

    if spec.segments is not None:
        return _run_segments(spec, pending, sink, stop)
    preparer = None
    if spec.isolation is not None:
        # Start the decode worker before the model loads: a fork of a small process without
        # inference threads, overlapping the load (as `vidsort classify` does).
        preparer = IsolatedPreparer(spec.isolation)
        preparer.start()
    try:
        clf = VideoClassifier(spec.model_dir, **spec.classifier, isolation=preparer)
        keys: deque[FileKey] = deque()

        def paths() -> Iterator[str]:
            for path, key in pending:
                keys.append(key)  # results come back in input order: keys pair up FIFO
                yield path

        results = clf.classify_many(paths(), top_k=spec.top_k, function=spec.function,
                                    batch_size=spec.batch_size, isolate=preparer is not None)
        try:
            for result in results:
                sink.add(make_record(result, keys.popleft(), clf.precision, clf.provider))
                if stop.is_set():
                    break
        finally:
            results.close()  # cancels the files decoded ahead
    finally:
        if preparer is not None:
            preparer.close()


def _run_segments(spec: JobSpec, pending: Iterable[tuple[str, FileKey]], sink: RecordSink,
                  stop: StopFlag) -> None:
    """``--segments``: a timeline per file (`vidsort.segments.segment_video`), one file at a
    time, each decoded by a worker that streams it while the model runs."""
    from vidsort.classifier import VideoClassifier
    from vidsort.segments.run import segment_video

    # a video's stream worker forks from a fork server: never from this process once it runs
    # inference threads
    isolation = None if spec.isolation is None else replace(spec.isolation, start_method=None)
    clf = VideoClassifier(spec.model_dir, **spec.classifier, isolation=isolation)
    for path, key in pending:
        try:
            result = segment_video(clf, path, top_k=spec.top_k, function=spec.function,
                                   **spec.segments).result
        except Exception as exc:  # VideoError, or a bug on one file: its record, not the job's end
            result = {"video": key.video, "error": error_record(exc)}
        sink.add(make_record(result, key, clf.precision, clf.provider))
        if stop.is_set():
            break
