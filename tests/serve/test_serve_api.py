"""The HTTP API in-process (FastAPI's TestClient): each status code, both upload forms, the
error shape, metrics, and no temporary file left behind."""

from __future__ import annotations

import pytest
from serve_helpers import LABELS, make_service, uploads_left

pytest.importorskip("httpx", reason="TestClient needs httpx")
from fastapi.testclient import TestClient  # noqa: E402
from vidsort.classifier import VideoClassifier  # noqa: E402
from vidsort.serve.app import create_app  # noqa: E402
from vidsort.serve.service import segments_supported  # noqa: E402
from vidsort.serve.uploads import TMP_PREFIX  # noqa: E402


@pytest.fixture(scope="module")
def spool(tmp_path_factory):
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def client(tiny_motion_dir, spool):
    with make_service(tiny_motion_dir, spool, max_upload_mb=1, max_queue=4) as service:
        with TestClient(create_app(service)) as test_client:
            test_client.service = service
            yield test_client


@pytest.fixture(autouse=True)
def _no_upload_left(spool):
    yield
    assert uploads_left(spool) == []


def _error(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    if kind is not None:
        assert body["error"]["type"] == kind, body
    assert "Traceback" not in response.text
    return body["error"]


def test_multipart_upload_gives_the_offline_predictions(client, tiny_motion_dir, rendered_clips):
    offline = VideoClassifier(tiny_motion_dir, isolation=None)
    for label, path in rendered_clips.items():
        r = client.post("/v1/classify?top_k=3",
                        files={"video": (path.name, path.read_bytes(), "video/mp4")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == "tiny-motion"
        assert len(body["predictions"]) == 3
        assert body["predictions"][0]["label"] == label
        expected = offline(path, top_k=3)
        assert [p["label"] for p in body["predictions"]] == [p["label"] for p in expected]
        for got, want in zip(body["predictions"], expected, strict=True):
            assert got["score"] == pytest.approx(want["score"], abs=1e-4)
        assert {"decode_s", "inference_s", "batch_wait_s", "total_s"} <= set(body["timings"])
        assert body["video"]["name"] == path.name


@pytest.mark.parametrize("content_type", ["video/mp4", "application/octet-stream"])
def test_raw_body_upload(client, rendered_clips, content_type):
    path = rendered_clips["growing"]
    r = client.post("/v1/classify", content=path.read_bytes(),
                    headers={"content-type": content_type})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] == "growing"
    assert len(r.json()["predictions"]) == 5  # top_k defaults to 5


def test_not_a_video_is_400_naming_the_upload(client, spool):
    r = client.post("/v1/classify", files={"video": ("notes.mp4", b"just text\n" * 50)})
    error = _error(r, 400)
    assert error["type"] in ("VideoDecodeError", "NoVideoStreamError", "UnsupportedInputError")
    assert error["message"].startswith("notes.mp4: ")
    assert str(spool) not in error["message"]  # never the server's temporary path


def test_empty_upload_is_400(client):
    _error(client.post("/v1/classify", content=b"", headers={"content-type": "video/mp4"}), 400)


def test_over_the_size_limit_is_413(client):
    big = b"\0" * (1024**2 + 1)  # the fixture's limit is 1 MB
    error = _error(client.post("/v1/classify", content=big,
                               headers={"content-type": "video/mp4"}), 413, "UploadTooLarge")
    assert "1 MB" in error["message"]
    _error(client.post("/v1/classify", files={"video": ("big.mp4", big)}), 413, "UploadTooLarge")


@pytest.mark.parametrize("query, what", [("top_k=0", "top_k"), ("top_k=many", "top_k"),
                                         ("segments=perhaps", "segments")])
def test_bad_parameters_are_422(client, rendered_clips, query, what):
    path = rendered_clips["growing"]
    r = client.post(f"/v1/classify?{query}", files={"video": (path.name, path.read_bytes())})
    assert what in _error(r, 422, "InvalidParameter")["message"]


def test_missing_field_and_wrong_content_type_are_422(client, rendered_clips):
    data = rendered_clips["growing"].read_bytes()
    error = _error(client.post("/v1/classify", files={"clip": ("a.mp4", data)}), 422,
                   "MissingVideo")
    assert "'video'" in error["message"]
    _error(client.post("/v1/classify", content=b'{"path": "/etc/passwd"}',
                       headers={"content-type": "application/json"}), 422,
           "UnsupportedContentType")


def test_malformed_multipart_is_400(client):
    r = client.post("/v1/classify", content=b"--x\r\ngarbage without headers end",
                    headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code in (400, 422), r.text  # malformed, or no video field in it
    _error(r, r.status_code)
    _error(client.post("/v1/classify", content=b"abc",
                       headers={"content-type": "multipart/form-data"}), 400, "MalformedUpload")


def test_segments_timeline_or_422(client, rendered_clips):
    path = rendered_clips["growing"]
    r = client.post("/v1/classify?segments=true&top_k=2",
                    files={"video": (path.name, path.read_bytes())})
    if not segments_supported():
        assert "classify_segments" in _error(r, 422, "SegmentsUnavailable")["message"]
        return
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predictions"][0]["label"] == "growing" and len(body["predictions"]) == 2
    assert body["segments"] and {"label", "start_s", "end_s"} <= set(body["segments"][0])
    assert body["duration_s"] > 1.5
    assert body["video"]["name"] == path.name
    assert TMP_PREFIX not in r.text  # never the server's temporary path


def test_full_queue_is_503_with_retry_after(client, rendered_clips):
    service = client.service
    taken = 0
    try:
        while service.in_flight < service.settings.max_queue:  # fill the queue
            service.admit()
            taken += 1
        path = rendered_clips["growing"]
        r = client.post("/v1/classify", files={"video": (path.name, path.read_bytes())})
        _error(r, 503, "QueueFull")
        assert int(r.headers["retry-after"]) >= 1
    finally:
        for _ in range(taken):
            service.release()
    r = client.post("/v1/classify", files={"video": (path.name, path.read_bytes())})
    assert r.status_code == 200


def test_model_health_ready_page(client):
    model = client.get("/v1/model").json()
    assert model["labels"][:2] == ["moving left", "moving right"]
    assert model["precision"] == "int8" and model["provider"] == "cpu"
    assert model["manifest"]["model_type"] == "videomae"
    assert model["limits"]["max_upload_mb"] == 1
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/classify" in page.text
    _error(client.get("/nope"), 404, "NotFound")
    _error(client.get("/v1/classify"), 405, "MethodNotAllowed")


def test_metrics_are_exposed(client, rendered_clips):
    path = rendered_clips[LABELS[0]]
    assert client.post("/v1/classify", files={"video": (path.name, path.read_bytes())}).is_success
    text = client.get("/metrics").text
    for name in ("vidsort_requests_total", "vidsort_request_seconds_bucket",
                 "vidsort_decode_seconds_bucket", "vidsort_inference_seconds_bucket",
                 "vidsort_batch_size_bucket", "vidsort_queue_depth",
                 "vidsort_decode_worker_restarts_total"):
        assert name in text, name
    assert 'vidsort_requests_total{path="/v1/classify",status="200"}' in text
    assert 'vidsort_requests_total{path="/v1/classify",status="400"}' in text


def test_decoder_hang_is_504_and_crash_is_400(tiny_motion_dir, rendered_clips, tmp_path):
    """A hang or crash costs its own request; the worker is replaced and the next one works."""
    data = rendered_clips["growing"].read_bytes()
    for fault, status, kind in (("hang", 504, "DecodeTimeout"), ("segv", 400, "DecoderCrashed")):
        spool = tmp_path / f"{fault}-here"
        spool.mkdir()
        with make_service(tiny_motion_dir, spool, faults=f"{fault}:{fault}-here",
                          timeout_s=1.0) as service:
            with TestClient(create_app(service)) as c:
                error = _error(c.post("/v1/classify", files={"video": ("x.mp4", data)}),
                               status, kind)
                assert error["message"].startswith("x.mp4: ")
                metrics = c.get("/metrics").text
                reason = "timeout" if fault == "hang" else "crash"
                assert f'vidsort_decode_worker_restarts_total{{reason="{reason}"}} 1.0' in metrics
                assert c.get("/readyz").status_code == 200  # a fresh worker answers
        assert uploads_left(spool) == []
