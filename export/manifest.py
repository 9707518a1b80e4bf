"""``vidsort.json``: what the runtime needs to know about an exported model directory.

Keys (`vidsort.modeldir.ModelDir` reads them): ``format_version`` (bumped when a key changes
meaning), ``task``, ``model_type``, ``source``, ``input`` / ``output`` (name, shape with a
``"batch"`` axis, dtype, layout NTCHW), ``num_frames``, ``image_size``, ``sampling`` defaults,
``labels`` (logit order), ``problem_type``, ``variants`` (precision -> file), ``quantization``
(settings or null), ``files`` (every file but the manifest: sha256 and bytes), ``versions``,
``validation`` (figures per variant), ``export`` (opset, optimizer outcome), ``created``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from vidsort.export.onnx_config import TASK
from vidsort.modeldir import MANIFEST, sha256_file

FORMAT_VERSION = 1
#: distributions whose versions go into the manifest (reproducibility of the export)
VERSIONED = ("vidsort", "torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime")


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that shaped the export (None if not installed)."""
    found: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def file_table(directory: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``name -> {"sha256", "bytes"}`` for every file in ``directory`` but the manifest itself."""
    root = Path(directory)
    return {p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def build_manifest(
    *,
    source: str,
    model_type: str,
    config: Any,
    labels: list[str],
    frame_sample_rate: int,
    variants: dict[str, str],
    quantization: dict[str, Any] | None,
    validation: dict[str, Any],
    files: dict[str, dict[str, Any]],
    export: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the manifest.

    Args:
        source: the MODEL argument as given.
        model_type: ``config.model_type``.
        config: the transformers config (num_frames, num_channels, image_size, problem_type).
        labels: label names in logit order.
        frame_sample_rate: default stride between sampled frames.
        variants: precision -> file name, only those written.
        quantization: settings of the int8 variant, or None.
        validation: figures per variant (empty when validation was skipped).
        files: `file_table` of the directory.
        export: how the export ran (opset, optimizer outcome, preprocessor origin).

    Returns:
        The manifest dictionary (JSON-serialisable).
    """
    size = config.image_size
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    num_frames = int(config.num_frames)
    return {
        "format_version": FORMAT_VERSION,
        "task": TASK,
        "model_type": model_type,
        "source": source,
        "input": {"name": "pixel_values",
                  "shape": ["batch", num_frames, int(config.num_channels), height, width],
                  "dtype": "float32", "layout": "NTCHW"},
        "output": {"name": "logits", "shape": ["batch", len(labels)]},
        "num_frames": num_frames,
        "image_size": [height, width],
        "sampling": {"clip_len": num_frames, "frame_sample_rate": int(frame_sample_rate),
                     "strategy": "centre"},
        "labels": list(labels),
        "problem_type": getattr(config, "problem_type", None),
        "variants": dict(variants),
        "quantization": quantization,
        "files": files,
        "versions": versions(),
        "validation": validation,
        "export": export,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_manifest(directory: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    """Write ``vidsort.json`` into ``directory``; returns its path."""
    path = Path(directory) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
