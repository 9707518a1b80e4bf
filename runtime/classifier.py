"""`VideoClassifier`: a model directory + ONNX Runtime session that turns videos into labels."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from vidsort.decode import DecodeLimits
from vidsort.errors import VidsortError, error_record
from vidsort.iobinding import runner_for
from vidsort.isolation import IsolatedPreparer, IsolationSettings
from vidsort.modeldir import ModelDir
from vidsort.options import (
    BACKENDS,
    DEFAULT_BACKEND,
    FUNCTIONS,
    SEGMENT_BATCH_SIZE,
    STRATEGIES,
)
from vidsort.pipeline import PreparedClip, PrepareSpec, iter_prepared, prepare_clip
from vidsort.postprocess import default_function, top_k_predictions
from vidsort.session import (
    SessionSettings,
    create_session,
    input_dtype,
    resolve_precision,
    session_provider,
)

Video = str | os.PathLike | np.ndarray


class VideoClassifier:
    """Classify videos with an exported model directory, torch-free.

    Args:
        model_dir: a directory written by ``vidsort export``.
        provider: auto | cpu | cuda | tensorrt.
        precision: auto | fp32 | int8 | fp16 (auto: int8 on CPU, fp16 on GPU, when present).
        backend: decord | pyav (decord falls back to PyAV on files it cannot read).
        threads: ONNX Runtime intra-op threads (0 = all cores).
        decode_threads: decoder threads (0 = the decoder's default).
        strategy, frame_sample_rate, num_clips, seed: frame sampling (defaults from the manifest).
        limits: resource limits for decoding (`vidsort.decode.DecodeLimits`).
        resize_to: opt-in decoder-side downscale ``(width, height)``; trades parity for speed.
        session_settings: full ORT session knobs (overrides ``threads``).
        isolation: how `classify_many` isolates decoding: `IsolationSettings` (default: worker
            processes with a per-file timeout and memory cap, so a decoder hang or crash costs
            one file), an `IsolatedPreparer` you keep open (servers), or None (in-process
            threads). Single calls (``clf(video)``) decode in-process.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        provider: str = "auto",
        precision: str = "auto",
        backend: str = DEFAULT_BACKEND,
        threads: int = 0,
        decode_threads: int = 0,
        strategy: str | None = None,
        frame_sample_rate: int | None = None,
        num_clips: int = 1,
        seed: int | None = None,
        limits: DecodeLimits | None = None,
        resize_to: tuple[int, int] | None = None,
        session_settings: SessionSettings | None = None,
        isolation: IsolationSettings | IsolatedPreparer | None | str = "default",
    ):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if strategy is not None and strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; "
                             f"choose one of {', '.join(STRATEGIES)}")
        started = time.perf_counter()
        self.model = ModelDir.load(model_dir)
        self.precision = resolve_precision(precision, provider, self.model.variants)
        settings = session_settings or SessionSettings(threads=threads)
        clip = (self.model.num_frames, 3, *self.model.image_size)
        self.session = create_session(self.model.model_file(self.precision), provider, settings,
                                      input_spec=(self.model.input_name, clip))
        self.provider = session_provider(self.session)
        self._dtype = input_dtype(self.session)
        # on GPUs an IO binding: one host -> device copy per call, from pinned memory
        self._runner = runner_for(self.session, self.model.input_name, self.model.output_name,
                                  self.provider, settings)
        self.spec = PrepareSpec(
            preprocessor_config=self.model.preprocess,  # parsed once, by ModelDir
            clip_len=self.model.clip_len,
            frame_sample_rate=frame_sample_rate or self.model.frame_sample_rate,
            strategy=strategy or self.model.strategy,
            num_clips=num_clips,
            seed=seed,
            backend=backend,
            decode_threads=decode_threads,
            limits=limits or DecodeLimits(),
            resize_to=resize_to,
        )
        self.function = default_function(self.model.problem_type)
        if isolation == "default":
            isolation = IsolationSettings()
        self.isolation = isolation
        self._preparer: IsolatedPreparer | None = (
            isolation if isinstance(isolation, IsolatedPreparer) else None)
        self._owns_preparer = False
        self.load_s = time.perf_counter() - started

    def close(self) -> None:
        """Stop the decode workers this classifier started (a later batch starts new ones)."""
        if self._owns_preparer and self._preparer is not None:
            self._preparer.close()
            self._preparer = None

    def __enter__(self) -> VideoClassifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _iter_prepared(self, videos: Iterable[Video], spec: PrepareSpec, prefetch: int,
                       isolate: bool | None):
        if isolate is False or (isolate is None and self.isolation is None):
            return iter_prepared(videos, spec, prefetch=prefetch)
        if self._preparer is None:
            settings = self.isolation if isinstance(self.isolation, IsolationSettings) else None
            self._preparer = IsolatedPreparer(settings)
            self._owns_preparer = True
        return self._preparer.iter_prepared(videos, spec, prefetch=prefetch)

    @property
    def labels(self) -> list[str]:
        """Label names in logit order."""
        return self.model.labels

    def predict_logits(self, pixel_values: np.ndarray) -> np.ndarray:
        """Run the model on preprocessed input (N, T, 3, H, W); returns logits (N, num_labels)."""
        return self._runner(pixel_values)

    def _spec(self, strategy: str | None, num_clips: int | None) -> PrepareSpec:
        if strategy is None and num_clips is None:
            return self.spec
        from dataclasses import replace

        return replace(self.spec, strategy=strategy or self.spec.strategy,
                       num_clips=num_clips or self.spec.num_clips)

    def __call__(self, video: Video, top_k: int = 5, function: str | None = None,
                 strategy: str | None = None, num_clips: int | None = None) -> list[dict]:
        """Classify one video.

        Args:
            video: a file path, or uint8 frames (T, H, W, 3) RGB.
            top_k: how many labels to return.
            function: softmax | sigmoid | none (default: the model's, usually softmax).
            strategy, num_clips: override the sampling for this call.

        Returns:
            ``[{"label", "score"}, ...]``, best first. Raises a `VidsortError` on bad input.
        """
        prepared = prepare_clip(video, self._spec(strategy, num_clips))
        logits = self.predict_logits(prepared.pixel_values).mean(axis=0)
        return top_k_predictions(logits, self.labels, top_k, function or self.function)

    def classify_segments(self, video: str | os.PathLike, stride: int | None = None,
                          top_k: int = 5, min_score: float | None = None,
                          batch_size: int = SEGMENT_BATCH_SIZE) -> dict[str, Any]:
        """Labels with timestamps for a (long) video, decoded once (`vidsort.segments`).

        Args:
            video: a video file.
            stride: source frames between window starts (default: half a window, i.e.
                ``clip_len * frame_sample_rate // 2``).
            top_k: labels per window and for the whole video.
            min_score: stretches whose top score is below this get no segment.
            batch_size: windows per inference call.

        Returns:
            ``{"video", "duration_s", "fps", "windows": [{"start_s", "end_s", "predictions"}],
            "segments": [{"label", "start_s", "end_s", "score"}], "labels": [{"label",
            "score"}]}``, times in seconds from the frames' timestamps. Decoding runs in a
            worker process when the classifier isolates decoding. Raises a `VidsortError` on
            bad input.
        """
        from vidsort.segments import segment_video

        return segment_video(self, video, stride=stride, top_k=top_k, min_score=min_score,
                             batch_size=batch_size).result

    def classify_many(
        self,
        videos: Iterable[Video],
        top_k: int = 5,
        function: str | None = None,
        strategy: str | None = None,
        num_clips: int | None = None,
        batch_size: int = 1,
        prefetch: int = 2,
        isolate: bool | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Classify many videos; decoding runs ahead of inference. Yields in input order.

        Args:
            videos: paths or frames arrays.
            top_k, function, strategy, num_clips: as for ``__call__``.
            batch_size: videos per inference call.
            prefetch: videos decoded ahead (bounds memory).
            isolate: decode in worker processes (default: as the classifier's ``isolation``).

        Returns:
            An iterator of dicts: ``{"video", "predictions", "backend", "frames", "timings", ...}``
            or ``{"video", "error": {"type", "message"}}`` for a video that failed; a failure
            costs only that video's result.
        """
        function = function or self.function
        if function not in FUNCTIONS:
            raise ValueError(f"unknown function {function!r}; choose one of {', '.join(FUNCTIONS)}")
        spec = self._spec(strategy, num_clips)
        batch: list[tuple[Any, PreparedClip]] = []
        prepared_iter = self._iter_prepared(videos, spec, max(prefetch, batch_size), isolate)
        for video, prepared in prepared_iter:
            if isinstance(prepared, VidsortError):
                # Flush first so results stay in input order.
                yield from self._run_batch(batch, top_k, function)
                batch = []
                yield {"video": _name(video), "error": error_record(prepared)}
                continue
            batch.append((video, prepared))
            if len(batch) >= batch_size:
                yield from self._run_batch(batch, top_k, function)
                batch = []
        yield from self._run_batch(batch, top_k, function)

    def classify_prepared(self, batch: list[tuple[Any, PreparedClip]], top_k: int = 5,
                          function: str | None = None) -> Iterator[dict[str, Any]]:
        """Classify clips prepared elsewhere (Ray tasks of `vidsort.jobs`) in one model call.

        Args:
            batch: ``(video, PreparedClip)`` pairs from `vidsort.pipeline.prepare_clip`.
            top_k, function: as for ``__call__``.

        Returns:
            An iterator of result dicts as `classify_many` yields them, in batch order.
        """
        return self._run_batch(batch, top_k, function or self.function)

    def _run_batch(self, batch: list[tuple[Any, PreparedClip]], top_k: int,
                   function: str) -> Iterator[dict[str, Any]]:
        if not batch:
            return
        started = time.perf_counter()
        inputs = self._runner.stack([p.pixel_values for _, p in batch])
        try:
            logits = self.predict_logits(inputs)
        except Exception as exc:  # e.g. out of memory on a big batch: report, do not lose inputs
            for video, _ in batch:
                yield {"video": _name(video), "error": error_record(exc)}
            return
        per_video = (time.perf_counter() - started) / len(batch)
        offset = 0
        for video, prepared in batch:
            n = prepared.pixel_values.shape[0]
            mean_logits = logits[offset:offset + n].mean(axis=0)
            offset += n
            result = {"video": _name(video),
                      "predictions": top_k_predictions(mean_logits, self.labels, top_k, function)}
            result.update(prepared.info)
            result["timings"] = {**prepared.info.get("timings", {}),
                                 "inference_s": round(per_video, 4)}
            yield result


def _name(video: Any) -> str:
    return "<array>" if isinstance(video, np.ndarray) else os.fspath(video)
