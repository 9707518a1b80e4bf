"""vidsort.export: Hugging Face video classifier → validated ONNX model directory.

Needs the ``export`` extra (torch, transformers, optimum-onnx). The runtime (``vidsort``) never
imports this package.

    from vidsort.export import export_model
    report = export_model("path/to/save_pretrained_dir", "out_dir", quantize="dynamic")
"""

from vidsort.export.exporter import ExportReport, export_model

__all__ = ["ExportReport", "export_model"]
