"""vidsort.export: Hugging Face video classifier → validated ONNX model directory.

Needs the ``export`` extra (torch, transformers, optimum-onnx). The runtime (``vidsort``) never
imports this package. Attributes load lazily, so ``vidsort.export.demo``'s renderer does not
pull torch in.

    from vidsort.export import export_model
    report = export_model("path/to/save_pretrained_dir", "out_dir", quantize="dynamic")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ExportReport", "export_model"]

if TYPE_CHECKING:  # pragma: no cover
    from vidsort.export.exporter import ExportReport, export_model  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vidsort.export import exporter

        value = getattr(exporter, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vidsort.export' has no attribute {name!r}")
