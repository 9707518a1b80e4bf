"""The Ray engine: a job as a Ray Data pipeline, on this machine or a cluster.

    file rows ──map_batches(prepare_files)──▶ pixel rows ──map_batches(Infer, actor pool)──▶
    record rows ──iter_batches──▶ this process's `RecordSink` (the same durable store and
    resume index as the local engine)

- Decoding + preprocessing are Ray **tasks** on CPU workers. Each task decodes in the worker's
  own `IsolatedPreparer` (kept per worker process), so the per-file timeout and memory cap hold
  there too and a decoder hang or crash is an error record, never a failed task or job.
- Inference runs in an **actor pool**: each actor creates its `VideoClassifier` once. With
  ``--provider cuda|tensorrt`` actors take a GPU each (``num_gpus=1``).
- Records come back to the driver, which writes them. Records are small (no pixels), so one
  writer keeps up with a cluster, and the output is durable and resumable exactly as locally.

The inputs stream in chunks of `CHUNK_FILES`: each chunk is one Ray dataset (so a million
files never sit in one list); actors are created anew per chunk, which costs a model load per
actor every `CHUNK_FILES` files. Ray is imported only here (``pip install 'vidsort[ray]'``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import chain, islice
from typing import Any

import numpy as np
from vidsort.errors import VidsortError, error_record, first_line, import_extra
from vidsort.isolation import IsolatedPreparer, IsolationSettings
from vidsort.jobs.job import JobSpec, RecordSink, StopFlag
from vidsort.jobs.records import FileKey, make_record
from vidsort.jobs.store import JobError
from vidsort.pipeline import PreparedClip, PrepareSpec, iter_prepared, prepare_clip
from vidsort.providers import PROVIDERS_BY_NAME

#: files per Ray dataset (see the module docstring)
CHUNK_FILES = 10_000
#: files a Ray decode worker takes before it is replaced (see `_dataset`)
DECODE_TASK_CALLS = 1000

_PREPARERS: dict[IsolationSettings, IsolatedPreparer] = {}  # per Ray worker process


def _preparer(settings: IsolationSettings) -> IsolatedPreparer:
    preparer = _PREPARERS.get(settings)
    if preparer is None:
        preparer = _PREPARERS[settings] = IsolatedPreparer(settings)
    return preparer


def prepare_files(batch: dict[str, np.ndarray], spec: PrepareSpec,
                  isolation: IsolationSettings | None,
                  shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Ray task: decode + preprocess the files of a batch.

    Args:
        batch: columns ``path`` (absolute), ``key`` (JSON of the `FileKey`).
        spec: the classifier's `PrepareSpec`.
        isolation: decode worker settings, or None to decode in a thread of the task.
        shape: shape of one file's pixel values (error rows get zeros of it).

    Returns:
        Columns ``key``, ``info`` (JSON: the clip's info, or ``{"error": ...}``) and
        ``pixel_values`` (float32, ``(n, *shape)``).
    """
    paths = [str(p) for p in batch["path"]]
    pixels = np.zeros((len(paths), *shape), dtype=np.float32)
    infos = []
    if isolation is None:
        prepared_iter = iter_prepared(paths, spec, prefetch=1)
    else:
        # a Ray worker runs threads of its own: fork from a fork server, not from it
        prepared_iter = _preparer(replace(isolation, start_method="forkserver")).iter_prepared(
            paths, spec, prefetch=1)
    for row, (_, prepared) in enumerate(prepared_iter):
        if isinstance(prepared, VidsortError):
            infos.append(json.dumps({"error": error_record(prepared)}))
        else:
            pixels[row] = prepared.pixel_values
            infos.append(json.dumps(prepared.info))
    return {"key": batch["key"], "info": np.array(infos, dtype=object), "pixel_values": pixels}


class Infer:
    """Ray actor: one `VideoClassifier`, created when the actor starts.

    Args:
        model_dir, classifier: as in `JobSpec`.
        top_k, function: as for `VideoClassifier.classify_many`.
    """

    def __init__(self, model_dir: str, classifier: dict[str, Any], top_k: int,
                 function: str | None):
        from vidsort.classifier import VideoClassifier

        self.clf = VideoClassifier(model_dir, **classifier, isolation=None)
        self.top_k, self.function = top_k, function

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Classify a batch of prepared rows in one model call; rows that failed to decode
        pass through as error records. Returns column ``record`` (JSON text per row)."""
        clf = self.clf
        keys = [FileKey(*json.loads(k)) for k in batch["key"]]
        infos = [json.loads(i) for i in batch["info"]]
        ok = [row for row, info in enumerate(infos) if "error" not in info]
        clips = [(keys[row].video, PreparedClip(batch["pixel_values"][row], infos[row]))
                 for row in ok]
        results = dict(zip(ok, clf.classify_prepared(clips, self.top_k, self.function),
                           strict=True))
        records = []
        for row, key in enumerate(keys):
            result = results.get(row) or {"video": key.video, **infos[row]}
            records.append(json.dumps(make_record(result, key, clf.precision, clf.provider)))
        return {"record": np.array(records, dtype=object)}


def _connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local Ray; reuse a connection this process
    already has. Returns whether this call started it (then the job shuts it down)."""
    if ray.is_initialized():
        return False
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False)
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(include_dashboard=False, **quiet)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError ... all one line
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise JobError(f"cannot start or join {where}: {first_line(exc)}") from None
    return True


def _actor_resources(ray: Any, spec: JobSpec) -> tuple[dict[str, float], int]:
    """Ray resources of one inference actor and how many actors the cluster can hold."""
    provider = spec.classifier.get("provider", "auto")
    row = PROVIDERS_BY_NAME.get(provider)
    cluster = ray.cluster_resources()
    if row is not None and row.gpu:
        gpus = int(cluster.get("GPU", 0))
        if gpus < 1:  # Ray Data would wait for one forever
            raise JobError(f"--provider {provider} with --engine ray needs GPUs in the Ray "
                           "cluster, and it has none")
        return {"num_cpus": 1, "num_gpus": 1}, gpus
    # CPU actors reserve their ``--threads`` (1 when ORT takes every core), but never a whole
    # node: an actor holding every CPU would leave none to the decode tasks, and Ray Data would
    # wait forever. (The reservation is Ray's bookkeeping; ORT runs its threads regardless.)
    node_cpus = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")),
                    default=1)
    cpus = min(float(spec.classifier.get("threads") or 1), max(node_cpus - 1, node_cpus / 2))
    return {"num_cpus": cpus}, max(1, int(cluster.get("CPU", 1) // (cpus + 1)))


def _dataset(ray: Any, spec: JobSpec, chunk: list[tuple[str, FileKey]], prepare: PrepareSpec,
             shape: tuple[int, ...]) -> Any:
    rows = [{"path": os.path.abspath(path), "key": json.dumps([key.video, key.size, key.mtime])}
            for path, key in chunk]
    resources, max_actors = _actor_resources(ray, spec)
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    # max_calls: a decode worker process (and the decode pool inside it) is replaced after that
    # many files, so what long runs of native decoders leave behind stays bounded (as the
    # isolation's recycle rule does per file). Being a task-only argument, it also keeps Ray
    # Data from fusing the decode tasks into the actors (fusion needs equal remote arguments):
    # decoding stays on its own CPU workers. A memory reservation would do that too, but can
    # leave the tasks unschedulable on a small node.
    ds = ds.map_batches(prepare_files, batch_size=1, num_cpus=1, max_calls=DECODE_TASK_CALLS,
                        fn_kwargs=dict(spec=prepare, isolation=spec.isolation, shape=shape))
    return ds.map_batches(Infer, batch_size=spec.batch_size,
                          compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max_actors),
                          fn_constructor_kwargs=dict(model_dir=os.path.abspath(spec.model_dir),
                                                     classifier=dict(spec.classifier),
                                                     top_k=spec.top_k, function=spec.function),
                          **resources)


def _prepare_spec(spec: JobSpec) -> tuple[PrepareSpec, tuple[int, ...]]:
    """The classifier's `PrepareSpec` and the shape of one file's pixel values, from a
    classifier made here once (fp32 on CPU, one thread): it also checks the model directory
    before any worker starts."""
    from vidsort.classifier import VideoClassifier

    options = {k: v for k, v in spec.classifier.items()
               if k not in ("provider", "precision", "threads")}
    clf = VideoClassifier(spec.model_dir, provider="cpu", precision="fp32", threads=1,
                          isolation=None, **options)
    probe = np.zeros((clf.spec.clip_len, 8, 8, 3), dtype=np.uint8)
    shape = prepare_clip(probe, replace(clf.spec, strategy="start")).pixel_values.shape
    return clf.spec, tuple(shape)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def run_ray(spec: JobSpec, pending: Iterable[tuple[str, FileKey]], sink: RecordSink,
            stop: StopFlag, chunk_files: int = CHUNK_FILES) -> None:
    """Classify the pending files with Ray Data, giving each record to ``sink``.

    Args:
        spec: the job (``ray_address``: ``auto``, ``ray://host:port`` or None for local).
        pending: ``(path, key)`` of the files to do, streamed.
        sink: takes the records (in the order Ray finishes them).
        stop: checked after each batch of records; once set, the rest is left for ``--resume``.
        chunk_files: files per Ray dataset.
    """
    ray = import_extra("ray", "ray")
    import_extra("ray.data", "ray")
    chunks = _chunks(pending, chunk_files)
    first = next(chunks, None)
    if first is None:  # everything is in the output already: no need to start Ray
        return
    prepare, shape = _prepare_spec(spec)
    started_here = _connect(ray, spec.ray_address)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # start/stop notes of each dataset
    ray.data.DataContext.get_current().enable_progress_bars = False  # the job shows its own
    try:
        for chunk in chain([first], chunks):
            batches = _dataset(ray, spec, chunk, prepare, shape).iter_batches(
                batch_size=None, batch_format="numpy")
            for batch in batches:
                for text in batch["record"]:
                    sink.add(json.loads(text))
                if stop.is_set():
                    return
    except ray.exceptions.RayError as exc:
        raise JobError(f"the Ray pipeline failed: {first_line(exc)}") from None
    finally:
        if started_here:
            ray.shutdown()
