"""`export_model`: a saved video classifier → a validated, deployable ONNX model directory.

Steps: load → export (optimum, fp32) → optimize (kept only if it keeps parity) → validate →
quantize / fp16 → manifest. Everything is built in a hidden temporary directory next to OUT_DIR
and renamed into place at the end, so an interrupted export never leaves an OUT_DIR that looks
complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidsort.errors import ExportError, first_line
from vidsort.export import fp16 as half
from vidsort.export import quantize as q
from vidsort.export.loading import LoadedModel, load_model
from vidsort.export.onnx_config import VideoOnnxConfig, onnx_config_for
from vidsort.export.optimize import optimize_graph
from vidsort.export.validate import (
    FP32_ATOL,
    Reference,
    clips_reference,
    format_table,
    fp32_figures,
    fp32_worst,
    torch_reference,
    variant_figures,
)
from vidsort.manifest import VARIANT_FILES, build_manifest, file_table, write_manifest
from vidsort.supported import BY_MODEL_TYPE

QUANTIZE_MODES = (None, "dynamic", "static")
#: real calibration clips the int8 validation also runs on (static quantization)
VALIDATION_CLIPS = 4


@dataclass
class ExportReport:
    """What `export_model` wrote and measured."""

    out_dir: Path
    files: dict[str, str]  #: file name -> sha256
    validation: dict[str, dict[str, Any]]  #: variant -> figures
    timings: dict[str, float]  #: step -> seconds (and "total")
    manifest: dict[str, Any] = field(repr=False)

    def table(self) -> str:
        """The validation table, as printed at the end of the export."""
        return format_table(self.validation, self.manifest.get("variants", {}))


class _Progress:
    """Announces steps as ``[  1.2s] message`` and records how long each took."""

    def __init__(self, log: Callable[[str], None] | None):
        self.log = log
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}

    def say(self, message: str) -> None:
        if self.log is not None:
            self.log(f"[{time.perf_counter() - self.start:6.1f}s] {message}")

    @contextmanager
    def step(self, name: str, message: str) -> Iterator[None]:
        self.say(message)
        began = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - began, 3)


def _check_arguments(quantize: str | None, calibration: Sequence | None,
                     frame_sample_rate: int | None, opset: int | None) -> None:
    if quantize not in QUANTIZE_MODES:
        raise ExportError(f"unknown quantization {quantize!r} (choose dynamic or static)")
    if quantize == "static" and not calibration:
        raise ExportError("static quantization needs calibration videos (--calibration PATH ...)")
    if calibration and quantize != "static":
        raise ExportError("calibration videos are only used with static quantization "
                          "(--quantize static)")
    if frame_sample_rate is not None and int(frame_sample_rate) < 1:
        raise ExportError(f"frame_sample_rate must be >= 1, got {frame_sample_rate}")
    if opset is not None and not 13 <= int(opset) <= 23:
        raise ExportError(f"opset {opset} is outside what the exporter supports (13-23)")


def _check_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out}: directory exists and is not empty (use --overwrite to "
                          "replace it)")


def _publish(build: Path, out: Path) -> None:
    """Move the finished ``build`` dir to ``out``, replacing what was there only at the end."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
    try:
        build.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _chmod_like_mkdir(path: Path) -> None:
    """mkdtemp makes 0700 dirs; the published OUT_DIR should get the user's usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)


def _copy_model(src: Path, dst_dir: Path) -> Path:
    """Copy an ONNX file and its external data into ``dst_dir``, keeping the file names (the
    graph refers to its data files by name)."""
    for path in q.model_files(src):
        shutil.copyfile(path, dst_dir / path.name)
    return dst_dir / src.name


def _export_fp32(loaded: LoadedModel, onnx_config: VideoOnnxConfig, dst: Path, opset: int) -> None:
    import torch
    from optimum.exporters.onnx.convert import export

    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # shape checks in forward() are constant for a fixed clip shape: the warnings are noise
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            export(loaded.model, onnx_config, dst, opset=opset)
    except Exception as exc:  # torch/optimum raise many types; the user needs one line
        raise ExportError(f"{loaded.location}: ONNX export failed at opset {opset} "
                          f"({first_line(exc)})") from exc


def export_model(
    model: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    quantize: str | None = None,
    calibration: Sequence[str | os.PathLike] | None = None,
    fp16: bool = False,
    fp16_videos: Sequence[str | os.PathLike] | None = None,
    opset: int | None = None,
    validate: bool = True,
    overwrite: bool = False,
    optimize: bool = True,
    frame_sample_rate: int | None = None,
    log: Callable[[str], None] | None = print,
    quantize_options: dict[str, Any] | None = None,
) -> ExportReport:
    """Export a video classifier to a validated ONNX model directory.

    Args:
        model: embedded model name, local ``save_pretrained`` directory, or Hub id.
        out_dir: directory to create (refused if non-empty unless ``overwrite``).
        quantize: None, ``"dynamic"`` or ``"static"`` (writes model_quantized.onnx).
        calibration: video files / directories for static quantization (required for it).
        fp16: also write model_fp16.onnx (fp16 compute, float32 inputs/outputs; see
            `vidsort.export.fp16`).
        fp16_videos: videos whose clips the fp16 variant's range scan and check also run on
            (default: the calibration videos; without either, seeded noise clips only).
        opset: ONNX opset; default the architecture config's (17).
        validate: compare against PyTorch (batch 1 and 2); fp32 must be within 1e-4.
        overwrite: replace a non-empty out_dir.
        optimize: apply ORT's transformer fusions if the fused graph keeps parity.
        frame_sample_rate: the sampling default written to the manifest (default: the
            architecture's, `vidsort.supported`).
        log: receives progress lines (None: silent).
        quantize_options: overrides of `quantize.DYNAMIC_DEFAULTS` / `quantize.STATIC_DEFAULTS`.

    Returns:
        An `ExportReport`. Raises `ExportError` for bad input or a failed fp32 validation.
    """
    _check_arguments(quantize, calibration, frame_sample_rate, opset)
    out = Path(out_dir).expanduser().absolute()
    _check_out_dir(out, overwrite)
    if quantize == "static":
        q.expand_videos(calibration or [])  # fail on a mistyped path before the slow steps
        q.runtime_preprocessing()
    if fp16_videos:
        if not fp16:
            raise ExportError("fp16_videos (--fp16-videos) is only used with fp16 (--fp16)")
        q.expand_videos(fp16_videos)
    progress = _Progress(log)
    with progress.step("load", f"loading {os.fspath(model)}"):
        loaded = load_model(model)
    if frame_sample_rate is None:
        frame_sample_rate = BY_MODEL_TYPE[loaded.model_type].frame_sample_rate
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    _chmod_like_mkdir(build)
    try:
        manifest = _build(loaded, build, progress, quantize=quantize, calibration=calibration,
                          fp16=fp16, fp16_videos=fp16_videos, opset=opset, validate=validate,
                          optimize=optimize,
                          frame_sample_rate=frame_sample_rate,
                          quantize_options=dict(quantize_options or {}))
        _publish(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    progress.timings["total"] = round(time.perf_counter() - progress.start, 3)
    report = ExportReport(out_dir=out, files={k: v["sha256"] for k, v in manifest["files"].items()},
                          validation=manifest["validation"], timings=progress.timings,
                          manifest=manifest)
    progress.say(f"wrote {out}")
    if log is not None and report.validation:
        log(report.table())
    return report


def _build(loaded: LoadedModel, build: Path, progress: _Progress, *, quantize: str | None,
           calibration: Sequence | None, fp16: bool, fp16_videos: Sequence | None,
           opset: int | None, validate: bool,
           optimize: bool, frame_sample_rate: int, quantize_options: dict[str, Any]) -> dict:
    """Write every file into ``build``; return the manifest (also written there)."""
    onnx_config = onnx_config_for(loaded.config)
    opset = int(opset or onnx_config.DEFAULT_ONNX_OPSET)
    work = build / ".work"
    # final file names from the start: external data is referenced by file name
    raw = work / "raw" / VARIANT_FILES["fp32"]
    optimized = work / "optimized" / VARIANT_FILES["fp32"]
    fp32 = build / VARIANT_FILES["fp32"]
    config = loaded.config
    with progress.step("export", f"exporting {loaded.model_type} to ONNX (opset {opset})"):
        _export_fp32(loaded, onnx_config, raw, opset)

    ref: Reference | None = None
    if validate or optimize:
        with progress.step("reference", "running the PyTorch model on reference clips"):
            clip = (int(config.num_frames), int(config.num_channels), *loaded.image_size)
            ref = torch_reference(loaded.model, clip)

    validation: dict[str, dict[str, Any]] = {}
    optimization: dict[str, Any] = {"applied": False, "reason": "disabled (optimize=False)"}
    if optimize and ref is not None:
        with progress.step("optimize", "optimizing the fp32 graph (ONNX Runtime fusions)"):
            optimization = _try_optimize(raw, optimized, onnx_config, ref)
        if optimization["applied"]:
            _copy_model(optimized, build)
            validation["fp32"] = optimization.pop("figures")
        else:
            progress.say(f"keeping the unoptimized graph: {optimization['reason']}")
    if not fp32.exists():
        _copy_model(raw, build)

    if validate:
        assert ref is not None
        with progress.step("validate", "validating fp32 against PyTorch (batch 1 and 2)"):
            if "fp32" not in validation:  # already measured when the optimized graph was kept
                validation["fp32"] = fp32_figures(fp32, ref)
            worst = fp32_worst(validation["fp32"])
        if worst > FP32_ATOL:
            raise ExportError(f"{loaded.location}: the fp32 ONNX model differs from PyTorch by "
                              f"{worst:.2e} (> {FP32_ATOL:g}); export refused")
    else:
        validation.pop("fp32", None)

    config.to_json_file(str(build / "config.json"))
    preprocessor_origin = loaded.write_preprocessor_config(build / "preprocessor_config.json")
    variants = {"fp32": VARIANT_FILES["fp32"]}
    quantization = None
    if quantize is not None:
        dst = build / VARIANT_FILES["int8"]
        with progress.step("quantize", f"quantizing to int8 ({quantize})"), q.quiet_logging():
            quantization, real_clips = _quantize(quantize, fp32, raw, dst, work, build, loaded,
                                                 calibration, frame_sample_rate,
                                                 quantize_options, progress)
        variants["int8"] = VARIANT_FILES["int8"]
        if validate:
            assert ref is not None
            with progress.step("validate", "validating int8 against PyTorch"):
                validation["int8"] = variant_figures(dst, ref)
                if real_clips:
                    # noise inputs exceed the calibrated ranges; real clips show the deployed error
                    real = clips_reference(loaded.model, real_clips)
                    validation["int8"]["calibration_clips"] = variant_figures(dst, real)
    fp16_settings = None
    if fp16:
        fp16_settings, figures = _fp16(loaded, fp32, build, ref if validate else None,
                                       fp16_videos or calibration, frame_sample_rate, progress)
        variants["fp16"] = VARIANT_FILES["fp16"]
        if figures:
            validation["fp16"] = figures

    shutil.rmtree(work)
    manifest = build_manifest(
        source=loaded.source, model_type=loaded.model_type, config=config, labels=loaded.labels,
        frame_sample_rate=frame_sample_rate, variants=variants, quantization=quantization,
        validation=validation, files=file_table(build),
        export={"opset": opset, "optimization": optimization, "fp16": fp16_settings,
                "preprocessor_config": preprocessor_origin, "location": loaded.location},
    )
    write_manifest(build, manifest)
    return manifest


def _try_optimize(raw: Path, dst: Path, onnx_config: VideoOnnxConfig,
                  ref: Reference) -> dict[str, Any]:
    """Optimize; the result says whether the fused graph is kept, and why not if it is not."""
    try:
        info = optimize_graph(raw, dst, onnx_config)
    except Exception as exc:  # the optimizer is best effort: the plain graph is still correct
        return {"applied": False, "reason": f"optimizer failed: {first_line(exc)}"}
    try:
        figures = fp32_figures(dst, ref)
    except Exception as exc:  # e.g. a fused op this onnxruntime build cannot run
        return {"applied": False, "reason": f"optimized graph does not run: {first_line(exc)}"}
    worst = fp32_worst(figures)
    if worst > FP32_ATOL:
        return {"applied": False, **info,
                "reason": f"optimized graph differs from PyTorch by {worst:.2e} (> {FP32_ATOL:g})"}
    return {"applied": True, **info, "figures": figures}


def _quantize(mode: str, fp32: Path, raw: Path, dst: Path, work: Path, build: Path,
              loaded: LoadedModel, calibration: Sequence | None, frame_sample_rate: int,
              options: dict[str, Any], progress: _Progress) -> tuple[dict[str, Any], list]:
    """Write ``dst``; return the settings and (static only) a few real clips to validate on."""
    # Dynamic quantization starts from the optimized graph (its MatMuls around the fused
    # attention); QDQ has no rule for fused attention ops, so static starts from the plain export.
    src = fp32 if mode == "dynamic" else raw
    pre = work / f"{src.stem}.pre.onnx"
    problem = q.preprocess(src, pre)
    if problem is not None:
        progress.say(f"quantizing without pre-processing: {problem}")
        pre = src
    clips: list = []
    if mode == "dynamic":
        settings = q.quantize_dynamic_int8(pre, dst, **options)
    else:
        merged = {**q.STATIC_DEFAULTS, **options}
        reader = q.VideoCalibrationReader(
            calibration or [], build, num_frames=int(loaded.config.num_frames),
            frame_sample_rate=frame_sample_rate, clips_per_video=int(merged["clips_per_video"]),
            max_clips=int(merged["max_clips"]), keep=VALIDATION_CLIPS, log=progress.say)
        progress.say(f"calibrating on up to {reader.max_clips} clip(s) from "
                     f"{len(reader.videos)} video(s), one clip at a time")
        settings = q.quantize_static_int8(pre, dst, reader, **options)
        settings["calibration"].update(clips_per_video=int(merged["clips_per_video"]),
                                       frame_sample_rate=frame_sample_rate)
        progress.say(f"calibrated on {reader.count} clip(s) from {len(reader.used)} video(s)")
        clips = reader.kept
    settings["preprocessed"] = problem is None
    return settings, clips


def _fp16(loaded: LoadedModel, fp32: Path, build: Path, ref: Reference | None,
          videos: Sequence | None, frame_sample_rate: int,
          progress: _Progress) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write and check model_fp16.onnx (`vidsort.export.fp16`); returns (settings, figures)."""
    import numpy as np

    config = loaded.config
    clip = (int(config.num_frames), int(config.num_channels), *loaded.image_size)
    refs: dict[str, Reference] = {}
    if ref is not None:
        refs["noise"] = ref
    clips = list(ref.inputs.values()) if ref is not None else \
        [np.random.default_rng(0).standard_normal((2, *clip)).astype(np.float32)]
    if videos:
        reader = q.VideoCalibrationReader(videos, build, num_frames=int(config.num_frames),
                                          frame_sample_rate=frame_sample_rate,
                                          max_clips=VALIDATION_CLIPS, log=progress.say)
        clips += reader.clips
        if ref is not None:
            refs["real_clips"] = clips_reference(loaded.model, reader.clips)
    dst = build / VARIANT_FILES["fp16"]
    with progress.step("fp16", "converting to fp16 (fp32 inputs/outputs, range-checked)"):
        settings = half.convert_fp16(fp32, dst, clips)
    figures: dict[str, Any] = {}
    if refs:
        with progress.step("validate", f"checking fp16 against PyTorch fp32 "
                                       f"({', '.join(refs)})"):
            figures = half.check_fp16(dst, refs)
    return settings, figures
