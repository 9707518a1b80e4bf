"""The offline demo and its embedded model (needs the export extra; the runtime never sees it).

- `embedded` — models shipped inside the package (``tiny-motion``), reachable by name wherever
  ``vidsort export`` takes a model.
- `synthetic`, `synthetic_layers` — the tiny-motion renderer (moving / rotating / scaling shapes).
- `train_tiny_motion`, `check_tiny_motion` — how the embedded model was trained and checked.
- `run` — ``vidsort demo``: export the embedded model, render clips, classify them torch-free.
"""
