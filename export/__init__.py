"""vidsort.export: Hugging Face video classifier → validated ONNX model directory.

Needs the ``export`` extra (torch, transformers, optimum-onnx).
"""
