"""The CUDA path's code on CPU: IO binding (ORT binds CPU buffers too), CUDA-graph batching,
provider options from the table and SessionSettings, TensorRT's missing libraries."""

from __future__ import annotations

import numpy as np
import pytest
from vidsort import VideoClassifier
from vidsort.errors import ProviderUnavailableError
from vidsort.iobinding import SessionRunner, runner_for
from vidsort.providers import PROVIDERS_BY_NAME
from vidsort.session import SessionSettings, create_session, provider_options
from vidsort.testing.videogen import make_clip


@pytest.fixture(scope="module")
def session(exported_tiny_dir):
    return create_session(exported_tiny_dir / "model.onnx", "cpu", SessionSettings(threads=1))


def _batch(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 4, 3, 32, 32), dtype=np.float32)


def test_bound_runs_match_plain_runs(session):
    plain = SessionRunner(session, "pixel_values", "logits")
    bound = SessionRunner(session, "pixel_values", "logits", binding=True)
    for n in (1, 3, 1, 2):  # a shape seen before reuses its buffers
        x = _batch(n, seed=n)
        expected = session.run(["logits"], {"pixel_values": x})[0]
        np.testing.assert_array_equal(plain(x), expected)
        np.testing.assert_array_equal(bound(x), expected)
    assert bound.calls == 4 and len(bound._slots) == 3
    assert bound.pinned is False  # CPU buffers are not page-locked


def test_outputs_are_not_overwritten_by_the_next_call(session):
    bound = SessionRunner(session, "pixel_values", "logits", binding=True)
    first = bound(_batch(2, seed=1))
    kept = first.copy()
    bound(_batch(2, seed=2))
    np.testing.assert_array_equal(first, kept)


def test_stack_writes_the_batch_where_the_device_copy_reads_it(session):
    bound = SessionRunner(session, "pixel_values", "logits", binding=True)
    parts = [_batch(1, seed=5), _batch(2, seed=6)]
    stacked = bound.stack(parts)
    assert stacked is bound._slots[(3, 4, 3, 32, 32)].staging.array
    np.testing.assert_array_equal(stacked, np.concatenate(parts))
    expected = session.run(["logits"], {"pixel_values": np.concatenate(parts)})[0]
    np.testing.assert_array_equal(bound(stacked), expected)


def test_cuda_graph_mode_pads_and_chunks_to_one_batch(session):
    graph = SessionRunner(session, "pixel_values", "logits", binding=True, cuda_graph=True)
    x = _batch(5, seed=3)
    expected = session.run(["logits"], {"pixel_values": x})[0]
    np.testing.assert_allclose(graph(x[:2]), expected[:2], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(graph(x), expected, rtol=1e-6, atol=1e-6)  # 2 + 2 + 1 (padded)
    np.testing.assert_allclose(graph(x[:1]), expected[:1], rtol=1e-6, atol=1e-6)
    assert list(graph._slots) == [(2, 4, 3, 32, 32)]  # one shape: the one captured


def test_classifier_binds_on_gpu_providers_and_when_asked(session, exported_tiny_dir, tmp_path):
    assert runner_for(session, "pixel_values", "logits", "cuda", SessionSettings()).binding
    assert runner_for(session, "pixel_values", "logits", "cuda", SessionSettings()).device == \
        "cuda"
    assert not runner_for(session, "pixel_values", "logits", "cpu", SessionSettings()).binding
    video = make_clip(tmp_path / "clip.mp4", num_frames=16)
    plain = VideoClassifier(exported_tiny_dir, provider="cpu", precision="fp32", isolation=None)
    bound = VideoClassifier(exported_tiny_dir, provider="cpu", precision="fp32", isolation=None,
                            session_settings=SessionSettings(io_binding=True))
    assert not plain._runner.binding and bound._runner.binding
    assert bound(video) == plain(video)
    many = list(bound.classify_many([video, video, video], batch_size=2))
    expected = plain(video)
    for result in many:  # batched GEMMs round differently: same labels, scores within 1e-6
        assert [p["label"] for p in result["predictions"]] == [p["label"] for p in expected]
        np.testing.assert_allclose([p["score"] for p in result["predictions"]],
                                   [p["score"] for p in expected], atol=1e-6)
    assert bound._runner.calls == 3  # one call, then a batch of 2 and one of 1


def test_cuda_options_come_from_the_table_then_the_settings():
    defaults = provider_options("cuda", SessionSettings())
    table = PROVIDERS_BY_NAME["cuda"].default_options
    assert defaults["cudnn_conv_algo_search"] == table["cudnn_conv_algo_search"]
    assert defaults["enable_cuda_graph"] == "0" and defaults["device_id"] == "0"
    tuned = provider_options("cuda", SessionSettings(
        cuda_graph=True, cudnn_conv_algo_search="HEURISTIC", arena_extend_strategy=
        "kSameAsRequested", gpu_mem_limit_mb=1024, device_id=1,
        provider_options={"cuda": {"tunable_op_enable": True}}))
    assert tuned == {**defaults, "enable_cuda_graph": "1", "cudnn_conv_algo_search": "HEURISTIC",
                     "arena_extend_strategy": "kSameAsRequested",
                     "gpu_mem_limit": str(1024 << 20), "device_id": "1",
                     "tunable_op_enable": "1"}
    with pytest.raises(ValueError, match="cudnn_conv_algo_search"):
        SessionSettings(cudnn_conv_algo_search="FAST").check()
    with pytest.raises(ValueError, match="cuda_graph needs io_binding"):
        SessionSettings(cuda_graph=True, io_binding=False).check()
    assert SessionSettings(cuda_graph=True).uses_binding("cpu")


def test_tensorrt_options_profile_and_cache(tmp_path):
    options = provider_options("tensorrt", SessionSettings(trt_fp16=True, trt_batch=(1, 4, 16),
                                                           trt_cache_dir=str(tmp_path)),
                               input_spec=("pixel_values", (16, 3, 224, 224)))
    assert options["trt_fp16_enable"] == "1"
    assert options["trt_engine_cache_enable"] == "1"
    assert options["trt_engine_cache_path"] == options["trt_timing_cache_path"] == str(tmp_path)
    assert options["trt_profile_min_shapes"] == "pixel_values:1x16x3x224x224"
    assert options["trt_profile_opt_shapes"] == "pixel_values:4x16x3x224x224"
    assert options["trt_profile_max_shapes"] == "pixel_values:16x16x3x224x224"
    default_cache = provider_options("tensorrt", SessionSettings())["trt_engine_cache_path"]
    assert "~" not in default_cache and default_cache.endswith("vidsort/tensorrt")
    with pytest.raises(ValueError, match="trt_batch"):
        SessionSettings(trt_batch=(8, 1, 32)).check()


def test_tensorrt_without_its_libraries_is_a_clear_error(exported_tiny_dir, monkeypatch):
    import onnxruntime as ort

    # a build that lists TensorRT (as onnxruntime-gpu does) on a machine without libnvinfer
    real = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", *real])
    with pytest.raises(ProviderUnavailableError, match="libnvinfer.so.10") as info:
        create_session(exported_tiny_dir / "model.onnx", "tensorrt")
    assert "cannot be loaded" in str(info.value) and "\n" not in str(info.value)
    from vidsort.session import available_providers, provider_chain

    assert "tensorrt" not in available_providers()  # so `auto` skips it
    assert provider_chain("auto") == ["CPUExecutionProvider"]
