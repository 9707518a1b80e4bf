"""`vidsort verify`: is a model directory intact and usable? (torch-free)

Checks, in order, each reported as one line naming the file:

1. ``vidsort.json``: present, readable, a format version this vidsort reads (`vidsort.manifest`).
2. Every file the manifest lists: present, its size and sha256 as recorded; files the manifest
   does not list are noted (not a failure). Each variant the manifest names must be listed.
3. ``config.json`` / ``preprocessor_config.json``: an architecture and image processor the
   runtime supports, and the labels, frame count and image size the manifest records.
4. Each variant: loads in ONNX Runtime (CPU), its input and output names, shapes and dtypes are
   those of the manifest, its output has one logit per label.
5. With a video: the clip is decoded and preprocessed once, run through every variant, and the
   top-1 labels are compared (agreement with fp32).

A file gets at most one failure line (its first problem): a truncated model is reported as
truncated, not also as unloadable.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidsort.errors import ModelDirError, VidsortError, first_line
from vidsort.manifest import (
    MANIFEST,
    VARIANT_FILES,
    Manifest,
    format_major,
    read_json_object,
    sha256_file,
)


@dataclass
class Check:
    """One check's outcome: ``ok`` False is a failure, ``note`` a remark that is not one."""

    file: str
    ok: bool
    message: str
    note: bool = False

    def line(self, root: Path) -> str:
        """``ok    path: message`` / ``FAIL  path: message`` / ``note  path: message``."""
        tag = "note" if self.note else "ok" if self.ok else "FAIL"
        return f"{tag:<5} {root / self.file if self.file else root}: {self.message}"


@dataclass
class Report:
    """Everything `verify` found about one directory."""

    model_dir: Path
    checks: list[Check] = field(default_factory=list)
    #: ``{"video", "predictions": {variant: {"label", "score"}}, "agreement": {variant: bool}}``
    video: dict[str, Any] | None = None

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def failed(self, file: str) -> bool:
        """Whether ``file`` already has a failure (a file gets one failure line at most)."""
        return any(c.file == file and not c.ok for c in self.checks)

    def add(self, file: str, ok: bool, message: str, note: bool = False) -> bool:
        if not ok and self.failed(file):
            return False
        self.checks.append(Check(file, ok, message, note))
        return ok

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"model_dir", "ok", "failures", "checks": [...], "video"}``."""
        return {"model_dir": str(self.model_dir), "ok": self.ok, "failures": len(self.failures),
                "checks": [asdict(c) for c in self.checks], "video": self.video}

    def lines(self) -> list[str]:
        """The report as text lines (checks, then the video comparison, then a summary)."""
        out = [c.line(self.model_dir) for c in self.checks]
        if self.video is not None:
            out.append(_video_line(self.video))
        n = len(self.failures)
        out.append(f"{n} check(s) failed" if n else
                   f"all {len(self.checks)} checks passed")
        return out


def _video_line(video: dict[str, Any]) -> str:
    preds = ", ".join(f"{v} {p['label']!r} ({p['score']:.3f})"
                      for v, p in video["predictions"].items())
    agree = video["agreement"]
    same = sum(agree.values())
    return (f"video {video['video']}: {preds}; top-1 agreement with fp32 {same}/{len(agree)}"
            if agree else f"video {video['video']}: {preds}")


# ------------------------------------------------------------------------------------ checks

def _check_manifest(root: Path, report: Report) -> Manifest | None:
    path = root / MANIFEST
    if not path.is_file():
        report.add(MANIFEST, False, "missing (written by `vidsort export`; without it the files "
                                    "cannot be checked)")
        return None
    try:
        manifest: Manifest = read_json_object(path)  # type: ignore[assignment]
        major = format_major(manifest, path)
    except ModelDirError as exc:
        report.add(MANIFEST, False, _strip(exc, path))
        return None
    report.add(MANIFEST, True, f"format version {major}")
    return manifest


def _strip(exc: BaseException, path: Path) -> str:
    """The message of a `ModelDirError` without its leading ``path: `` (the line adds it)."""
    text = first_line(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _check_files(root: Path, manifest: Manifest, report: Report) -> None:
    listed = manifest.get("files") or {}
    if not listed:
        report.add(MANIFEST, False, "lists no files (nothing to check them against)")
    for name, meta in sorted(listed.items()):
        file = root / name
        if not file.is_file():
            report.add(name, False, f"listed in {MANIFEST} but missing")
            continue
        size, expected = file.stat().st_size, meta.get("bytes")
        if expected is not None and size != int(expected):
            report.add(name, False, f"{size} bytes, {MANIFEST} says {expected}: changed "
                                    "since export (truncated or edited)")
        elif not meta.get("sha256"):
            report.add(name, False, f"{MANIFEST} records no sha256 for it")
        elif sha256_file(file) != meta["sha256"]:
            report.add(name, False, f"sha256 differs from {MANIFEST}: changed since export "
                                    "(edited or corrupt)")
        else:
            report.add(name, True, f"{size} bytes, sha256 matches")
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        name = file.relative_to(root).as_posix()
        if name != MANIFEST and name not in listed:
            report.add(name, True, f"not listed in {MANIFEST} (not checked)", note=True)
    for variant, name in (manifest.get("variants") or {}).items():
        if name not in listed and not report.failed(name):
            report.add(name, False, f"the {variant} variant's file is not listed in {MANIFEST}"
                       if (root / name).is_file() else
                       f"the {variant} variant's file is missing")


def _check_configs(root: Path, manifest: Manifest, report: Report) -> dict[str, Any] | None:
    """Supported architecture and processor; labels and clip shape as the manifest says."""
    from vidsort.modeldir import _labels_from_config
    from vidsort.preprocess.config import CONFIG_NAME, parse_config
    from vidsort.supported import check_supported

    if report.failed("config.json") or report.failed(CONFIG_NAME):
        return None
    try:
        config = read_json_object(root / "config.json")
        preprocessor = read_json_object(root / CONFIG_NAME)
        check_supported(config, preprocessor, root / "config.json", root / CONFIG_NAME)
        parse_config(preprocessor)
    except (ModelDirError, ValueError) as exc:
        text = first_line(exc)
        name = CONFIG_NAME if CONFIG_NAME in text else "config.json"
        report.add(name, False, _strip(exc, root / name))
        return None
    problems = []
    try:
        labels = _labels_from_config(config, root / "config.json")
    except ModelDirError as exc:
        report.add("config.json", False, _strip(exc, root / "config.json"))
        return None
    if manifest.get("labels") is not None and labels != list(manifest["labels"]):
        problems.append(f"id2label ({len(labels)} labels) differs from {MANIFEST}'s labels "
                        f"({len(manifest['labels'])})")
    if manifest.get("num_frames") is not None and config.get("num_frames") != manifest[
            "num_frames"]:
        problems.append(f"num_frames {config.get('num_frames')} != {MANIFEST}'s "
                        f"{manifest['num_frames']}")
    if problems:
        report.add("config.json", False, "; ".join(problems))
        return None
    return config


def _dims(shape: list) -> list[int | str]:
    """Shape entries as ints, symbolic ones as ``"batch"`` (any name stands for a free axis)."""
    return [d if isinstance(d, int) else "batch" for d in shape]


def _check_variant(root: Path, variant: str, name: str, manifest: Manifest,
                   report: Report):
    """Load one variant in ORT and compare its signature to the manifest; the session or None."""
    from vidsort.session import SessionSettings, create_session

    try:
        session = create_session(root / name, "cpu", SessionSettings(threads=1))
    except VidsortError as exc:
        report.add(name, False, _strip(exc, root / name))
        return None
    problems = []
    inputs, outputs = session.get_inputs(), session.get_outputs()
    spec_in, spec_out = manifest.get("input") or {}, manifest.get("output") or {}
    if len(inputs) != 1:
        problems.append(f"{len(inputs)} inputs, expected 1")
    else:
        got = inputs[0]
        if spec_in.get("name") and got.name != spec_in["name"]:
            problems.append(f"input is {got.name!r}, {MANIFEST} says {spec_in['name']!r}")
        if spec_in.get("shape") and _dims(got.shape) != _dims(spec_in["shape"]):
            problems.append(f"input shape {got.shape}, {MANIFEST} says {spec_in['shape']}")
        want = spec_in.get("dtype", "float32")
        if got.type != f"tensor({'float' if want == 'float32' else want})":
            problems.append(f"input type {got.type}, {MANIFEST} says {want}")
    labels = manifest.get("labels") or []
    out = next((o for o in outputs if o.name == spec_out.get("name", "logits")), None)
    if out is None:
        problems.append(f"no output {spec_out.get('name', 'logits')!r} "
                        f"(has {[o.name for o in outputs]})")
    else:
        want_shape = spec_out.get("shape") or ["batch", len(labels)]
        if _dims(out.shape) != _dims(want_shape):
            problems.append(f"output shape {out.shape}, {MANIFEST} says {want_shape}")
        elif labels and out.shape[-1] != len(labels):
            problems.append(f"{out.shape[-1]} logits for {len(labels)} labels")
    if problems:
        report.add(name, False, "; ".join(problems))
        return None
    report.add(name, True, f"{variant}: loads in ONNX Runtime; input {inputs[0].name} "
                           f"{_dims(inputs[0].shape)}, output {out.name} {_dims(out.shape)}")
    return session


# ------------------------------------------------------------------------------------- entry

def verify(model_dir: str | os.PathLike, video: str | os.PathLike | None = None,
           require_agreement: bool = False) -> Report:
    """Check a model directory against its manifest (and, with ``video``, the variants against
    each other).

    Args:
        model_dir: a directory written by ``vidsort export``.
        video: a clip to classify with every variant (top-1 agreement with fp32 is reported).
        require_agreement: count a variant whose top-1 differs from fp32's on ``video`` as a
            failure (by default it is reported only: near-ties may flip in int8).

    Returns:
        The `Report` (``report.ok`` False when any check failed). Raises `ModelDirError` when
        ``model_dir`` is not a directory (nothing can be checked).
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise ModelDirError(f"{root}: not a model directory (does not exist or is a file)")
    report = Report(root)
    manifest = _check_manifest(root, report)
    if manifest is None:
        return report
    _check_files(root, manifest, report)
    config = _check_configs(root, manifest, report)
    sessions = {}
    for variant, name in (manifest.get("variants") or {}).items():
        if variant not in VARIANT_FILES:
            report.add(MANIFEST, False, f"unknown variant {variant!r} ({name})")
        elif not report.failed(name):
            session = _check_variant(root, variant, name, manifest, report)
            if session is not None and video is not None:  # else released now
                sessions[variant] = session
    # a directory that failed a check is not worth classifying with
    if video is not None and config is not None and sessions and report.ok:
        report.video = _compare_on_video(root, video, sessions, report)
        for variant, same in (report.video or {}).get("agreement", {}).items():
            if require_agreement and not same:
                report.add(report.video["files"][variant], False,
                           f"top-1 on {video} differs from fp32's")
    return report


def _compare_on_video(root: Path, video: str | os.PathLike, sessions: dict,
                      report: Report) -> dict[str, Any] | None:
    """Classify ``video`` once per variant, on the same preprocessed clip."""
    import numpy as np
    from vidsort.modeldir import ModelDir
    from vidsort.pipeline import PrepareSpec, prepare_clip
    from vidsort.postprocess import default_function, top_k_predictions
    from vidsort.session import input_dtype

    model = ModelDir.load(root)
    spec = PrepareSpec(preprocessor_config=model.preprocess, clip_len=model.clip_len,
                       frame_sample_rate=model.frame_sample_rate, strategy=model.strategy)
    try:
        pixels = prepare_clip(video, spec).pixel_values
    except VidsortError as exc:
        report.add(os.fspath(Path(video).absolute()), False, f"cannot classify it: "
                   f"{_strip(exc, Path(video))}")
        return None
    function = default_function(model.problem_type)
    predictions: dict[str, dict[str, Any]] = {}
    for variant, session in sessions.items():
        feed = {model.input_name: np.ascontiguousarray(pixels, dtype=input_dtype(session))}
        try:
            logits = np.asarray(session.run([model.output_name], feed)[0], np.float32)
        except Exception as exc:  # ORT's own error types; the line names the variant's file
            report.add(model.variants[variant], False, f"fails on {video}: {first_line(exc)}")
            continue
        predictions[variant] = top_k_predictions(logits.mean(axis=0), model.labels, 1,
                                                 function)[0]
    reference = predictions.get("fp32")
    agreement = {v: p["label"] == reference["label"] for v, p in predictions.items()
                 if v != "fp32"} if reference else {}
    return {"video": os.fspath(video), "predictions": predictions, "agreement": agreement,
            "files": {v: model.variants[v] for v in predictions}}


def run_command(args) -> int:
    """``vidsort verify``: print the report (text or ``--json``); the exit code.

    Args:
        args: parsed arguments (``model_dir``, ``video``, ``json``, ``require_agreement``).

    Returns:
        0 every check passed, 1 a check failed, 2 usage (a missing --video file).
    """
    import json
    import sys

    from vidsort.cli import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE

    if args.video is not None and not Path(args.video).is_file():
        print(f"vidsort verify: {args.video}: --video file does not exist", file=sys.stderr)
        return EXIT_USAGE
    report = verify(args.model_dir, args.video, require_agreement=args.require_agreement)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print("\n".join(report.lines()))
    return EXIT_OK if report.ok else EXIT_SOME_FAILED
