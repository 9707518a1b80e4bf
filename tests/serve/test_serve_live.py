"""`vidsort serve` as a real process on a loopback port: batches form under concurrency, an
upload streams to disk and is removed when its client disconnects, the size limit holds while
a body streams, and SIGTERM drains the requests in progress before exiting 0."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from serve_helpers import live_server, uploads_left

httpx = pytest.importorskip("httpx")


def _metric(text: str, line_start: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(line_start)]
    return sum(values)


def _wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def _post_all(url: str, data: bytes, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=120) as client:
        return await asyncio.gather(*[
            client.post(f"{url}v1/classify", files={"video": (f"c{i}.mp4", data)})
            for i in range(n)])


@pytest.fixture(scope="module")
def server(tiny_motion_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live-tmp")
    with live_server(tiny_motion_dir, tmp, "--decode-workers", "2", "--max-batch", "4",
                     "--max-wait-ms", "300", "--max-upload-mb", "1") as srv:
        yield srv


def test_concurrent_requests_share_batches(server, rendered_clips):
    data = rendered_clips["growing"].read_bytes()
    responses = asyncio.run(_post_all(server.url, data, 8))
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    assert {r.json()["predictions"][0]["label"] for r in responses} == {"growing"}
    sizes = [r.json()["batch_size"] for r in responses]
    assert max(sizes) > 1, sizes
    metrics = httpx.get(f"{server.url}metrics").text
    batches = _metric(metrics, "vidsort_batch_size_count")
    assert 0 < batches < 8  # fewer inference calls than requests
    assert _metric(metrics, "vidsort_batch_size_sum") >= 8
    assert uploads_left(server.tmp_dir) == []


def _raw_request(port: int, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode("latin-1"))
    return sock


def test_disconnect_mid_upload_leaves_no_file(server):
    before = _metric(httpx.get(f"{server.url}metrics").text,
                     'vidsort_requests_total{path="/v1/classify",status="499"}')
    sock = _raw_request(server.port, "POST /v1/classify HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: video/mp4\r\nContent-Length: 900000\r\n\r\n")
    sock.sendall(b"\0" * 300_000)
    # the upload streams to a temporary file while it arrives...
    _wait_for(lambda: uploads_left(server.tmp_dir), what="the spooled upload")
    sock.close()  # ...and the client goes away before the end of its body
    _wait_for(lambda: not uploads_left(server.tmp_dir), what="the upload's removal")
    metrics = httpx.get(f"{server.url}metrics").text
    after = _metric(metrics, 'vidsort_requests_total{path="/v1/classify",status="499"}')
    assert after == before + 1
    assert httpx.get(f"{server.url}readyz").status_code == 200


def test_size_limit_holds_while_the_body_streams(server):
    # chunked: no Content-Length to refuse up front; the server must stop it mid-stream
    sock = _raw_request(server.port, "POST /v1/classify HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: video/mp4\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"\0" * 65536
    for _ in range(24):  # 1.5 MB against a 1 MB limit; the body never ends
        sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        data = sock.recv(65536)
        if not data:
            break
        reply += data
    sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b'"UploadTooLarge"' in reply
    _wait_for(lambda: not uploads_left(server.tmp_dir), what="the upload's removal")

    # declared too large: refused before a byte of the body is read
    sock = _raw_request(server.port, "POST /v1/classify HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: video/mp4\r\nContent-Length: 50000000\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 413")
    sock.close()


def test_sigterm_drains_then_exits_zero(tiny_motion_dir, rendered_clips, tmp_path):
    data = rendered_clips["moving left"].read_bytes()

    async def scenario(srv) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            tasks = [asyncio.create_task(client.post(f"{srv.url}v1/classify",
                                                     files={"video": ("a.mp4", data)}))
                     for _ in range(6)]
            metrics_url = f"{srv.url}metrics"
            while _metric((await client.get(metrics_url)).text, "vidsort_queue_depth ") < 6:
                await asyncio.sleep(0.01)
            srv.proc.send_signal(15)  # SIGTERM with all six in progress
            return await asyncio.gather(*tasks)

    # clips wait up to 2 s for their batch: all six are surely in progress at the signal
    with live_server(tiny_motion_dir, tmp_path, "--max-wait-ms", "2000") as srv:
        responses = asyncio.run(scenario(srv))
        assert [r.status_code for r in responses] == [200] * 6
        assert srv.proc.wait(60) == 0
        output = "".join(srv.output)
        assert "SIGTERM: draining 6 request(s)" in output, output
        assert "stopped" in output and "Traceback" not in output
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}healthz")
    assert uploads_left(tmp_path) == []
