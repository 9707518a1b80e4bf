"""``vidsort.json``, the manifest of a model directory: one schema that export writes and the
runtime reads.

Keys (`Manifest`): ``format_version`` (major version: bumped when a key changes meaning; the
runtime refuses a newer one), ``task``, ``model_type``, ``source``, ``input`` / ``output``
(name, shape with a ``"batch"`` axis, dtype, layout NTCHW), ``num_frames``, ``image_size``,
``sampling`` defaults, ``labels`` (logit order), ``problem_type``, ``variants`` (precision ->
file), ``quantization`` (settings or null), ``files`` (every file but the manifest: sha256 and
bytes), ``versions``, ``validation`` (figures per variant), ``export`` (opset, optimizer
outcome), ``created``. Everything here is torch-free: the export fills it from a transformers
config, duck-typed.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict

from vidsort.errors import ModelDirError

#: the manifest's file name inside a model directory
MANIFEST = "vidsort.json"
#: the format this vidsort writes and the newest major version it reads
FORMAT_VERSION = 1
#: the task every model directory serves
TASK = "video-classification"
#: precision -> ONNX file name, as `vidsort export` writes them (the order is the CLI's)
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model_quantized.onnx", "fp16": "model_fp16.onnx"}
#: distributions whose versions go into the manifest (reproducibility of the export)
VERSIONED = ("vidsort", "torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime")


class TensorSpec(TypedDict, total=False):
    name: str
    shape: list[int | str]
    dtype: str
    layout: str


class Sampling(TypedDict, total=False):
    clip_len: int
    frame_sample_rate: int
    strategy: str


class FileEntry(TypedDict):
    sha256: str
    bytes: int


class Manifest(TypedDict, total=False):
    """The keys of ``vidsort.json`` (all optional for a reader: bare directories have none)."""

    format_version: int
    task: str
    model_type: str
    source: str
    input: TensorSpec
    output: TensorSpec
    num_frames: int
    image_size: list[int]
    sampling: Sampling
    labels: list[str]
    problem_type: str | None
    variants: dict[str, str]
    quantization: dict[str, Any] | None
    files: dict[str, FileEntry]
    versions: dict[str, str | None]
    validation: dict[str, Any]
    export: dict[str, Any]
    created: str


def format_major(manifest: Manifest, path: str | os.PathLike) -> int:
    """The manifest's major format version; `ModelDirError` if it is newer than this vidsort's.

    A manifest without ``format_version`` predates the key and counts as version 1.
    """
    value = manifest.get("format_version", 1)
    try:
        major = int(str(value).split(".")[0])
    except ValueError:
        raise ModelDirError(f"{path}: format_version {value!r} is not a version number") from None
    if major > FORMAT_VERSION:
        raise ModelDirError(
            f"{path}: manifest format version {value} is newer than this vidsort supports "
            f"(up to {FORMAT_VERSION}); upgrade vidsort or re-export with this version")
    return major


def read_json_object(path: Path, what: str = "a model directory needs it") -> dict[str, Any]:
    """A JSON object from ``path``, or a `ModelDirError` naming the file and what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ModelDirError(f"{path}: missing ({what})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_manifest(directory: str | os.PathLike) -> Manifest:
    """The directory's manifest ({} when it has none), checked for a supported format version."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return Manifest()
    manifest: Manifest = read_json_object(path)  # type: ignore[assignment]
    format_major(manifest, path)
    return manifest


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_table(directory: str | os.PathLike) -> dict[str, FileEntry]:
    """``name -> {"sha256", "bytes"}`` for every file in ``directory`` but the manifest itself."""
    root = Path(directory)
    return {p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that shaped the export (None if not installed)."""
    found: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


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
    files: dict[str, FileEntry],
    export: dict[str, Any],
) -> Manifest:
    """Assemble the manifest (the export calls this; the runtime never does).

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
        The manifest (JSON-serialisable).
    """
    size = config.image_size
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    num_frames = int(config.num_frames)
    return Manifest(
        format_version=FORMAT_VERSION,
        task=TASK,
        model_type=model_type,
        source=source,
        input={"name": "pixel_values",
               "shape": ["batch", num_frames, int(config.num_channels), height, width],
               "dtype": "float32", "layout": "NTCHW"},
        output={"name": "logits", "shape": ["batch", len(labels)]},
        num_frames=num_frames,
        image_size=[height, width],
        sampling={"clip_len": num_frames, "frame_sample_rate": int(frame_sample_rate),
                  "strategy": "centre"},
        labels=list(labels),
        problem_type=getattr(config, "problem_type", None),
        variants=dict(variants),
        quantization=quantization,
        files=files,
        versions=versions(),
        validation=validation,
        export=export,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def write_manifest(directory: str | os.PathLike, manifest: Manifest) -> Path:
    """Write ``vidsort.json`` into ``directory``; returns its path."""
    path = Path(directory) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
