"""Decode stage: frames by index from both backends, odd files, hostile files, limits.

Videos are made here with PyAV. Most use `index_frames`, which draws each frame's own index into
it, so a test can read back *which* frame a decoder returned, whatever the codec did to pixels.
"""

from __future__ import annotations

import os
import threading
import zipfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from vidsort.decode import BACKENDS, DecodeLimits, probe, read_frames
from vidsort.errors import (
    NoVideoStreamError,
    ResourceLimitError,
    UnsupportedInputError,
    VideoDecodeError,
    VideoError,
    VideoNotFoundError,
)
from vidsort.sampling import sample_indices
from vidsort.testing.videogen import (
    frame_index,
    index_frames,
    make_clip,
    pattern_frames,
    remux,
    write_audio,
    write_cover_art_mp3,
    write_solid_yuv,
    write_video,
    write_video_pts,
)

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config at info level

SHARED = Path(__file__).parents[2].parent / "shared" / "videos"
X265 = {"x265-params": "log-level=error"}


def centre(n: int) -> np.ndarray:
    return sample_indices(n, 16, 4)


def ids(frames: np.ndarray) -> list[int]:
    return [frame_index(f) for f in frames]


# -- the codec matrix --------------------------------------------------------------------------

# name, frames, width, height, writer kwargs
MATRIX = [
    ("h264.mp4", 40, 64, 48, {"codec": "libx264"}),
    ("hevc.mp4", 40, 64, 48, {"codec": "libx265", "options": X265}),
    ("hevc10.mkv", 40, 64, 48, {"codec": "libx265", "pix_fmt": "yuv420p10le", "options": X265}),
    ("vp9.webm", 40, 64, 48, {"codec": "libvpx-vp9"}),
    ("av1.mp4", 40, 64, 48, {"codec": "libsvtav1"}),
    ("mjpeg.avi", 40, 64, 48, {"codec": "mjpeg", "pix_fmt": "yuvj420p"}),
    ("mpeg4.avi", 40, 64, 48, {"codec": "mpeg4"}),
    ("grey.mkv", 40, 64, 48, {"codec": "ffv1", "pix_fmt": "gray"}),
    ("odd 33x17.mkv", 30, 33, 17, {"codec": "libx264", "pix_fmt": "yuv444p"}),
    ("portrait.mp4", 30, 48, 96, {"codec": "libx264"}),
    ("été vidéo ü.mp4", 30, 64, 48, {"codec": "libx264"}),
]


@pytest.fixture(scope="module")
def matrix_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("matrix")
    for name, n, w, h, kwargs in MATRIX:
        frames = index_frames(n, w, h)
        if kwargs.get("pix_fmt") == "gray":
            frames = frames[..., 0]
        write_video(root / name, frames, **kwargs)
    return root


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,n,w,h,kwargs", MATRIX, ids=[m[0] for m in MATRIX])
def test_codec_matrix_returns_the_requested_frames(matrix_dir, backend, name, n, w, h, kwargs):
    clip = read_frames(matrix_dir / name, centre, backend=backend)
    assert clip.frames.dtype == np.uint8
    assert clip.frames.shape == (16, h, w, 3)
    assert clip.num_video_frames == n
    np.testing.assert_array_equal(clip.indices, centre(n))
    assert ids(clip.frames) == clip.indices.tolist()
    # Pixels too, not only the index: black/white cells survive any of these codecs closely.
    expected = index_frames(n, w, h)[clip.indices].astype(np.int16)
    assert np.abs(clip.frames.astype(np.int16) - expected).mean() < 12
    assert clip.backend in BACKENDS
    assert (clip.fallback is None) == (clip.backend == backend)


def test_decord_errors_fall_back_to_pyav_with_a_reason(matrix_dir, tmp_path):
    # decord 3.4 cannot copy frames whose RGB rows are padded (48 px wide, 2x2 px).
    tiny = make_clip(tmp_path / "tiny.mp4", 10, 2, 2)
    for path in (matrix_dir / "portrait.mp4", tiny):
        clip = read_frames(path, centre, backend="decord")
        assert clip.backend == "pyav"
        assert clip.fallback and clip.fallback.startswith("decord failed:")
        assert "\n" not in clip.fallback and "/project/src" not in clip.fallback


def test_two_by_two_pixels(tmp_path):
    path = write_video(tmp_path / "2x2.mp4", index_frames(12, 2, 2), options={"crf": "0"})
    for backend in BACKENDS:
        clip = read_frames(path, lambda n: np.arange(n), backend=backend)
        assert clip.frames.shape == (12, 2, 2, 3)
        assert ids(clip.frames) == list(range(12))


def test_one_frame_video(tmp_path):
    path = write_video(tmp_path / "one.mp4", index_frames(1, 64, 48))
    for backend in BACKENDS:
        clip = read_frames(path, centre, backend=backend)
        assert clip.num_video_frames == 1
        assert clip.frames.shape == (16, 48, 64, 3)
        assert ids(clip.frames) == [0] * 16


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate(tmp_path, suffix):
    rng = np.random.default_rng(1)
    gaps = rng.choice([1, 2, 3, 7], size=60)
    pts = (np.cumsum(gaps) - gaps[0]).tolist()
    path = write_video_pts(tmp_path / f"vfr{suffix}", index_frames(60, 64, 48), pts)
    wanted = np.array([59, 3, 31, 31, 12, 47])
    for backend in BACKENDS:
        clip = read_frames(path, lambda n: wanted, backend=backend)
        assert clip.num_video_frames == 60  # frames are counted, not duration x rate
        assert ids(clip.frames) == wanted.tolist()


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    frames = index_frames(10, 80, 48)
    path = write_video_pts(tmp_path / "rot.mp4", frames, list(range(10)), time_base=Fraction(1, 25),
                           rotation=rotation)
    expected = np.rot90(frames, k=rotation // 90, axes=(1, 2))
    for backend in BACKENDS:
        clip = read_frames(path, lambda n: np.array([1, 7]), backend=backend)
        assert clip.frames.shape == (2, *expected.shape[1:])
        assert (clip.width, clip.height) == (expected.shape[2], expected.shape[1])
        assert np.abs(clip.frames.astype(int) - expected[[1, 7]]).mean() < 12


# -- decord's silent mistakes ------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs", [
    ("hevc_gop15.mp4", {"codec": "libx265",
                        "options": {"x265-params": "log-level=error:keyint=15:min-keyint=15"}}),
    ("h264_bframes.avi", {"codec": "libx264", "options": {"g": "12", "bf": "3"}}),
    ("mpeg4_bframes.mp4", {"codec": "mpeg4", "options": {"g": "12", "bf": "2"}}),
    ("mpeg2.ts", {"codec": "mpeg2video", "options": {"g": "12", "bf": "2"}}),
    ("mpeg2.mpg", {"codec": "mpeg2video", "options": {"g": "12", "bf": "2"}}),
    ("h264.flv", {"codec": "libx264", "options": {"g": "12"}}),
])
def test_keyframe_seeks_land_on_the_right_frames(tmp_path, name, kwargs):
    """Many keyframes, B-frames, open GOPs: where decord returns wrong frames (off by 1 to 60)
    the default backend must not use it, and PyAV's seeks must be exact."""
    path = write_video(tmp_path / name, index_frames(120, 64, 48), **kwargs)
    rng = np.random.default_rng(0)
    requests = [np.sort(rng.integers(0, 120, size=6)) for _ in range(4)]
    requests += [np.arange(119, -1, -7), centre(120)]
    for backend in BACKENDS:
        for wanted in requests:
            clip = read_frames(path, lambda n, w=wanted: w, backend=backend)
            assert ids(clip.frames) == wanted.tolist(), (backend, clip.fallback)


def test_seeking_decodes_only_from_the_keyframe_before(tmp_path):
    path = write_video(tmp_path / "long.mp4", index_frames(300, 64, 48), options={"g": "25"})
    clip = read_frames(path, lambda n: np.array([n - 2, n - 1]), backend="pyav")
    assert ids(clip.frames) == [298 % 256, 299 % 256]  # index_frames counts modulo 256
    assert clip.frames_decoded is not None and clip.frames_decoded <= 25 + 4
    # A window in the middle: from its keyframe (at most 24 before) to its last frame.
    clip = read_frames(path, centre, backend="pyav")
    assert clip.frames_decoded <= (clip.indices.max() - clip.indices.min() + 1) + 25
    # The limit on decoded frames is enforced by both backends (decord: from its keyframe index).
    limits = DecodeLimits(max_frames=30)
    for backend in BACKENDS:
        assert ids(read_frames(path, lambda n: np.array([n - 1]), backend=backend,
                               limits=limits).frames) == [299 % 256]
    single_gop = write_video(tmp_path / "gop1.mp4", index_frames(300, 64, 48),
                             options={"g": "1000", "sc_threshold": "0"})
    for backend in BACKENDS:
        with pytest.raises(ResourceLimitError, match="max_frames"):
            read_frames(single_gop, lambda n: np.array([n - 1]), backend=backend, limits=limits)


# sc_threshold 0: no scene-cut IDRs (index_frames changes a lot between frames)
AVI_H264 = [
    ("bframes.avi", {"g": "48", "bf": "3", "sc_threshold": "0"}),
    ("pyramid_gops.avi", {"g": "12", "bf": "3", "x264-params": "b-pyramid=normal",
                          "sc_threshold": "0"}),
    ("slices.avi", {"bf": "2", "x264-params": "slices=3", "sc_threshold": "0"}),
    ("no_b.avi", {"bf": "0", "g": "20", "sc_threshold": "0"}),  # x264 then uses POC type 2
    # one IDR for 150 frames: the 6-bit POC LSB x264 writes wraps around several times
    ("one_gop.avi", {"g": "300", "bf": "2", "sc_threshold": "0"}),
]


@pytest.mark.parametrize("name,options", AVI_H264, ids=[a[0] for a in AVI_H264])
def test_h264_picture_order_matches_the_decoder(tmp_path, name, options):
    """The presentation order read from slice headers is the order the decoder outputs."""
    import av
    from vidsort.decode.h264_order import PocReader

    path = write_video(tmp_path / name, index_frames(150, 64, 48), codec="libx264",
                       options=options)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        reader = PocReader(stream.codec_context.extradata)
        pts = []
        for packet in container.demux(stream):
            if packet.size:
                reader.add(bytes(packet))
                pts.append(packet.pts)
    ranks = reader.ranks()
    assert ranks is not None, reader.failed
    with av.open(str(path)) as container:
        out = [frame.pts for frame in container.decode(video=0)]
    rank_of = dict(zip(pts, ranks, strict=True))
    assert [rank_of[p] for p in out] == list(range(150))
    # and the reader finds frames by it, skipping unwanted non-reference pictures
    clip = read_frames(path, centre, backend="pyav")
    assert ids(clip.frames) == clip.indices.tolist()
    if options.get("bf") != "0":
        assert clip.frames_decoded < clip.indices.max() + 1


def test_misread_picture_order_falls_back_to_counting(tmp_path, monkeypatch):
    from vidsort.decode.h264_order import PocReader

    path = write_video(tmp_path / "b.avi", index_frames(120, 64, 48), codec="libx264",
                       options={"g": "48", "bf": "3"})
    true_ranks = PocReader.ranks

    def swapped(self):  # two frames' places exchanged, as a misparsed header would
        ranks = true_ranks(self)
        ranks[50], ranks[60] = ranks[60], ranks[50]
        return ranks

    monkeypatch.setattr(PocReader, "ranks", swapped)
    for wanted in (np.arange(120), centre(120)):
        clip = read_frames(path, lambda n, w=wanted: w, backend="pyav")
        assert ids(clip.frames) == wanted.tolist()


@pytest.mark.parametrize("name,kwargs", [
    ("h264_bframes.mp4", {"codec": "libx264", "options": {"g": "48", "bf": "3"}}),
    ("hevc_bframes.mkv", {"codec": "libx265",
                          "options": {"x265-params": "log-level=error:keyint=48:bframes=3"}}),
])
def test_pyav_skips_unwanted_non_reference_frames(tmp_path, name, kwargs):
    """A centre window wants one frame in four: non-reference B-frames between them are not
    decoded at all, and the frames returned are still exactly the ones asked for."""
    path = write_video(tmp_path / name, index_frames(120, 64, 48), **kwargs)
    clip = read_frames(path, centre, backend="pyav")
    assert ids(clip.frames) == clip.indices.tolist()
    span = clip.indices.max() + 1  # from the first keyframe (index 0) to the window's end
    assert clip.frames_decoded is not None and clip.frames_decoded < 0.8 * span
    everything = read_frames(path, lambda n: np.arange(n), backend="pyav")
    np.testing.assert_array_equal(clip.frames, everything.frames[clip.indices])


def test_large_b_frame_streams_are_read_by_pyav_with_decords_pixels(tmp_path):
    """From 720p up, a B-frame stream goes to PyAV (it skips the unwanted B-frames; decord
    would decode them all): the reason is reported and the pixels are decord's."""
    from vidsort.decode.decord_backend import read_decord

    path = write_video(tmp_path / "hd.mp4", pattern_frames(40, 1280, 720),
                       options={"g": "20", "bf": "2", "preset": "ultrafast", "tune": "fastdecode"})
    clip = read_frames(path, centre, backend="decord")
    assert clip.backend == "pyav" and "faster" in clip.fallback
    frames, indices, _ = read_decord(str(path), centre, 0, None, None)
    np.testing.assert_array_equal(indices, clip.indices)
    np.testing.assert_array_equal(frames, clip.frames)
    small = write_video(tmp_path / "sd.mp4", pattern_frames(40, 320, 240),
                        options={"g": "20", "bf": "2"})
    assert read_frames(small, centre, backend="decord").backend == "decord"


def test_decord_frames_without_a_copy(matrix_dir):
    own = read_frames(matrix_dir / "h264.mp4", centre, backend="decord")
    view = read_frames(matrix_dir / "h264.mp4", centre, backend="decord", copy=False)
    assert own.backend == view.backend == "decord"
    np.testing.assert_array_equal(own.frames, view.frames)
    assert own.frames.flags.writeable and not view.frames.flags.writeable


# -- both backends agree -----------------------------------------------------------------------

def test_backends_give_the_same_pixels(tmp_path):
    path = write_video(tmp_path / "pattern.mp4", pattern_frames(48, 128, 96), options={"g": "10"})
    a = read_frames(path, centre, backend="decord")
    b = read_frames(path, centre, backend="pyav")
    assert a.backend == "decord" and b.backend == "pyav"
    np.testing.assert_array_equal(a.indices, b.indices)
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 1.0


@pytest.mark.parametrize("tagged_709", [True, False])
def test_colour_matrix_follows_the_stream_tags(tmp_path, tagged_709):
    """BT.709 where the stream says so, BT.601 where it says nothing (as FFmpeg does); using the
    other matrix would be off by ~9 levels on average on these patches."""
    rgb = write_solid_yuv(tmp_path / "colour.mp4", tagged_709)
    for backend in BACKENDS:
        clip = read_frames(tmp_path / "colour.mp4", lambda n: np.array([1]), backend=backend)
        assert clip.backend == backend
        assert np.abs(clip.frames[0].astype(int) - rgb).mean() < 2


def test_resize_to(tmp_path):
    path = write_video(tmp_path / "pattern.mp4", pattern_frames(20, 128, 96))
    clips = [read_frames(path, centre, backend=b, resize_to=(40, 30)) for b in BACKENDS]
    assert [clip.backend for clip in clips] == list(BACKENDS)
    for clip in clips:
        assert clip.frames.shape == (16, 30, 40, 3)
    # Both scale with swscale's bicubic filter.
    assert np.abs(clips[0].frames.astype(int) - clips[1].frames.astype(int)).mean() < 1.0


@pytest.mark.skipif(not (SHARED / "clip_340x256_300f.mp4").exists(), reason="no shared videos")
@pytest.mark.parametrize("name", ["clip_340x256_300f.mp4", "short_32f.mp4"])
def test_backends_agree_on_real_clips(name):
    a = read_frames(SHARED / name, centre, backend="decord")
    b = read_frames(SHARED / name, centre, backend="pyav")
    assert a.backend == "decord"
    assert a.num_video_frames == b.num_video_frames
    np.testing.assert_array_equal(a.indices, b.indices)
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 1.0


# -- frame counts that lie ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def faststart_bytes(tmp_path_factory) -> bytes:
    root = tmp_path_factory.mktemp("faststart")
    plain = write_video(root / "plain.mp4", index_frames(100, 64, 48), options={"g": "20"})
    return remux(plain, root / "faststart.mp4", {"movflags": "+faststart"}).read_bytes()


@pytest.mark.parametrize("keep", [0.5, 0.8, 0.97])
def test_over_reported_frame_count(tmp_path, faststart_bytes, keep):
    """The index (moov, first) promises 100 frames; the data holds fewer."""
    path = tmp_path / "cut.mp4"
    path.write_bytes(faststart_bytes[:int(len(faststart_bytes) * keep)])
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 100
    for backend in BACKENDS:
        asked: list[int] = []

        def sampler(n, asked=asked):
            asked.append(n)
            return np.array([0, n // 2, n - 1])

        clip = read_frames(path, sampler, backend=backend)
        assert clip.num_video_frames < 100
        assert asked[-1] == clip.num_video_frames
        assert ids(clip.frames) == [0, clip.num_video_frames // 2, clip.num_video_frames - 1]


def test_unknown_frame_count_is_counted(tmp_path):
    path = write_video(tmp_path / "count.webm", index_frames(37, 64, 48), "libvpx-vp9")
    assert probe(path).frames == 0  # WebM stores no count
    for backend in BACKENDS:
        assert read_frames(path, lambda n: np.array([n - 1]), backend=backend).num_video_frames \
            == 37


# -- the sampler contract ----------------------------------------------------------------------

def test_sampler_order_repeats_and_2d(matrix_dir):
    path = matrix_dir / "h264.mp4"
    for backend in BACKENDS:
        clip = read_frames(path, lambda n: np.array([5, 1, 5, 0]), backend=backend)
        assert ids(clip.frames) == [5, 1, 5, 0]
        np.testing.assert_array_equal(clip.frames[0], clip.frames[2])
        two = read_frames(path, lambda n: sample_indices(n, 4, 2, num_clips=3), backend=backend)
        np.testing.assert_array_equal(two.indices, sample_indices(40, 4, 2, num_clips=3).ravel())
        assert ids(two.frames) == two.indices.tolist()


def test_sampler_mistakes_are_not_disguised(matrix_dir):
    path = matrix_dir / "h264.mp4"
    for backend in BACKENDS:
        with pytest.raises(ValueError, match="outside"):
            read_frames(path, lambda n: np.array([n]), backend=backend)

        def broken(n):
            raise KeyError("sampler bug")

        with pytest.raises(KeyError, match="sampler bug"):
            read_frames(path, broken, backend=backend)
    with pytest.raises(ValueError, match="backend"):
        read_frames(path, centre, backend="opencv")


def test_probe(matrix_dir):
    info = probe(matrix_dir / "av1.mp4")
    assert (info.codec, info.width, info.height, info.frames) == ("av1", 64, 48, 40)
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(1.6, abs=0.05)


# -- hostile input -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory, faststart_bytes) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    files = {
        "empty": b"",
        "random": np.random.default_rng(0).integers(0, 256, 40000, dtype=np.uint8).tobytes(),
        "text": b"just some notes\n" * 100,
        "html": b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n" * 20,
        "cut_header": faststart_bytes[:200],
        "hls": b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n/etc/hostname\n#EXT-X-ENDLIST\n",
        "concat": b"ffconcat version 1.0\nfile /etc/hostname\n",
    }
    paths = {}
    for name, data in files.items():
        paths[name] = root / f"{name}.mp4"
        paths[name].write_bytes(data)
    with zipfile.ZipFile(root / "zip.mp4", "w") as archive:
        archive.writestr("a.txt", "hello" * 500)
    paths["zip"] = root / "zip.mp4"
    plain = write_video(root / "plain.mp4", index_frames(30, 64, 48))  # index (moov) at the end
    for keep in (0.1, 0.5, 0.9):
        paths[f"cut_{keep}"] = root / f"cut_{keep}.mp4"
        paths[f"cut_{keep}"].write_bytes(plain.read_bytes()[:int(plain.stat().st_size * keep)])
    paths["aac"] = write_audio(root / "audio.mp4", "aac")
    paths["cover_art"] = write_cover_art_mp3(root / "song.mp3")
    paths["flac"] = write_audio(root / "audio.flac", "flac")
    paths["mp2"] = write_audio(root / "audio.mkv", "mp2")
    still = root / "still.mp4"
    with av.open(str(root / "still.png"), "w") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    (root / "still.png").rename(still)
    paths["still"] = still
    return paths


@pytest.mark.parametrize("name,error", [
    ("empty", VideoDecodeError), ("random", VideoDecodeError), ("text", VideoDecodeError),
    ("html", VideoDecodeError), ("zip", VideoDecodeError), ("cut_header", VideoDecodeError),
    ("cut_0.1", VideoDecodeError), ("cut_0.5", VideoDecodeError), ("cut_0.9", VideoDecodeError),
    ("hls", VideoDecodeError), ("concat", VideoDecodeError),
    ("aac", NoVideoStreamError), ("flac", NoVideoStreamError), ("mp2", NoVideoStreamError),
    ("still", NoVideoStreamError), ("cover_art", NoVideoStreamError),
])
@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_files_raise_typed_errors(hostile, name, error, backend):
    path = hostile[name]
    with pytest.raises(error) as caught:
        read_frames(path, centre, backend=backend)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    assert len(caught.value.reason) > 5 and "\n" not in caught.value.reason


def test_missing_directory_and_fifo(tmp_path):
    with pytest.raises(VideoNotFoundError, match="no such file"):
        read_frames(tmp_path / "nope.mp4", centre)
    with pytest.raises(VideoNotFoundError, match="directory"):
        read_frames(tmp_path, centre)
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    caught: list[BaseException] = []

    def attempt():
        try:
            read_frames(fifo, centre)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            caught.append(exc)

    # Opening a FIFO blocks until a writer appears: run it aside so a regression fails, not hangs.
    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "read_frames opened the FIFO"
    assert len(caught) == 1 and isinstance(caught[0], UnsupportedInputError)
    assert "FIFO" in str(caught[0]) and str(fifo) in str(caught[0])


# -- limits ------------------------------------------------------------------------------------

def test_limits(matrix_dir):
    path = matrix_dir / "h264.mp4"
    with pytest.raises(ResourceLimitError, match="max_file_bytes"):
        read_frames(path, centre, limits=DecodeLimits(max_file_bytes=100))
    with pytest.raises(ResourceLimitError, match="max_duration_s"):
        read_frames(path, centre, limits=DecodeLimits(max_duration_s=0.5))
    for resize_to in (None, (8, 6)):  # the decoder holds full-size frames whatever the output
        with pytest.raises(ResourceLimitError, match="max_pixels") as caught:
            read_frames(path, centre, resize_to=resize_to,
                        limits=DecodeLimits(max_pixels=64 * 48 // 5))
        assert isinstance(caught.value, VideoError) and caught.value.path == str(path)


def test_frames_over_max_pixels_are_downscaled(matrix_dir):
    for backend in BACKENDS:
        clip = read_frames(matrix_dir / "h264.mp4", centre, backend=backend,
                           limits=DecodeLimits(max_pixels=64 * 48 // 4))
        assert clip.frames.shape == (16, 24, 32, 3)
        assert clip.source_size == (64, 48)
        assert clip.downscaled and "max_pixels" in clip.downscaled
        assert ids(clip.frames) == clip.indices.tolist()
