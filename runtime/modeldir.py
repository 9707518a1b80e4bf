"""Reading a model directory: what `vidsort export` writes, or a bare ONNX export made elsewhere.

A full directory has ``vidsort.json`` (the manifest). A bare one needs only ``model.onnx``,
``config.json`` and ``preprocessor_config.json``; the manifest's fields then get defaults
derived from config.json.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidsort.errors import ModelDirError
from vidsort.manifest import (
    MANIFEST,
    VARIANT_FILES,
    Manifest,
    read_json_object,
    read_manifest,
    sha256_file,
)
from vidsort.preprocess.config import CONFIG_NAME, PreprocessConfig, parse_config
from vidsort.supported import check_supported


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
    manifest: Manifest = field(default_factory=dict)  # type: ignore[assignment]
    model_type: str = "videomae"
    #: ``preprocessor_config.json`` parsed once, here (`vidsort.preprocess.PreprocessConfig`)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

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
        manifest = read_manifest(root)
        config = read_json_object(root / "config.json")
        preprocessor = read_json_object(root / CONFIG_NAME)
        arch = check_supported(config, preprocessor, root / "config.json", root / CONFIG_NAME)
        try:
            preprocess = parse_config(preprocessor, default_processor=arch.processors[0])
        except ValueError as exc:
            raise ModelDirError(f"{root / CONFIG_NAME}: {exc}") from None

        labels = manifest.get("labels") or _labels_from_config(config, root / "config.json")
        num_frames = int(manifest.get("num_frames") or config.get("num_frames") or 16)
        size = manifest.get("image_size") or config.get("image_size") or 224
        if isinstance(size, int):
            size = (size, size)
        image_size = (int(size[0]), int(size[1]))
        sampling = manifest.get("sampling", {})
        variants = {k: v for k, v in (manifest.get("variants") or VARIANT_FILES).items()
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
            frame_sample_rate=int(sampling.get("frame_sample_rate", arch.frame_sample_rate)),
            strategy=str(sampling.get("strategy", "centre")),
            problem_type=manifest.get("problem_type", config.get("problem_type")),
            variants=variants,
            manifest=manifest,
            model_type=arch.model_type,
            preprocess=preprocess,
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
        """The raw preprocessor_config.json (`preprocess` holds it parsed)."""
        return read_json_object(self.path / CONFIG_NAME)

    def model_file(self, precision: str) -> Path:
        """Path of the ONNX file for ``precision`` (fp32 | int8 | fp16)."""
        name = self.variants.get(precision)
        if name is None:
            have = ", ".join(sorted(self.variants)) or "none"
            flag = "--quantize" if precision == "int8" else "--fp16"
            raise ModelDirError(f"{self.path}: no {precision} model (has: {have}); export it "
                                f"with `vidsort export ... {flag}`")
        return self.path / name
