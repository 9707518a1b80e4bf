"""The implementations being compared, each timed stage by stage.

Every recipe offers the same operations, so the worker can drive any of them:
``load()``, ``latency(video)`` (one video, stage by stage), ``throughput(videos, batch_size)``
and ``infer_only(batch_size)`` (PyTorch recipes: the model alone on a random batch, GPU batch
figures; vidsort's model-only figures come from `vidsort.bench`, run by run.py).

Stages: ``decode`` = open + sample + decode the sampled frames, ``preprocess`` = frames →
model input, ``inference`` = the model, ``postprocess`` = logits → top-5 labels;
``e2e`` = one span over all four, measured around them (not their sum).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

TOP_K = 5
SEED = 0  # the seed recipe seeds NumPy's global generator before sampling


def sample_frame_indices(clip_len: int, frame_sample_rate: int, seg_len: int) -> np.ndarray:
    """The seed recipe's sampler, verbatim (Hugging Face's VideoMAE example)."""
    converted_len = int(clip_len * frame_sample_rate)
    end_idx = np.random.randint(converted_len, seg_len)
    start_idx = end_idx - converted_len
    indices = np.linspace(start_idx, end_idx, num=clip_len)
    indices = np.clip(indices, start_idx, end_idx - 1).astype(np.int64)
    return indices


class SeedRecipe:
    """decord ``get_batch`` (16 frames, stride 4) → VideoMAEImageProcessor → PyTorch eager fp32."""

    def __init__(self, model_dir: str, threads: int, device: str = "cpu",
                 frame_sample_rate: int = 4):
        self.model_dir, self.threads, self.device = model_dir, threads, device
        self.frame_sample_rate = frame_sample_rate

    def load(self) -> dict[str, Any]:
        """Import torch + transformers + decord and load the model; returns times."""
        t0 = time.perf_counter()
        import decord
        import torch
        from transformers import VideoMAEForVideoClassification, VideoMAEImageProcessor

        t1 = time.perf_counter()
        torch.set_num_threads(self.threads)
        self.torch, self.decord = torch, decord
        self.model = VideoMAEForVideoClassification.from_pretrained(self.model_dir).eval()
        self.model.to(self.device)
        self.processor = VideoMAEImageProcessor.from_pretrained(self.model_dir)
        self.clip_len = self.model.config.num_frames
        self.id2label = self.model.config.id2label
        return {"import_s": t1 - t0, "load_s": time.perf_counter() - t1,
                "provider": self.device, "precision": "fp32"}

    def _sync(self) -> None:
        if self.device != "cpu":
            self.torch.cuda.synchronize()

    def _frames(self, video: str) -> np.ndarray:
        np.random.seed(SEED)
        reader = self.decord.VideoReader(video, num_threads=1, ctx=self.decord.cpu(0))
        reader.seek(0)
        indices = sample_frame_indices(self.clip_len, self.frame_sample_rate, len(reader))
        self._last_indices = indices
        return reader.get_batch(indices).asnumpy()

    def _top_k(self, logits) -> list[dict]:
        scores, ids = logits.softmax(-1).topk(TOP_K)
        return [{"label": self.id2label[i], "score": s}
                for s, i in zip(scores.tolist(), ids.tolist(), strict=True)]

    def latency(self, video: str) -> dict[str, Any]:
        """One video through the seed recipe, stage by stage."""
        torch = self.torch
        t0 = time.perf_counter()
        frames = self._frames(video)
        t1 = time.perf_counter()
        inputs = self.processor(list(frames), return_tensors="pt").to(self.device)
        self._sync()
        t2 = time.perf_counter()
        with torch.no_grad():
            logits = self.model(**inputs).logits
        self._sync()
        t3 = time.perf_counter()
        preds = self._top_k(logits[0].float().cpu())
        t4 = time.perf_counter()
        return _record(t0, t1, t2, t3, t4, preds, self._last_indices)

    def throughput(self, videos: list[str], batch_size: int) -> dict[str, Any]:
        """The seed recipe in a loop; batches stack the processor outputs (one forward each)."""
        torch = self.torch
        started, done = time.perf_counter(), 0
        for i in range(0, len(videos), batch_size):
            chunk = videos[i:i + batch_size]
            pixel = torch.cat([self.processor(list(self._frames(v)), return_tensors="pt")
                               ["pixel_values"] for v in chunk]).to(self.device)
            with torch.no_grad():
                logits = self.model(pixel_values=pixel).logits
            for row in logits.float().cpu():
                self._top_k(row)
                done += 1
        self._sync()
        return {"clips": done, "errors": 0, "seconds": time.perf_counter() - started}

    def infer_only(self, batch_size: int) -> float:
        """Seconds for one forward pass on a random batch."""
        torch = self.torch
        shape = (batch_size, self.clip_len, 3, *self._size())
        pixel = torch.randn(shape, device=self.device)
        with torch.no_grad():
            self._sync()
            t0 = time.perf_counter()
            self.model(pixel_values=pixel)
            self._sync()
        return time.perf_counter() - t0

    def _size(self) -> tuple[int, int]:
        size = self.model.config.image_size
        return (size, size) if isinstance(size, int) else tuple(size)


class PipelineRecipe(SeedRecipe):
    """transformers ``pipeline("video-classification")`` (PyAV, frames from 0 at stride 4)."""

    def load(self) -> dict[str, Any]:
        """Import transformers and build the pipeline; returns times."""
        t0 = time.perf_counter()
        import torch
        import transformers.pipelines.video_classification as vc
        from transformers import pipeline

        t1 = time.perf_counter()
        torch.set_num_threads(self.threads)
        self.torch = torch
        self.pipe = pipeline("video-classification", model=self.model_dir,
                             device=self.device if self.device != "cpu" else -1)
        self.model = self.pipe.model
        self.clip_len = self.model.config.num_frames
        # The pipeline decodes inside preprocess(); wrap its reader to time decoding apart.
        original = vc.read_video_pyav
        self._decode_s = 0.0

        def timed_read(container, indices):
            start = time.perf_counter()
            try:
                return original(container, indices)
            finally:
                self._decode_s += time.perf_counter() - start

        vc.read_video_pyav = timed_read
        return {"import_s": t1 - t0, "load_s": time.perf_counter() - t1,
                "provider": self.device, "precision": "fp32"}

    def latency(self, video: str) -> dict[str, Any]:
        """One video through the pipeline's own preprocess / forward / postprocess."""
        self._decode_s = 0.0
        t0 = time.perf_counter()
        inputs = self.pipe.preprocess(video, frame_sampling_rate=self.frame_sample_rate)
        t2 = time.perf_counter()
        outputs = self.pipe.forward(inputs)
        self._sync()
        t3 = time.perf_counter()
        preds = self.pipe.postprocess(outputs, top_k=TOP_K)
        t4 = time.perf_counter()
        indices = np.linspace(0, self.clip_len * self.frame_sample_rate - 1, self.clip_len,
                              dtype=np.int64)
        return _record(t0, t0 + self._decode_s, t2, t3, t4, preds, indices)

    def throughput(self, videos: list[str], batch_size: int) -> dict[str, Any]:
        """``pipe(videos, batch_size=...)``."""
        started = time.perf_counter()
        out = self.pipe(videos, batch_size=batch_size, top_k=TOP_K,
                        frame_sampling_rate=self.frame_sample_rate)
        return {"clips": len(out), "errors": 0, "seconds": time.perf_counter() - started}


class VidsortRecipe:
    """vidsort: `VideoClassifier` (ONNX Runtime), one precision / provider / decode backend."""

    def __init__(self, model_dir: str, threads: int, precision: str, provider: str,
                 backend: str):
        self.model_dir, self.threads = model_dir, threads
        self.precision, self.provider, self.backend = precision, provider, backend

    def load(self) -> dict[str, Any]:
        """Import the runtime and build the classifier; returns times."""
        t0 = time.perf_counter()
        from vidsort import VideoClassifier
        from vidsort.bench.measure import clip_stages

        t1 = time.perf_counter()
        self.clip_stages = clip_stages
        self.clf = VideoClassifier(self.model_dir, provider=self.provider,
                                   precision=self.precision, backend=self.backend,
                                   threads=self.threads)
        return {"import_s": t1 - t0, "load_s": time.perf_counter() - t1,
                "provider": self.clf.provider, "precision": self.clf.precision,
                "model_file": self.clf.model.model_file(self.clf.precision).name}

    def latency(self, video: str) -> dict[str, Any]:
        """One video, timed stage by stage by `vidsort.bench.measure.clip_stages` (the calls
        `VideoClassifier.__call__` makes; the same code `vidsort bench --video` times)."""
        r = self.clip_stages(self.clf, video)
        record = {k: r[k] for k in ("decode_s", "preprocess_s", "inference_s", "postprocess_s",
                                    "e2e_s")}
        frames = [int(i) for i in np.asarray(r["frames"]).reshape(-1)]
        record.update(top1=r["predictions"][0]["label"],
                      frames=[frames[0], frames[-1]] if frames else [],
                      backend_used=r["backend"])
        return record

    def throughput(self, videos: list[str], batch_size: int) -> dict[str, Any]:
        """``classify_many(videos, batch_size=...)`` (decoding runs ahead in a thread)."""
        started = time.perf_counter()
        results = list(self.clf.classify_many(videos, top_k=TOP_K, batch_size=batch_size))
        errors = [r["error"] for r in results if "error" in r]
        return {"clips": len(results) - len(errors), "errors": len(errors),
                "first_error": errors[0] if errors else None,
                "seconds": time.perf_counter() - started}



def _record(t0: float, t1: float, t2: float, t3: float, t4: float, preds: list[dict],
            indices) -> dict[str, Any]:
    idx = [int(i) for i in np.asarray(indices).reshape(-1)]
    return {"decode_s": t1 - t0, "preprocess_s": t2 - t1, "inference_s": t3 - t2,
            "postprocess_s": t4 - t3, "e2e_s": t4 - t0, "top1": preds[0]["label"],
            "frames": [idx[0], idx[-1]] if idx else []}


def make_recipe(config: dict[str, Any]):
    """The recipe object for a configuration dict (see run.py's `configurations`)."""
    impl = config["impl"]
    if impl == "seed":
        return SeedRecipe(config["model_dir"], config["threads"], config.get("device", "cpu"))
    if impl == "pipeline":
        return PipelineRecipe(config["model_dir"], config["threads"], config.get("device", "cpu"))
    if impl == "vidsort":
        return VidsortRecipe(config["model_dir"], config["threads"], config["vidsort_precision"],
                             config["provider"], config["backend"])
    raise ValueError(f"unknown implementation {impl!r}")
