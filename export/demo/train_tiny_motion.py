"""Train the embedded ``tiny-motion`` model: a small VideoMAE on rendered motion clips (CPU).

    python -m vidsort.export.demo.train_tiny_motion --out export/demo/tiny-motion
    python -m vidsort.export.demo.train_tiny_motion --init DIR --out DIR2 --lr 3e-4 \
        --plain-share 0.5

The shipped model is one from-scratch stage and fine-tuning stages (``--init``) that show the
hardest case more often (``--plain-share``); every stage's command is recorded in the model's
``training.json`` and model card.

Data: `synthetic` clips, rendered in memory, only the frames each step samples. Every
clip is sampled like the runtime samples a video (a window of ``8 * 4`` frames, see
`vidsort.sampling`; here at a random position and now and then with stride 3) and
preprocessed exactly like ``VideoMAEImageProcessor`` (bilinear shortest-edge resize, crop,
ImageNet mean/std); augmentations: random resize-crops, the eight flips/transposes of the square
crop and time reversal, each with the label it implies. Each clip is used forwards and backwards
in the same batch, which teaches the direction of time directly.

Reproducible: every sample's content follows from ``--seed`` and its step, whatever the number
of render workers; torch is seeded and single-threaded by default (on 2 shared cores one torch
thread trains faster than two). After training, `vidsort.export.demo.check_tiny_motion` measures the
model on H.264 files decoded from disk and the figures go into the model card.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from vidsort.export.demo.synthetic import LABELS, OPPOSITE, clip_params, draw_frames
from vidsort.sampling import sample_indices

IMAGE_SIZE = 64
TRAINING_RECORD = "training.json"  # saved with the model: how it was trained, stage by stage
NUM_FRAMES = 8
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# One tubelet spans all frames: each 8x8 patch token sees its pixels over the whole clip, so the
# linear patch embedding can hold space-time (motion) filters. With tubelets of 2 frames and
# 16 px patches the model sat at chance for hundreds of steps; tubelets of 4 frames learnt far
# slower too. Six layers rather than three: the turn's direction needs tokens to combine
# (probes of 1000 steps: rotation clips 52% right instead of 35%); wider layers, larger
# inputs (96-128 px at the same 8x8 tokens) or 16 px patches did not help.
MODEL_CONFIG = {"image_size": IMAGE_SIZE, "num_frames": NUM_FRAMES, "patch_size": 8,
                "tubelet_size": NUM_FRAMES, "hidden_size": 128, "num_hidden_layers": 6,
                "num_attention_heads": 4, "intermediate_size": 256, "use_mean_pooling": True,
                "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
# a label under a horizontal flip (x -> -x), a vertical flip and a transpose (x <-> y) of frames
_HFLIP = {"moving left": "moving right", "moving right": "moving left",
          "rotating clockwise": "rotating counterclockwise",
          "rotating counterclockwise": "rotating clockwise"}
_VFLIP = {"moving up": "moving down", "moving down": "moving up",
          "rotating clockwise": "rotating counterclockwise",
          "rotating counterclockwise": "rotating clockwise"}
_TRANSPOSE = {"moving left": "moving up", "moving up": "moving left",
              "moving right": "moving down", "moving down": "moving right",
              "rotating clockwise": "rotating counterclockwise",
              "rotating counterclockwise": "rotating clockwise"}


# The direction of a turn is what this model learns last and worst: show turns more often.
_CLASS_SHARE = np.array([1, 1, 1, 1, 1.75, 1.75, 1, 1]) / 9.5


def build_model(seed: int):
    """A freshly initialised `VideoMAEForVideoClassification` with the eight motion labels.

    Args:
        seed: torch seed for the initial weights.

    Returns:
        The model, in train mode.
    """
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    torch.manual_seed(seed)
    config = VideoMAEConfig(**MODEL_CONFIG, num_labels=len(LABELS),
                            id2label=dict(enumerate(LABELS)),
                            label2id={label: i for i, label in enumerate(LABELS)})
    return VideoMAEForVideoClassification(config)


def _static_blind(model) -> None:
    """Zero the temporal mean of the patch-embedding weights (in place).

    A token then ignores whatever stays still over the clip (any background), which no class
    depends on; without it the motion signal drowned in background content early in training.
    The trained weights keep the property, so the saved model is a plain VideoMAE.
    """
    import torch

    conv = model.videomae.embeddings.patch_embeddings.projection
    with torch.no_grad():
        conv.weight -= conv.weight.mean(dim=2, keepdim=True)  # (out, in, time, h, w)


def image_processor():
    """The `VideoMAEImageProcessor` saved with the model (and equal to `resize_crop`)."""
    from transformers import VideoMAEImageProcessor

    return VideoMAEImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                  crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                  resample=Image.BILINEAR, image_mean=list(IMAGENET_MEAN),
                                  image_std=list(IMAGENET_STD))


def resize_crop(frames: np.ndarray, size: int = IMAGE_SIZE, short: int | None = None,
                offset: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
    """Resize the shortest edge to ``short`` (PIL bilinear) and crop a ``size`` square.

    With the defaults this equals ``VideoMAEImageProcessor``'s resize and centre crop.

    Args:
        frames: uint8 (T, H, W, 3).
        size: side of the square crop.
        short: shortest edge after resizing (>= size); None means ``size``.
        offset: where the crop sits in the slack, 0..1 per axis (rows, columns).

    Returns:
        uint8 (T, size, size, 3).
    """
    short = short or size
    _, h, w, _ = frames.shape
    nh, nw = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
    top, left = int((nh - size) * offset[0]), int((nw - size) * offset[1])
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, frame in enumerate(frames):
        img = np.asarray(Image.fromarray(frame).resize((nw, nh), Image.BILINEAR))
        out[i] = img[top:top + size, left:left + size]
    return out


def normalise(clips: np.ndarray):
    """uint8 (B, T, S, S, 3) → float tensor (B, T, 3, S, S): 1/255, then ImageNet mean/std."""
    import torch

    x = torch.from_numpy(clips).float().div_(255.0)
    x = (x - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    return x.permute(0, 1, 4, 2, 3).contiguous()


def _flip(clip: np.ndarray, label: str, k: int) -> tuple[np.ndarray, str]:
    """Apply dihedral transform ``k`` (0..7) of the square frames; return the implied label."""
    if k & 1:
        clip, label = clip[:, :, ::-1], _HFLIP.get(label, label)
    if k & 2:
        clip, label = clip[:, ::-1], _VFLIP.get(label, label)
    if k & 4:
        clip, label = clip.transpose(0, 2, 1, 3), _TRANSPOSE.get(label, label)
    return np.ascontiguousarray(clip), label


def make_sample(sample_seed: int, plain_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One rendered clip, forwards and backwards: uint8 (2, T, S, S, 3) and label ids (2,).

    Args:
        sample_seed: seed of everything in the sample.
        plain_share: how often the shape is drawn in one flat colour over a noisy background,
            the hardest case: only its outline and notch move, no texture inside it does.
    """
    rng = np.random.default_rng(sample_seed)
    label = LABELS[int(rng.choice(len(LABELS), p=_CLASS_SHARE))]
    plain = plain_share > 0 and rng.random() < plain_share  # no draw: stage 1 reproduces
    params = clip_params(label, int(rng.integers(2**31)), style="noisy" if plain else None,
                         fill="solid" if plain else None)
    if rng.random() < 0.75:
        # Mostly drawn small: the same clip (speeds and sizes are relative) at a fraction of the
        # cost; the rest at full size so the model also sees native noise and edges.
        scale = rng.uniform(1.5, 2.75) * IMAGE_SIZE / min(params["width"], params["height"])
        params = _scaled(params, scale)
    rate = int(rng.choice([3, 4, 4, 4]))  # 5 would alias the fastest turns of some shapes
    idx = sample_indices(params["num_frames"], NUM_FRAMES, rate, "random",
                         seed=int(rng.integers(2**31)))
    frames = draw_frames(params, idx)
    short = IMAGE_SIZE if rng.random() < 0.4 else int(
        rng.integers(IMAGE_SIZE, IMAGE_SIZE * 5 // 4 + 1))
    clip = resize_crop(frames, IMAGE_SIZE, short, tuple(rng.uniform(0, 1, 2)))
    clip, label = _flip(clip, label, int(rng.integers(8)))
    back = np.ascontiguousarray(clip[::-1])
    ids = np.array([LABELS.index(label), LABELS.index(OPPOSITE[label])])
    return np.stack([clip, back]), ids


def _scaled(params: dict, scale: float) -> dict:
    """The same clip plan drawn at ``scale`` times the size (even dimensions)."""
    p = dict(params)
    w, h = (max(2, 2 * round(params[k] * scale / 2)) for k in ("width", "height"))
    sx, sy = w / params["width"], h / params["height"]
    p["width"], p["height"] = w, h
    p["centres"] = params["centres"] * np.array([sx, sy], np.float32)
    p["radii"] = params["radii"] * np.float32(min(sx, sy))
    return p


def batches(seed: int, steps: int, batch: int, workers: int, plain_share: float = 0.0):
    """Yield ``steps`` batches (uint8 clips, label ids), each a function of (seed, step) only."""
    per = batch // 2
    seeds = (int(np.random.SeedSequence([seed, s, i]).generate_state(1)[0])
             for s in range(steps) for i in range(per))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        pending_x, pending_y = [], []
        make = functools.partial(make_sample, plain_share=plain_share)
        for x, y in pool.imap(make, seeds, chunksize=4):
            pending_x.append(x)
            pending_y.append(y)
            if len(pending_x) == per:
                yield np.concatenate(pending_x), np.concatenate(pending_y)
                pending_x, pending_y = [], []


def train(steps: int, batch: int, lr: float, seed: int, workers: int, threads: int,
          log_every: int = 50, init: Path | None = None, plain_share: float = 0.0):
    """Train a fresh model, or fine-tune the one in ``init``.

    Args:
        steps: optimiser steps.
        batch: clips per step (half rendered, half their reversals).
        lr: peak learning rate (AdamW, linear warm-up, cosine decay).
        seed: seed of the weights and of the data.
        workers: render processes.
        threads: torch threads.
        log_every: print the running loss and accuracy every this many steps.
        init: start from this saved model (a second, fine-tuning stage) instead of fresh weights.
        plain_share: see `make_sample`.

    Returns:
        ``(model, seconds)``: the trained model in eval mode and the wall time taken.
    """
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    if init is None:
        model = build_model(seed)
    else:
        from transformers import VideoMAEForVideoClassification

        model = VideoMAEForVideoClassification.from_pretrained(init)
    _static_blind(model)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    other = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": other, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98))
    warm = max(1, steps // 20)

    def schedule(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + np.cos(np.pi * (step - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    start = time.perf_counter()
    run_loss, run_acc = 0.0, 0.0
    for step, (x, y) in enumerate(batches(seed, steps, batch, workers, plain_share)):
        logits = model(pixel_values=normalise(x)).logits
        target = torch.from_numpy(y)
        loss = loss_fn(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        _static_blind(model)
        run_loss += float(loss.detach())
        run_acc += float((logits.argmax(1) == target).float().mean())
        if (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}  loss {run_loss / log_every:.3f}  "
                  f"acc {run_acc / log_every:.3f}  {time.perf_counter() - start:.0f} s",
                  flush=True)
            run_loss, run_acc = 0.0, 0.0
    model.eval()
    return model, time.perf_counter() - start


def earlier_stages(init: Path | None) -> list[dict]:
    """The training stages recorded with the model ``init`` starts from (none from scratch)."""
    if init is None:
        return []
    record = Path(init) / TRAINING_RECORD
    if not record.is_file():
        return [{"command": f"(unrecorded training of {init})"}]
    return json.loads(record.read_text())["stages"]


def main(argv: list[str] | None = None) -> int:
    """Command line: train, save the model directory, evaluate and write the model card."""
    ap = argparse.ArgumentParser(prog="python -m vidsort.export.demo.train_tiny_motion",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="model directory to write")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="render processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--plain-share", type=float, default=0.0,
                    help="share of clips with a flat-coloured shape over noise (see make_sample)")
    ap.add_argument("--init", type=Path, default=None,
                    help="fine-tune this saved model instead of training from scratch")
    ap.add_argument("--eval-clips", type=int, default=16,
                    help="held-out clips per class, for each of the two renderers")
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation and model card")
    args = ap.parse_args(argv)
    stages = earlier_stages(args.init)  # read first: --out may be --init
    model, seconds = train(args.steps, args.batch, args.lr, args.seed, args.workers,
                           args.threads, init=args.init, plain_share=args.plain_share)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    image_processor().save_pretrained(args.out)
    command = "python -m vidsort.export.demo.train_tiny_motion " + " ".join(
        sys.argv[1:] if argv is None else argv)
    stage = {"command": command, "steps": args.steps, "batch": args.batch, "lr": args.lr,
             "seed": args.seed, "plain_share": args.plain_share, "threads": args.threads,
             "workers": args.workers, "train_seconds": round(seconds, 1)}
    stages = stages + [stage]
    (args.out / TRAINING_RECORD).write_text(json.dumps({"stages": stages}, indent=1) + "\n")
    for path in args.out.iterdir():  # safetensors writes 0600; package data must be readable
        path.chmod(0o644)
    print(f"trained in {seconds:.0f} s; saved to {args.out}", flush=True)
    if args.no_eval:
        return 0
    from vidsort.export.demo.check_tiny_motion import evaluate, write_model_card

    figures = evaluate(args.out, args.eval_clips, seed=args.seed + 1000)
    figures["stages"] = stages
    print(json.dumps(figures, indent=1))
    write_model_card(args.out, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
