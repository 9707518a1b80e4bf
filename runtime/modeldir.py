"""Reading a model directory: what `vidsort export` writes, or a bare ONNX export made elsewhere.

A full directory has ``vidsort.json`` (the manifest). A bare one needs only ``model.onnx``,
``config.json`` and ``preprocessor_config.json``; the manifest's fields then get defaults
derived from config.json.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidsort.errors import ModelDirError

MANIFEST = "vidsort.json"
#: precision -> file name, as `vidsort export` writes them
DEFAULT_VARIANTS = {"fp32": "model.onnx", "int8": "model_quantized.onnx", "fp16": "model_fp16.onnx"}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ModelDirError(f"{path}: missing (a model directory needs it)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _labels_from_config(config: dict[str, Any], path: Path) -> list[str]:
    id2label = config.get("id2label")
    if not id2label:
        n = int(config.get("num_labels", 0) or 0)
        return [f"LABEL_{i}" for i in range(n)]
    try:
        pairs = sorted((int(k), str(v)) for k, v in id2label.items())
    except (AttributeError, ValueError):
        raise ModelDirError(f"{path}: id2label must map integer ids to names") from None
    return [label for _, label in pairs]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ModelDir:
    """What the runtime needs to know about a model directory."""

    path: Path
    labels: list[str]
    num_frames: int
    image_size: tuple[int, int]
    input_name: str = "pixel_values"
    output_name: str = "logits"
    clip_len: int = 16
    frame_sample_rate: int = 4
    strategy: str = "centre"
    problem_type: str | None = None
    variants: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike, verify: bool = False) -> ModelDir:
        """Read a model directory.

        Args:
            path: directory written by ``vidsort export`` (or model.onnx + config.json +
                preprocessor_config.json exported elsewhere).
            verify: also check every file's sha256 against the manifest (reads all bytes).

        Returns:
            The parsed `ModelDir`. Raises `ModelDirError` naming the missing or corrupt file.
        """
        root = Path(path)
        if not root.exists():
            raise ModelDirError(f"{root}: model directory does not exist")
        if not root.is_dir():
            raise ModelDirError(f"{root}: not a directory (expected a model directory from "
                                "`vidsort export`)")
        config = _read_json(root / "config.json")
        if not (root / "preprocessor_config.json").is_file():
            raise ModelDirError(f"{root / 'preprocessor_config.json'}: missing "
                                "(a model directory needs it)")
        manifest = _read_json(root / MANIFEST) if (root / MANIFEST).exists() else {}

        labels = manifest.get("labels") or _labels_from_config(config, root / "config.json")
        num_frames = int(manifest.get("num_frames") or config.get("num_frames") or 16)
        size = manifest.get("image_size") or config.get("image_size") or 224
        if isinstance(size, int):
            size = (size, size)
        image_size = (int(size[0]), int(size[1]))
        sampling = manifest.get("sampling", {})
        variants = {k: v for k, v in (manifest.get("variants") or DEFAULT_VARIANTS).items()
                    if (root / v).is_file()}
        if not variants:
            raise ModelDirError(f"{root / 'model.onnx'}: missing (no ONNX model in the directory)")
        model = cls(
            path=root,
            labels=list(labels),
            num_frames=num_frames,
            image_size=image_size,
            input_name=manifest.get("input", {}).get("name", "pixel_values"),
            output_name=manifest.get("output", {}).get("name", "logits"),
            clip_len=int(sampling.get("clip_len", num_frames)),
            frame_sample_rate=int(sampling.get("frame_sample_rate", 4)),
            strategy=str(sampling.get("strategy", "centre")),
            problem_type=manifest.get("problem_type", config.get("problem_type")),
            variants=variants,
            manifest=manifest,
        )
        model.check_files(verify)
        return model

    def check_files(self, verify: bool = False) -> None:
        """Compare files to the manifest: sizes always, sha256 when ``verify``."""
        for name, meta in (self.manifest.get("files") or {}).items():
            file = self.path / name
            if not file.is_file():
                raise ModelDirError(f"{file}: listed in {MANIFEST} but missing")
            expected = meta.get("bytes")
            if expected is not None and file.stat().st_size != int(expected):
                raise ModelDirError(f"{file}: {file.stat().st_size} bytes, the manifest says "
                                    f"{expected} (truncated or replaced?)")
            if verify and meta.get("sha256") and sha256_file(file) != meta["sha256"]:
                raise ModelDirError(f"{file}: sha256 differs from {MANIFEST} (corrupt?)")

    def preprocessor_config(self) -> dict[str, Any]:
        """The parsed preprocessor_config.json."""
        return _read_json(self.path / "preprocessor_config.json")

    def model_file(self, precision: str) -> Path:
        """Path of the ONNX file for ``precision`` (fp32 | int8 | fp16)."""
        name = self.variants.get(precision)
        if name is None:
            have = ", ".join(sorted(self.variants)) or "none"
            flag = "--quantize" if precision == "int8" else "--fp16"
            raise ModelDirError(f"{self.path}: no {precision} model (has: {have}); export it "
                                f"with `vidsort export ... {flag}`")
        return self.path / name
