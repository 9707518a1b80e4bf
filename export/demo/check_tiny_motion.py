"""Measure the ``tiny-motion`` model on real H.264 files, and write its model card.

Three figures, all on clips encoded with libx264, decoded from disk with PyAV, sampled with the
runtime's ``centre`` strategy and preprocessed with ``VideoMAEImageProcessor``:

- held-out clips of `vidsort.export.demo.synthetic` (seeds never used in training);
- clips of an independent mini-renderer written here with PIL's ImageDraw (it shares no drawing
  code with `vidsort.export.demo.synthetic`): notched disks, pac-men and notched polygons over noisy
  backgrounds, 320x240, 25 fps, 3 s, placed anywhere on screen;
- the reverse-flip rate: the same decoded clips played backwards must get the opposite class.

    python -m vidsort.export.demo.check_tiny_motion export/demo/tiny-motion [--clips 16]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from vidsort.export.demo.synthetic import LABELS, OPPOSITE, render_dataset, write_frames
from vidsort.sampling import sample_indices

_W, _H, _FPS, _SECONDS, _SS = 320, 240, 25, 3, 4


def independent_clip(label: str, seed: int) -> np.ndarray:
    """A clip of ``label`` drawn with PIL: uint8 (75, 240, 320, 3).

    Deliberately separate from `synthetic`: PIL shapes supersampled 4x and box-filtered,
    noise backgrounds (frozen or fresh each frame), the path anywhere on screen.
    """
    rng = np.random.default_rng(seed)
    n = _FPS * _SECONDS
    kind = ["pacman", "notched_disk", "notched_square", "notched_triangle"][rng.integers(4)]
    radius = rng.uniform(16, 40)
    pos, step = np.array([_W / 2, _H / 2]), np.zeros(2)
    angle, spin, grow = rng.uniform(0, 360), 0.0, 1.0
    if label.startswith("moving"):
        axis = 0 if label in ("moving left", "moving right") else 1
        sign = -1 if label in ("moving left", "moving up") else 1
        size = (_W, _H)[axis]
        speed = min(_W * rng.uniform(0.003, 0.01), (size - 2 * radius - 4) / (n - 1))
        step[axis] = sign * speed
        travel = speed * (n - 1)
        lo = radius + 2 + (travel if sign < 0 else 0)
        pos[axis] = rng.uniform(lo, lo + size - 2 * radius - 4 - travel + 1e-6)
        pos[1 - axis] = rng.uniform(radius + 2, (_H, _W)[axis] - radius - 2)
    elif label.startswith("rotating"):
        spin = rng.uniform(3, 8) * (1 if label == "rotating clockwise" else -1)
    else:
        rate = rng.uniform(0.01, 0.02)
        span = (1 + rate) ** (n - 1)
        small = rng.uniform(6, max(6.5, 100 / span))
        radius, grow = (small, 1 + rate) if label == "growing" else (small * span, 1 / (1 + rate))
    if not label.startswith("moving"):
        big = radius * max(1.0, grow ** (n - 1))
        pos = np.array([rng.uniform(big + 2, _W - big - 2) if _W > 2 * big + 4 else _W / 2,
                        rng.uniform(big + 2, _H - big - 2) if _H > 2 * big + 4 else _H / 2])
    base = rng.integers(0, 256, 3)
    colour = np.where(base > 127, rng.integers(0, 60, 3), rng.integers(196, 256, 3))
    amount, fresh = rng.uniform(0.15, 0.5), rng.random() < 0.5
    noise = rng.integers(0, 256, (_H, _W, 3))
    frames = np.empty((n, _H, _W, 3), np.uint8)
    for t in range(n):
        if fresh:
            noise = rng.integers(0, 256, (_H, _W, 3))
        bg = base * (1 - amount) + noise * amount
        mask = Image.new("L", (_W * _SS, _H * _SS), 0)
        draw = ImageDraw.Draw(mask)
        cx, cy = (pos + step * t) * _SS
        r = radius * grow**t * _SS
        a = angle + spin * t  # degrees, clockwise on screen like PIL's own angles
        box = [cx - r, cy - r, cx + r, cy + r]
        if kind == "pacman":
            draw.pieslice(box, a + 25, a + 335, fill=255)
        else:
            corners = {"notched_disk": 0, "notched_square": 4, "notched_triangle": 3}[kind]
            if corners:
                pts = [(cx + r * np.cos(np.radians(a + 45 + k * 360 / corners)),
                        cy + r * np.sin(np.radians(a + 45 + k * 360 / corners)))
                       for k in range(corners)]
                draw.polygon(pts, fill=255)
            else:
                draw.ellipse(box, fill=255)
            # the notch: a small disk cut out of the rim, so that a turn is visible
            nx, ny = cx + 0.8 * r * np.cos(np.radians(a)), cy + 0.8 * r * np.sin(np.radians(a))
            draw.ellipse([nx - 0.35 * r, ny - 0.35 * r, nx + 0.35 * r, ny + 0.35 * r], fill=0)
        alpha = np.asarray(mask.resize((_W, _H), Image.BOX), np.float32)[..., None] / 255
        frames[t] = np.clip(bg * (1 - alpha) + colour * alpha + 0.5, 0, 255)
    return frames


def decode(path: Path) -> np.ndarray:
    """All frames of a video file as uint8 (T, H, W, 3) RGB (PyAV)."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


class _Classifier:
    """The saved model with its saved image processor: label of a decoded clip."""

    def __init__(self, model_dir: Path):
        import torch
        from transformers import VideoMAEForVideoClassification, VideoMAEImageProcessor

        self.torch = torch
        self.model = VideoMAEForVideoClassification.from_pretrained(model_dir).eval()
        self.processor = VideoMAEImageProcessor.from_pretrained(model_dir)
        self.frames = self.model.config.num_frames

    def __call__(self, frames: np.ndarray) -> str:
        idx = sample_indices(len(frames), self.frames, 4, "centre")
        inputs = self.processor(list(frames[idx]), return_tensors="pt")
        with self.torch.no_grad():
            logits = self.model(**inputs).logits
        return self.model.config.id2label[int(logits.argmax(-1))]


def _score(classify: _Classifier, items: list[tuple[Path, str]]) -> dict:
    right = flipped = shuffled_same = 0
    per_class = dict.fromkeys(LABELS, 0)
    rng = np.random.default_rng(0)
    for path, label in items:
        frames = decode(path)
        pred = classify(frames)
        right += pred == label
        per_class[label] += pred == label
        flipped += classify(frames[::-1]) == OPPOSITE[label]
        shuffled_same += classify(frames[rng.permutation(len(frames))]) == pred
    n = len(items)
    return {"clips": n, "accuracy": round(right / n, 4), "reverse_flip": round(flipped / n, 4),
            "shuffled_same": round(shuffled_same / n, 4),
            "per_class": {k: round(v * len(LABELS) / n, 4) for k, v in per_class.items()}}


def _runtime_figures(model_dir: Path, work: Path, sets: dict[str, list]) -> dict:
    """Export fp32 + dynamic int8 with `vidsort.export` and classify with the torch-free runtime."""
    from vidsort.classifier import VideoClassifier
    from vidsort.export.exporter import export_model

    onnx_dir = work / "onnx"
    export_model(model_dir, onnx_dir, quantize="dynamic", log=None)
    clfs = {p: VideoClassifier(onnx_dir, precision=p, backend="pyav", isolation=None)
            for p in ("fp32", "int8")}
    out = {}
    for name, items in sets.items():
        preds = {p: [clf(path, top_k=1)[0]["label"] for path, _ in items]
                 for p, clf in clfs.items()}
        truth = np.array([label for _, label in items])
        fp32, q8 = np.array(preds["fp32"]), np.array(preds["int8"])
        out[name] = {"runtime_fp32_accuracy": round(float(np.mean(fp32 == truth)), 4),
                     "int8_accuracy": round(float(np.mean(q8 == truth)), 4),
                     "int8_agrees_with_fp32": round(float(np.mean(q8 == fp32)), 4)}
    return out


def evaluate(model_dir: Path, clips_per_class: int, seed: int, int8: bool = True) -> dict:
    """Accuracy, reverse-flip rate and shuffle agreement on both renderers' H.264 files.

    Args:
        model_dir: a saved model directory.
        clips_per_class: clips per label, for each renderer.
        seed: seed of the evaluation clips (keep it away from the training seed).
        int8: also export with `vidsort.export` (fp32 + dynamic int8) and classify the same
            files with the torch-free runtime.

    Returns:
        ``{"own": {...}, "independent": {...}}``, each with clips, accuracy, reverse_flip (the
        share of reversed clips given the opposite class), shuffled_same (the share of
        frame-shuffled clips that keep their prediction) and, with ``int8``, the runtime's fp32
        accuracy, int8 accuracy and int8/fp32 agreement.
    """
    classify = _Classifier(Path(model_dir))
    with tempfile.TemporaryDirectory() as tmp:
        own = render_dataset(Path(tmp) / "own", clips_per_class, seed)
        result = {"own": _score(classify, own)}
        print("own renderer:", result["own"], flush=True)
        items = []
        for li, label in enumerate(LABELS):
            for j in range(clips_per_class):
                clip_seed = int(np.random.SeedSequence([seed, 99, li, j]).generate_state(1)[0])
                path = Path(tmp) / f"indep_{li}_{j}.mp4"
                items.append((write_frames(path, independent_clip(label, clip_seed), _FPS),
                              label))
        result["independent"] = _score(classify, items)
        print("independent renderer:", result["independent"], flush=True)
        if int8:
            runtime = _runtime_figures(Path(model_dir), Path(tmp),
                                       {"own": own, "independent": items})
            for name, figures in runtime.items():
                result[name].update(figures)
                print(name, "runtime:", figures, flush=True)
    return result


def _weakest(f: dict) -> str:
    worst = sorted(f.get("per_class", {}).items(), key=lambda kv: kv[1])[:3]
    return ", ".join(f'"{k}" {v:.0%}' for k, v in worst) or "n/a"


def _row(name: str, f: dict) -> str:
    keys = ("accuracy", "reverse_flip", "shuffled_same", "runtime_fp32_accuracy",
            "int8_accuracy", "int8_agrees_with_fp32")
    cells = [f"{f[k]:.1%}" if k in f else "n/a" for k in keys]
    return f"| {name} | {f['clips']} | " + " | ".join(cells) + " |"


def _stages_text(stages: list[dict]) -> str:
    lines = []
    for i, st in enumerate(stages, 1):
        head = f"{i}. `{st['command']}`" if len(stages) > 1 else f"`{st['command']}`"
        if "steps" in st:
            head += (f"  \n   {st['steps']} steps of {st['batch']} clips (AdamW, peak learning "
                     f"rate {st['lr']:g}, cosine schedule), {st['threads']} torch thread(s), "
                     f"{st['workers']} render process(es): **{st['train_seconds'] / 60:.1f} min**")
            if st.get("plain_share"):
                head += (f"; {st['plain_share']:.0%} of the clips a flat-coloured shape over "
                         "noise (only its outline and notch show a turn)")
        lines.append(head + ("." if "steps" in st else ""))
    if len(stages) > 1:
        lines.append("\nEach stage after the first fine-tunes the previous stage's model "
                     "(`--init DIR`, where the previous command wrote `--out DIR`).")
    return "\n".join(lines) + "\n"


def write_model_card(model_dir: Path, figures: dict) -> Path:
    """Write README.md (data, command, figures, time) into ``model_dir``."""
    own, ind = figures["own"], figures["independent"]
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    size = sum(p.stat().st_size for p in Path(model_dir).glob("*.safetensors"))
    text = f"""# tiny-motion

A tiny `VideoMAEForVideoClassification` ({cfg['num_frames']} frames, {cfg['image_size']} px,
patch {cfg['patch_size']}, tubelet {cfg['tubelet_size']}, hidden {cfg['hidden_size']},
{cfg['num_hidden_layers']} layers; {size / 1e6:.1f} MB of fp32 safetensors), trained from scratch
to tell eight motions apart: {", ".join(f'"{x}"' for x in LABELS)}. Directions are as seen on
screen. It is vidsort's embedded default model, so the main job runs offline on a fresh machine.
It knows nothing of real-world video: it is for demos, tests and quantization checks.

## Data
Clips of `vidsort.export.demo.synthetic`: one antialiased asymmetric shape (irregular polygons, stars,
arrows, blobs, notched disks and ellipses, pac-men) with solid, two-tone, striped, gradient or
dotted fill, over solid, noisy (frozen or fresh each frame), gradient or textured backgrounds;
240p to 480p in several aspect ratios, 24-30 fps, 2-4 s; translation 0.3-1 % of the width per
frame, rotation 3-8 degrees per frame, scaling 1-2 % per frame, the whole path on screen.
Training renders in memory only the frames it samples (runtime sampling: a window of
{cfg['num_frames']} x 4 frames, here at random positions and sometimes with stride 3), with
random resize-crops, flips/transposes and time reversal (each with the label it implies).

## Training
{_stages_text(figures["stages"])}
Seeded and reproducible, CPU only, on a 2-core machine shared with
other jobs. One tubelet spans all {cfg['num_frames']} frames, so each {cfg['patch_size']} px
patch token sees its pixels over the whole clip; the patch embedding is kept blind to anything
that stays still (its weights have zero mean over time), which no class depends on. Both were
needed: with 2-frame tubelets, or with background content in the tokens, training sat at chance.

## Accuracy
On real H.264 files (libx264) decoded from disk, `centre` sampling (8 frames, stride 4): PyTorch
with `VideoMAEImageProcessor`, and the torch-free runtime on the ONNX export (fp32 and dynamic
int8, `vidsort export --quantize dynamic`); measured by `python -m vidsort.export.demo.check_tiny_motion`:

| clips | count | accuracy (PyTorch) | reversed clips get the opposite class | shuffled frames keep the answer | ONNX fp32 accuracy | int8 accuracy | int8 agrees with fp32 |
| --- | --- | --- | --- | --- | --- | --- | --- |
{_row("held out, this renderer", own)}
{_row("independent renderer (PIL: notched shapes on noise, 320x240, 25 fps, 3 s)", ind)}

Weakest classes (held out / independent): {_weakest(own)} / {_weakest(ind)}.
Targets: 95 % held out, 90 % independent, int8 agreeing with fp32 on 95 %.
"""  # noqa: E501
    path = Path(model_dir) / "README.md"
    path.write_text(text)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: print the figures of a saved model as JSON."""
    ap = argparse.ArgumentParser(prog="python -m vidsort.export.demo.check_tiny_motion")
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--clips", type=int, default=16, help="clips per class and renderer")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--no-int8", action="store_true", help="skip the ONNX fp32/int8 figures")
    args = ap.parse_args(argv)
    figures = evaluate(args.model_dir, args.clips, args.seed, int8=not args.no_int8)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
