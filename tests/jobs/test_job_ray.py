"""The Ray engine on a local Ray (``num_cpus=2``) over a dozen files: the same records as the
local engine, hostile files as error records. Ray starts once for the module (~10 s here)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from job_helpers import read_output, without_timings
from vidsort.inputs import walk_videos
from vidsort.isolation import FAULT_ENV, IsolationSettings
from vidsort.jobs.job import JobSpec, run_job

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

#: a decoder crash, injected in the decode worker (vidsort.isolation.faults)
CRASH = "crashes-decoder"


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs whose workers inherit the fault hook."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {FAULT_ENV: f"segv:{CRASH}"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def job_inputs(clip_dir, tmp_path_factory):
    """Ten clips, a file that is not a video and one whose decode crashes its worker."""
    folder = tmp_path_factory.mktemp("ray-inputs")
    clips = sorted(walk_videos(clip_dir / "d0"))[:10]
    junk = folder / "not-a-video.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    crash = folder / f"{CRASH}.mp4"
    crash.write_bytes((clip_dir / "d1" / "c001.mp4").read_bytes())
    return (*clips, str(junk), str(crash))


def _spec(model_dir, inputs, out, engine):
    return JobSpec(model_dir=str(model_dir), inputs=tuple(inputs), out=str(out), engine=engine,
                   classifier={"threads": 2}, isolation=IsolationSettings(timeout_s=30),
                   top_k=3, batch_size=2, progress=False)


def test_ray_engine_gives_the_local_records(local_ray, exported_tiny_dir, job_inputs, tmp_path,
                                            monkeypatch):
    monkeypatch.setenv(FAULT_ENV, f"segv:{CRASH}")  # the local engine's decode worker too
    local = run_job(_spec(exported_tiny_dir, job_inputs, tmp_path / "local.jsonl", "local"))
    on_ray = run_job(_spec(exported_tiny_dir, job_inputs, tmp_path / "ray", "ray"))
    assert (on_ray.done, on_ray.failed) == (local.done, local.failed) == (12, 2)
    assert on_ray.any_failed

    local_records = without_timings(read_output(tmp_path / "local.jsonl"))
    ray_records = without_timings(read_output(tmp_path / "ray"))
    assert [r["video"] for r in ray_records] == [r["video"] for r in local_records]
    for mine, theirs in zip(ray_records, local_records, strict=True):
        for a, b in zip(mine.pop("predictions", []), theirs.pop("predictions", []), strict=True):
            assert a["label"] == b["label"] and a["score"] == pytest.approx(b["score"], abs=1e-5)
        assert mine == theirs
    errors = {r["video"]: r["error"]["type"] for r in ray_records if "error" in r}
    assert errors == {job_inputs[-2]: "VideoDecodeError", job_inputs[-1]: "DecoderCrashed"}

    # the same job again with --resume: every file is in the parts already
    again = run_job(replace(_spec(exported_tiny_dir, job_inputs, tmp_path / "ray", "ray"),
                            resume=True))
    assert (again.done, again.skipped, again.skipped_failed) == (0, 12, 2)


def test_decoding_runs_as_tasks_apart_from_the_inference_actors(local_ray, exported_tiny_dir,
                                                                 job_inputs, capsys):
    from vidsort.jobs.ray_engine import _dataset, _prepare_spec
    from vidsort.jobs.records import stat_key

    spec = _spec(exported_tiny_dir, job_inputs, "unused", "ray")
    prepare, shape = _prepare_spec(spec)
    dataset = _dataset(ray, spec, [(job_inputs[0], stat_key(job_inputs[0]))], prepare, shape)
    capsys.readouterr()
    dataset.explain()
    optimized = capsys.readouterr().out.split("Physical Plan (Optimized)")[1]
    # not fused into one operator: decode tasks on CPU workers, then the actor pool
    assert "TaskPoolMapOperator[MapBatches(prepare_files)]" in optimized
    assert "ActorPoolMapOperator[MapBatches(Infer)]" in optimized
