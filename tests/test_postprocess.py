import numpy as np
import pytest
from vidsort.postprocess import apply_function, default_function, top_k_predictions

LABELS = ["a", "b", "c", "d"]


def test_softmax_top_k_sorted_and_sums_to_one():
    preds = top_k_predictions(np.array([0.5, 2.0, -1.0, 1.0]), LABELS, top_k=4)
    assert [p["label"] for p in preds] == ["b", "d", "a", "c"]
    scores = [p["score"] for p in preds]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0)
    e = np.exp([0.5, 2.0, -1.0, 1.0])
    assert scores[0] == pytest.approx(e[1] / e.sum())


def test_top_k_capped_and_functions():
    assert len(top_k_predictions(np.zeros(4), LABELS, top_k=10)) == 4
    sig = top_k_predictions(np.array([0.0, 100.0, -100.0, 0.0]), LABELS, 2, "sigmoid")
    assert sig[0] == {"label": "b", "score": pytest.approx(1.0)}
    raw = top_k_predictions(np.array([3.0, 1.0, 2.0, 0.0]), LABELS, 1, "none")
    assert raw == [{"label": "a", "score": 3.0}]


def test_softmax_is_stable_for_large_logits():
    assert np.isfinite(apply_function(np.array([1e4, 0.0]))).all()


def test_mismatched_labels_and_unknown_function():
    with pytest.raises(ValueError):
        top_k_predictions(np.zeros(3), LABELS)
    with pytest.raises(ValueError):
        apply_function(np.zeros(3), "relu")


def test_default_function_follows_problem_type():
    assert default_function("multi_label_classification") == "sigmoid"
    assert default_function(None) == "softmax"
