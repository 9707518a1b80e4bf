"""The models and inputs the benchmark runs on, built once and cached between runs.

- ``base``: the VideoMAE-Base architecture (`VideoMAEConfig()` defaults: 16 frames of 224x224,
  400 labels) with **random weights** (seeded): speed does not depend on the weights, and nothing
  is downloaded. Kinetics-400 label names are attached when ../shared has them.
- ``tiny``: the embedded ``tiny-motion`` model (8 frames of 64x64); if it has not been trained
  yet, a randomly initialised model of the same shape stands in (the record says so).

Each is exported with `vidsort.export.export_model` twice: fp32 + int8 dynamic, and int8 static
(calibrated on ../shared/videos); fp16 only when a GPU provider is asked for and present.
Exports are reused while their stamp (source, versions, options) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
VIDEOS = SHARED / "videos"
LATENCY_VIDEOS = ("arm_wrestling_340x256.mp4", "ntu_1080p_h264.avi")
#: clips for the throughput folder: the SD clips that hold a 16x4 window (the seed recipe
#: cannot sample shorter ones)
FOLDER_VIDEOS = ("arm_wrestling_340x256.mp4", "clip_340x256_300f.mp4", "clip_mpeg4_320x240.avi")
STAMP = "bench_stamp.json"
TINY_STANDIN = {"image_size": 64, "num_frames": 8, "patch_size": 16, "tubelet_size": 2,
                "hidden_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4,
                "intermediate_size": 256, "use_mean_pooling": True}


def default_cache() -> Path:
    """Where models are cached: $VIDSORT_BENCH_CACHE or ~/.cache/vidsort-bench."""
    env = os.environ.get("VIDSORT_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "vidsort-bench"


def _versions() -> dict[str, str]:
    out = {}
    for name in ("torch", "transformers", "optimum-onnx", "onnx", "onnxruntime", "vidsort"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _fingerprint(hf_dir: Path) -> str:
    """Cheap identity of a save_pretrained dir: config + file names, sizes and mtimes."""
    digest = hashlib.sha256((hf_dir / "config.json").read_bytes())
    for f in sorted(hf_dir.iterdir()):
        if f.is_file():
            st = f.stat()
            digest.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def _save_hf(out: Path, config_kwargs: dict[str, Any], labels: list[str] | None,
             size: int, log) -> None:
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

    torch.manual_seed(0)
    config = VideoMAEConfig(**config_kwargs)
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: i for i, name in enumerate(labels)}
    log(f"building {out.name}: VideoMAE {config.hidden_size}d x {config.num_hidden_layers} "
        f"layers, {config.num_frames}x{config.image_size}, random init")
    model = VideoMAEForVideoClassification(config).eval()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    VideoMAEImageProcessor(size={"shortest_edge": size},
                           crop_size={"height": size, "width": size}).save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def source_model(name: str, cache: Path, log) -> dict[str, Any]:
    """The save_pretrained directory for ``name`` (``base`` | ``tiny``), built if needed.

    Returns:
        ``{"name", "key" (cache folder), "hf_dir", "random_init", "description"}``.
    """
    if name == "tiny":
        from vidsort.export.demo.embedded import resolve_embedded

        embedded = resolve_embedded("tiny-motion")
        if embedded is not None:
            return {"name": "tiny", "key": "tiny-motion", "hf_dir": embedded, "random_init": False,
                    "description": "embedded tiny-motion (trained; 8x64x64, 3 layers, 128d)"}
        hf_dir = cache / "tiny-standin" / "hf"
        if not (hf_dir / "config.json").is_file():
            hf_dir.parent.mkdir(parents=True, exist_ok=True)
            labels = ["moving left", "moving right", "moving up", "moving down",
                      "rotating clockwise", "rotating counterclockwise", "growing", "shrinking"]
            _save_hf(hf_dir, TINY_STANDIN, labels, 64, log)
        return {"name": "tiny", "key": "tiny-standin", "hf_dir": hf_dir, "random_init": True,
                "description": "stand-in for tiny-motion (not yet trained): same shape, "
                               "random init"}
    if name == "base":
        hf_dir = cache / "videomae-base" / "hf"
        if not (hf_dir / "config.json").is_file():
            hf_dir.parent.mkdir(parents=True, exist_ok=True)
            label_file = SHARED / "kinetics400_labels.txt"
            labels = label_file.read_text().split("\n") if label_file.is_file() else None
            labels = [x.strip() for x in labels if x.strip()] if labels else None
            _save_hf(hf_dir, {}, labels if labels and len(labels) == 400 else None, 224, log)
        return {"name": "base", "key": "videomae-base", "hf_dir": hf_dir, "random_init": True,
                "description": "VideoMAE-Base architecture (VideoMAEConfig() defaults: 16x224, "
                               "12 layers, 768d, 400 labels), RANDOM weights"}
    raise ValueError(f"unknown model {name!r}; choose base or tiny")


def export_variant(source: dict[str, Any], variant: str, cache: Path, log) -> Path:
    """Export ``source`` for ``variant`` (dynamic | static | fp16) into the cache, or reuse it.

    Returns:
        The vidsort model directory.
    """
    hf_dir = Path(source["hf_dir"])
    out = cache / source["key"] / f"onnx-{variant}"
    options: dict[str, Any] = {"fp16": variant == "fp16",
                               "quantize": variant if variant in ("dynamic", "static") else None}
    if variant == "static":
        options["calibration"] = [str(VIDEOS)]
    stamp = {"source": str(hf_dir), "fingerprint": _fingerprint(hf_dir), "options": options,
             "versions": _versions()}
    stamp_file = out / STAMP
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        return out
    from vidsort.export import export_model

    log(f"exporting {source['name']} ({variant}) to {out} (once; cached)")
    out.parent.mkdir(parents=True, exist_ok=True)
    export_model(str(hf_dir), out, overwrite=True, validate=False, log=log, **options)
    stamp_file.write_text(json.dumps(stamp, indent=1))
    return out


def clips_folder(tmp: Path, count: int) -> list[str]:
    """A folder of ``count`` clips for throughput: symlinks cycling over `FOLDER_VIDEOS`.

    Symlinks, so nothing from ../shared is copied; repeats hit the page cache as a re-read
    of a hot file would.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        name = FOLDER_VIDEOS[i % len(FOLDER_VIDEOS)]
        link = tmp / f"{i:02d}_{name}"
        if not link.exists():
            link.symlink_to(VIDEOS / name)
        paths.append(str(link))
    return paths


def latency_videos(full_hd: bool = True) -> list[str]:
    """The shared clips that latency runs use (340x256, and full HD unless not ``full_hd``)."""
    names = LATENCY_VIDEOS if full_hd else LATENCY_VIDEOS[:1]
    return [str(VIDEOS / n) for n in names if (VIDEOS / n).is_file()]
