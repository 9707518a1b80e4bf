"""ONNX export configs for video classifiers, registered with optimum-onnx's TasksManager.

optimum-onnx knows neither a ``video-classification`` task nor VideoMAE, TimeSformer or ViViT;
this module adds them in optimum's declarative style. Another architecture is one more small
config class with a ``@register_onnx("<model_type>", TASK)`` line, plus its row in
`vidsort.supported` (the runtime's side).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from optimum.exporters.onnx.base import OnnxConfig
from optimum.exporters.onnx.config import VisionOnnxConfig
from optimum.exporters.onnx.model_patcher import ModelPatcher, PatchingSpec
from optimum.exporters.tasks import TasksManager
from optimum.utils import DummyVisionInputGenerator, NormalizedVisionConfig
from vidsort.manifest import TASK

#: transformers' auto class for the task (what optimum calls a "model loader")
_TASK_LOADER = "AutoModelForVideoClassification"
#: name of the dynamic batch axis in the exported graph
BATCH_AXIS = "batch"


def _register_task() -> None:
    """Teach TasksManager and OnnxConfig the task; idempotent, so importing twice is harmless."""
    loaders = TasksManager._TRANSFORMERS_TASKS_TO_MODEL_LOADERS
    if TASK not in loaders:
        import transformers

        loaders[TASK] = _TASK_LOADER
        auto_class = getattr(transformers, _TASK_LOADER)
        # model_type -> model class name, the same mapping optimum builds for its own tasks
        TasksManager._TRANSFORMERS_TASKS_TO_MODEL_MAPPINGS[TASK] = dict(
            auto_class._model_mapping._model_mapping
        )
    OnnxConfig._TASK_TO_COMMON_OUTPUTS.setdefault(
        TASK, OrderedDict({"logits": {0: BATCH_AXIS}})
    )


_register_task()
register_onnx = TasksManager.create_register("onnx")


#: name under which `_fusable_attention` is registered with transformers' AttentionInterface
FUSABLE_ATTENTION = "vidsort_ort_fusable"


def _fusable_attention(module, query, key, value, attention_mask, scaling: float,
                       dropout: float = 0.0, **kwargs):
    """Eager attention, traced in the shape ONNX Runtime's transformer optimizer fuses.

    transformers' eager path scales with ``Mul`` and SDPA splits the scale over q and k; ORT's
    attention fusion (``fusion_attention.py``) only matches ``Softmax(Div(MatMul(q, k)))``, so the
    export writes the scale as a division. Same maths; validation checks parity against the
    untouched model.
    """
    weights = torch.matmul(query, key.transpose(-1, -2)) / (1.0 / scaling)
    weights = torch.softmax(weights, dim=-1)
    if attention_mask is not None:  # VideoMAE passes its head mask here
        weights = weights * attention_mask
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class FusableAttentionPatcher(ModelPatcher):
    """Export with `_fusable_attention` in place of the model's attention implementation."""

    def __enter__(self):
        self._saved_attn = []
        try:
            from transformers import AttentionInterface
        except ImportError:  # transformers < 4.48: attention is not pluggable; export it as is
            return super().__enter__()
        AttentionInterface.register(FUSABLE_ATTENTION, _fusable_attention)
        self._saved_attn = [(cfg, cfg._attn_implementation) for cfg in self._configs()]
        for cfg, _ in self._saved_attn:
            cfg._attn_implementation = FUSABLE_ATTENTION
        return super().__enter__()

    def __exit__(self, exc_type, exc_value, traceback):
        super().__exit__(exc_type, exc_value, traceback)
        for cfg, impl in self._saved_attn:
            cfg._attn_implementation = impl

    def _configs(self) -> list:
        seen: dict[int, object] = {}
        for module in self._model.modules():
            cfg = getattr(module, "config", None)
            if cfg is not None and hasattr(cfg, "_attn_implementation"):
                seen.setdefault(id(cfg), cfg)
        return list(seen.values())


class NormalizedVideoConfig(NormalizedVisionConfig):
    """Vision config plus the clip length (``num_frames``)."""

    NUM_FRAMES = "num_frames"


class DummyVideoInputGenerator(DummyVisionInputGenerator):
    """``pixel_values`` as a clip: (batch, num_frames, num_channels, height, width)."""

    SUPPORTED_INPUT_NAMES = ("pixel_values",)

    def __init__(self, task: str, normalized_config: NormalizedVideoConfig, **kwargs):
        super().__init__(task, normalized_config, **kwargs)
        self.num_frames = int(normalized_config.num_frames)

    def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64",
                 float_dtype: str = "fp32"):
        shape = [self.batch_size, self.num_frames, self.num_channels, self.height, self.width]
        return self.random_float_tensor(shape, framework=framework, dtype=float_dtype)


class VideoOnnxConfig(VisionOnnxConfig):
    """Base for video classifiers taking one clip tensor; only the batch axis is dynamic.

    Frames, channels and size are fixed by the checkpoint (position embeddings and the tubelet
    projection are built for one clip shape), so they stay static in the graph.
    """

    NORMALIZED_CONFIG_CLASS = NormalizedVideoConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyVideoInputGenerator,)
    _MODEL_PATCHER = FusableAttentionPatcher
    DEFAULT_ONNX_OPSET = 17
    # fp32 parity the export step insists on (the bar), not optimum's default 1e-5
    ATOL_FOR_VALIDATION = 1e-4

    #: ``model_type`` for onnxruntime.transformers.optimizer (None: no fusions known)
    ORT_OPTIMIZER_MODEL_TYPE: str | None = "vit"

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        return {"pixel_values": {0: BATCH_AXIS}}

    def ort_optimizer_args(self) -> dict[str, int]:
        """Attention geometry onnxruntime's transformer optimizer needs for its fusions."""
        return {"num_heads": int(self._config.num_attention_heads),
                "hidden_size": int(self._config.hidden_size)}


@register_onnx("videomae", TASK)
class VideoMAEOnnxConfig(VideoOnnxConfig):
    """VideoMAE (``VideoMAEForVideoClassification``): NTCHW clip in, ``logits`` out."""


@register_onnx("timesformer", TASK)
class TimesformerOnnxConfig(VideoOnnxConfig):
    """TimeSformer (``TimesformerForVideoClassification``): NTCHW clip in, ``logits`` out.

    Exports as it is, no patch. Its attention is not pluggable and projects q, k, v with one
    packed ``qkv`` Linear, which ONNX Runtime's attention fusion does not match: the optimizer
    fuses its LayerNorms and GELUs only (the attention stays plain MatMul/Softmax ops).
    """


def _vivit_embeddings_forward(self, pixel_values: torch.Tensor,
                              interpolate_pos_encoding: bool = False) -> torch.Tensor:
    """``VivitEmbeddings.forward`` with the class token broadcast by ``expand``, not ``tile``.

    Why: ``tile`` with a traced batch size exports as two ``If`` nodes (torch's rank check of the
    repeats), which ONNX Runtime's symbolic shape inference cannot see through; without shapes,
    ``quant_pre_process`` and then dynamic int8 quantization fail. ``expand`` gives the same
    tensor as one ``Expand`` node.
    """
    batch_size, _, _, height, width = pixel_values.shape
    embeddings = self.patch_embeddings(pixel_values,
                                       interpolate_pos_encoding=interpolate_pos_encoding)
    cls_tokens = self.cls_token.expand(batch_size, -1, -1)
    embeddings = torch.cat((cls_tokens, embeddings), dim=1)
    if interpolate_pos_encoding:
        embeddings = embeddings + self.interpolate_pos_encoding(embeddings, height, width)
    else:
        embeddings = embeddings + self.position_embeddings
    return self.dropout(embeddings)


@register_onnx("vivit", TASK)
class VivitOnnxConfig(VideoOnnxConfig):
    """ViViT (``VivitForVideoClassification``): NTCHW clip in, ``logits`` out.

    Attention is transformers' pluggable kind, so `FusableAttentionPatcher` applies as for
    VideoMAE; the embeddings get one patch (`_vivit_embeddings_forward`).
    """

    @property
    def PATCHING_SPECS(self) -> list[PatchingSpec]:  # noqa: N802 (optimum's attribute name)
        # a fresh list each time: optimum's ModelPatcher extends the list it is given
        from transformers.models.vivit.modeling_vivit import VivitEmbeddings

        return [PatchingSpec(VivitEmbeddings, "forward", _vivit_embeddings_forward)]


def supported_model_types() -> list[str]:
    """Model types (``config.model_type``) registered for the video-classification export."""
    registry = TasksManager._SUPPORTED_MODEL_TYPE
    return sorted(t for t, backends in registry.items() if TASK in backends.get("onnx", {}))


def onnx_config_for(config, task: str = TASK) -> VideoOnnxConfig:
    """Build the registered ONNX config for a transformers config.

    Args:
        config: a transformers ``PretrainedConfig`` whose ``model_type`` is supported.
        task: the export task (only ``video-classification`` today).

    Returns:
        The OnnxConfig instance optimum's exporter takes.
    """
    constructor = TasksManager.get_exporter_config_constructor(
        exporter="onnx", model_type=config.model_type, task=task, library_name="transformers"
    )
    return constructor(config)
