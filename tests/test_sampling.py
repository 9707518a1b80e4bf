import numpy as np
import pytest
from vidsort.sampling import sample_indices


def seed_formula(n, clip_len, rate, start):
    # The seed recipe's sample_frame_indices with a given window start.
    conv = clip_len * rate
    end = start + conv
    return np.clip(np.linspace(start, end, num=clip_len), start, end - 1).astype(np.int64)


@pytest.mark.parametrize("n", [64, 65, 100, 300, 1000])
def test_centre_is_the_seed_window_in_the_middle(n):
    idx = sample_indices(n, 16, 4)
    assert idx.dtype == np.int64 and idx.shape == (16,)
    np.testing.assert_array_equal(idx, seed_formula(n, 16, 4, (n - 64) // 2))
    # centred: equal margins up to one frame
    assert abs(idx[0] - (n - 1 - idx[-1])) <= 4


@pytest.mark.parametrize("n", [1, 2, 15, 32, 63])
def test_short_videos_stretch_over_all_frames(n):
    idx = sample_indices(n, 16, 4)
    assert idx.shape == (16,)
    assert idx.min() == 0 and idx.max() == n - 1
    assert np.all(np.diff(idx) >= 0)


def test_one_frame_video_repeats_its_frame():
    np.testing.assert_array_equal(sample_indices(1, 8), np.zeros(8, np.int64))


def test_start_matches_transformers_pipeline():
    # VideoClassificationPipeline.preprocess: linspace(0, num_frames * rate - 1, num_frames)
    for rate in (1, 4):
        expected = np.linspace(0, 16 * rate - 1, num=16, dtype=np.int64)
        np.testing.assert_array_equal(sample_indices(500, 16, rate, strategy="start"), expected)
    assert sample_indices(10, 16, 4, strategy="start").max() == 9


def test_random_is_seeded_and_follows_the_seed_recipe():
    a = sample_indices(300, 16, 4, strategy="random", seed=3)
    b = sample_indices(300, 16, 4, strategy="random", seed=3)
    np.testing.assert_array_equal(a, b)
    end = int(np.random.default_rng(3).integers(64, 300))
    np.testing.assert_array_equal(a, seed_formula(300, 16, 4, end - 64))
    starts = {int(sample_indices(300, 16, 4, strategy="random", seed=s)[0]) for s in range(20)}
    assert len(starts) > 5


def test_uniform_covers_the_whole_video():
    idx = sample_indices(300, 16, strategy="uniform")
    assert idx[0] == 0 and idx[-1] == 299


def test_multi_clip_windows_are_evenly_spaced_and_in_range():
    clips = sample_indices(300, 16, 4, num_clips=3)
    assert clips.shape == (3, 16)
    assert clips[0, 0] == 0 and clips[-1, -1] == 299
    np.testing.assert_array_equal(clips[1], sample_indices(300, 16, 4))
    for strategy in ("centre", "start", "random", "uniform"):
        for n in (1, 20, 300):
            c = sample_indices(n, 16, 4, strategy=strategy, seed=0, num_clips=4)
            assert c.shape == (4, 16) and c.min() >= 0 and c.max() < n


@pytest.mark.parametrize("bad", [dict(num_video_frames=0), dict(strategy="middle"),
                                 dict(clip_len=0), dict(num_clips=0)])
def test_bad_arguments_raise(bad):
    kwargs = dict(num_video_frames=10, clip_len=4) | bad
    with pytest.raises(ValueError):
        sample_indices(**kwargs)
