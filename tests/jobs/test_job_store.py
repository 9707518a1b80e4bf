"""The outputs of archive jobs: torn-line recovery, Parquet schema and round trip, atomic parts,
the merge of one .parquet file, refusal and locking. No model needed."""

from __future__ import annotations

import json
import os

import pytest
from vidsort.jobs.records import FileKey, make_record, stat_key, storable_name
from vidsort.jobs.store import JobError, JsonlStore, open_store, output_kind

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from vidsort.jobs.arrow import schema, to_records, to_table  # noqa: E402
from vidsort.jobs.parquet_store import ParquetFileStore, PartsDirStore  # noqa: E402


def _ok(name: str, size: int = 100, mtime: float = 1.5) -> dict:
    result = {"video": name, "predictions": [{"label": "a", "score": 0.75},
                                             {"label": "b", "score": 0.25}],
              "backend": "pyav", "num_video_frames": 24, "width": 64, "height": 48,
              "frames": [0, 4, 8, 12], "timings": {"decode_s": 0.01, "preprocess_s": 0.002,
                                                   "inference_s": 0.003}}
    return make_record(result, FileKey(name, size, mtime), "int8", "cpu")


def _error(name: str) -> dict:
    result = {"video": name, "error": {"type": "VideoNotFoundError", "message": f"{name}: gone"}}
    return make_record(result, FileKey(name, None, None), "int8", "cpu")


def test_jsonl_resume_drops_a_torn_last_line(tmp_path):
    out = tmp_path / "r.jsonl"
    store = JsonlStore(out, resume=False)
    store.write([_ok("a.mp4"), _ok("b.mp4")])
    store.close()
    whole = out.read_bytes()
    # what a kill in the middle of the next batch's write leaves
    out.write_bytes(whole + json.dumps(_ok("c.mp4")).encode()[:37])

    store = JsonlStore(out, resume=True)
    done = store.done()
    assert store.dropped_bytes == 37
    assert out.read_bytes() == whole  # cut back to the last whole line
    assert len(done) == 2
    assert FileKey("a.mp4", 100, 1.5).digest() in done
    assert FileKey("c.mp4", 100, 1.5).digest() not in done
    store.write([_ok("c.mp4")])
    store.close()
    assert [json.loads(line)["video"] for line in out.read_text().splitlines()] == [
        "a.mp4", "b.mp4", "c.mp4"]


def test_jsonl_with_a_damaged_middle_line_is_refused(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps(_ok("a.mp4")) + "\n{oops\n" + json.dumps(_ok("b.mp4")) + "\n")
    store = JsonlStore(out, resume=True)
    with pytest.raises(JobError, match="line 2 is not a JSON record"):
        store.done()
    store.close()


def test_error_records_are_remembered_as_failed(tmp_path):
    out = tmp_path / "r.jsonl"
    with_error = JsonlStore(out, resume=False)
    with_error.write([_ok("a.mp4"), _error("gone.mp4")])
    with_error.close()
    store = JsonlStore(out, resume=True)
    done = store.done()
    store.close()
    assert done.failed(FileKey("gone.mp4", None, None).digest())
    assert not done.failed(FileKey("a.mp4", 100, 1.5).digest())


def test_parquet_schema_and_round_trip(tmp_path):
    timeline = make_record({"video": "long.mp4", "duration_s": 12.5, "fps": 25.0,
                            "windows": [{"start_s": 0.0, "end_s": 2.56, "predictions": [
                                {"label": "a", "score": 0.5}]}],
                            "segments": [{"label": "a", "start_s": 0.0, "end_s": 12.5,
                                          "score": 0.5}],
                            "labels": [{"label": "a", "score": 0.5}]},
                           FileKey("long.mp4", 10, 2.0), "fp32", "cpu")
    records = [_ok("a.mp4"), _error("gone.mp4"), timeline,
               {**_ok("b.mp4"), "fallback": "decord cannot read it", "future": [{"x": 1}]}]
    pq.write_table(to_table(records), tmp_path / "t.parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.schema.equals(schema())
    types = {f.name: f.type for f in table.schema}
    assert types["video"] == pa.string() and types["size"] == pa.int64()
    assert types["mtime"] == pa.float64() and types["frames"] == pa.list_(pa.int64())
    assert types["predictions"] == pa.list_(pa.struct([("label", pa.string()),
                                                        ("score", pa.float64())]))
    assert pa.types.is_map(types["timings"])
    assert types["segments"] == pa.list_(pa.struct([("label", pa.string()),
                                                     ("start_s", pa.float64()),
                                                     ("end_s", pa.float64()),
                                                     ("score", pa.float64())]))
    assert table.column("extra").to_pylist() == [None, None, None,
                                                 json.dumps({"future": [{"x": 1}]})]
    assert to_records(table) == records  # absent fields stay absent, unknown ones come back


def test_undecodable_names_are_stored_as_text(tmp_path):
    name = os.fsdecode(b"bad-\xff.mp4")
    assert storable_name(name) == "bad-\\xff.mp4"
    record = _error(storable_name(name))
    record["error"]["message"] = f"{name}: gone"
    (back,) = to_records(to_table([record]))
    assert back["video"] == "bad-\\xff.mp4" and "\\xff" in back["error"]["message"]


def test_parts_are_written_atomically_and_stale_temporaries_removed(tmp_path):
    out = tmp_path / "parts"
    store = PartsDirStore(out, resume=False)
    store.write([_ok("a.mp4")])
    store.write([_ok("b.mp4"), _error("gone.mp4")])
    store.close()
    (out / ".part-000002.parquet.tmp").write_bytes(b"PAR1 half a part")  # a killed write
    store = PartsDirStore(out, resume=True)
    assert len(store.done()) == 3
    assert not list(out.glob("*.tmp"))
    store.write([_ok("c.mp4")])
    store.close()
    assert sorted(p.name for p in out.iterdir()) == [
        "part-000000.parquet", "part-000001.parquet", "part-000002.parquet"]
    assert sorted(r["video"] for r in to_records(pq.read_table(out))) == [
        "a.mp4", "b.mp4", "c.mp4", "gone.mp4"]


def test_parquet_file_merge_keeps_one_record_per_key(tmp_path):
    out = tmp_path / "r.parquet"
    store = ParquetFileStore(out, resume=False)
    store.write([_ok("a.mp4"), _ok("b.mp4")])
    store.close()
    assert not (tmp_path / ".r.parquet.parts").exists()
    assert len(pq.read_table(out)) == 2
    # a merge killed after its rename: the file holds the parts' records, the parts remain
    store = ParquetFileStore(out, resume=True)
    store.write([_ok("a.mp4"), _ok("c.mp4")])
    store._parts.close()
    store = ParquetFileStore(out, resume=True)
    assert len(store.done()) == 3
    store.close()
    videos = sorted(r["video"] for r in to_records(pq.read_table(out)))
    assert videos == ["a.mp4", "b.mp4", "c.mp4"]


@pytest.mark.parametrize("name,kind", [("r.jsonl", "jsonl"), ("r.parquet", "parquet"),
                                       ("parts", "parts")])
def test_existing_output_is_refused_without_resume(tmp_path, name, kind):
    out = tmp_path / name
    assert output_kind(out) == kind
    store = open_store(out, resume=False)
    store.write([_ok("a.mp4")])
    store.close()
    with pytest.raises(JobError, match="already exists.*--resume"):
        open_store(out, resume=False)


def test_a_second_job_on_the_same_output_is_refused(tmp_path):
    first = open_store(tmp_path / "r.jsonl", resume=False)
    with pytest.raises(JobError, match="another vidsort job"):
        open_store(tmp_path / "r.jsonl", resume=True)
    first.close()


def test_unknown_output_kinds_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    for out in (tmp_path / "results.json", tmp_path / "notes.txt"):
        with pytest.raises(JobError, match=r"\.jsonl or \.parquet"):
            output_kind(out)


def test_stat_key_of_a_missing_file(tmp_path):
    assert stat_key(tmp_path / "missing.mp4") == FileKey(str(tmp_path / "missing.mp4"), None,
                                                         None)
    (tmp_path / "x.mp4").write_bytes(b"12345")
    key = stat_key(tmp_path / "x.mp4")
    assert key.size == 5 and key.mtime == os.stat(tmp_path / "x.mp4").st_mtime


def test_parts_of_an_older_schema_are_merged(tmp_path):
    out = tmp_path / "r.parquet"
    store = ParquetFileStore(out, resume=False)
    store.write([_ok("a.mp4")])
    store._parts.close()
    old = tmp_path / ".r.parquet.parts" / "part-000000.parquet"
    table = pq.read_table(old)
    pq.write_table(table.drop_columns(["fps", "labels"]), old)  # as an older vidsort wrote it
    store = ParquetFileStore(out, resume=True)
    store.write([_ok("b.mp4")])
    store.close()
    assert pq.read_table(out).schema.equals(schema())
    assert [r["video"] for r in to_records(pq.read_table(out))] == ["a.mp4", "b.mp4"]
