"""Models shipped inside vidsort.export, reachable by name wherever `vidsort export` takes one."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

#: name -> directory written by ``save_pretrained`` (config.json, weights, preprocessor_config.json)
EMBEDDED_MODELS: dict[str, Path] = {"tiny-motion": _HERE / "tiny-motion"}


def resolve_embedded(name: str) -> Path | None:
    """Return the directory of an embedded model called ``name``, or None if there is none."""
    path = EMBEDDED_MODELS.get(str(name))
    return path if path is not None and path.is_dir() else None
