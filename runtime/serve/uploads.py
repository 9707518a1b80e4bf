"""Receiving an upload: the request body streams into a temporary file, never whole into memory,
and the size limit is enforced while it streams.

Starlette's own form parsing (``request.form()`` / FastAPI's ``UploadFile``) reads the whole body
before the handler runs and has no size limit for file parts, so a 20 GB upload would be
received in full before a 413. Here python-multipart's streaming parser is fed chunk by chunk
and the bytes of the ``video`` part go straight to disk: only the routing of parts is ours.
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from vidsort.inputs import is_video_name
from vidsort.serve.problems import RequestError

#: the multipart field that carries the video
FIELD = "video"
#: body bytes allowed beyond the video in a multipart request (boundaries, part headers, small
#: form fields); a body over the limit plus this is refused even before its video part ends
MULTIPART_SLACK = 1024**2
#: prefix of every spooled upload (the load test looks for leftovers by it)
TMP_PREFIX = "vidsort-upload-"
#: content types taken as a raw video body (besides ``video/*``)
RAW_TYPES = ("application/octet-stream",)


def too_large(limit: int) -> RequestError:
    """The 413 for an upload over ``limit`` bytes."""
    return RequestError(413, "UploadTooLarge", f"upload over the limit of {limit / 1024**2:g} MB "
                                              "(--max-upload-mb)")


@dataclass
class Upload:
    """A received upload, spooled to ``path`` (the caller deletes it)."""

    path: Path
    name: str  # what to call it in messages: the client's file name, or "upload"
    size: int
    seconds: float


def _suffix(name: str | None, content_type: str | None) -> str:
    # The decoders probe the content; a known suffix only helps them guess the container.
    if name and is_video_name(name):
        return Path(name).suffix.lower()
    guess = mimetypes.guess_extension(content_type or "") if content_type else None
    return guess if guess and is_video_name(f"x{guess}") else ".upload"


def check_content_length(header: str | None, limit: int, multipart: bool) -> None:
    """Refuse a body whose declared length is already over the limit (before reading it)."""
    if header is None:
        return
    try:
        length = int(header)
    except ValueError:
        raise RequestError(400, "BadRequest", "Content-Length is not a number") from None
    if length > limit + (MULTIPART_SLACK if multipart else 0):
        raise too_large(limit)


class _Spool:
    """One temporary file that counts what goes into it."""

    def __init__(self, tmp_dir: str | None, suffix: str, limit: int):
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=tmp_dir)
        self.path = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "wb", buffering=1024**2)
        self.size, self.limit = 0, limit

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise too_large(self.limit)
        # Plain blocking writes on the event loop: a chunk is at most 64 KB and lands in the
        # page cache; a thread hop per chunk would cost more than the write.
        self.file.write(data)

    def close(self) -> None:
        self.file.close()


class _MultipartVideo:
    """Routes the parts of a multipart body: the first ``video`` part goes to a spool, the rest
    is dropped (it still counts towards the body limit)."""

    def __init__(self, boundary: bytes, tmp_dir: str | None, limit: int):
        self.tmp_dir, self.limit = tmp_dir, limit
        self.spool: _Spool | None = None
        self.filename: str | None = None
        self._header: list[bytes] = []
        self._field, self._value = b"", b""
        self._headers: dict[bytes, bytes] = {}
        self._target: _Spool | None = None
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        })

    def _part_begin(self) -> None:
        self._headers, self._field, self._value = {}, b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition"))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name == FIELD and self.spool is None:
            filename = params.get(b"filename", b"").decode("utf-8", "replace") or None
            content_type = self._headers.get(b"content-type", b"").decode("latin-1") or None
            self.filename = filename
            self.spool = self._target = _Spool(self.tmp_dir, _suffix(filename, content_type),
                                               self.limit)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._target is not None:
            self._target.write(memoryview(data)[start:end])

    def _part_end(self) -> None:
        self._target = None


async def receive_upload(content_type: str | None, body: AsyncIterator[bytes], limit: int,
                         tmp_dir: str | None = None) -> Upload:
    """Spool a request body (multipart field ``video``, or the raw body) to a temporary file.

    Args:
        content_type: the request's Content-Type header.
        body: the body's chunks (Starlette's ``request.stream()``).
        limit: most video bytes accepted; past it the upload stops with a 413 at once.
        tmp_dir: where to write (default: the system's temporary directory).

    Returns:
        The `Upload`; raises `RequestError` (413 too large, 422 no video field or a content type
        that is not a video, 400 a malformed multipart body). Nothing is left on disk when it
        raises, also when the client disconnects (Starlette's ``ClientDisconnect``).
    """
    started = time.perf_counter()
    mime, params = parse_options_header(content_type)
    mime_text = mime.decode("latin-1").lower()
    router: _MultipartVideo | None = None
    spool: _Spool | None = None
    try:
        if mime_text == "multipart/form-data":
            boundary = params.get(b"boundary")
            if not boundary:
                raise RequestError(400, "MalformedUpload", "multipart body without a boundary")
            router = _MultipartVideo(boundary, tmp_dir, limit)
            received = 0
            async for chunk in body:
                received += len(chunk)
                if received > limit + MULTIPART_SLACK:
                    raise too_large(limit)
                router.parser.write(chunk)
            router.parser.finalize()
            spool = router.spool
            if spool is None:
                raise RequestError(422, "MissingVideo", f"no multipart field named {FIELD!r} "
                                  "(send the video as -F video=@clip.mp4)")
            name = router.filename or "upload"
        elif mime_text in ("", *RAW_TYPES) or mime_text.startswith("video/"):
            spool = _Spool(tmp_dir, _suffix(None, mime_text), limit)
            async for chunk in body:
                spool.write(chunk)
            name = "upload"
        else:
            raise RequestError(422, "UnsupportedContentType",
                              f"Content-Type {mime_text!r}: send the video as a multipart field "
                              f"named {FIELD!r}, or as the raw body with Content-Type video/* or "
                              "application/octet-stream")
        spool.close()
        return Upload(spool.path, name, spool.size, time.perf_counter() - started)
    except MultipartParseError as exc:
        _discard(router.spool if router else spool)
        raise RequestError(400, "MalformedUpload", f"malformed multipart body: {exc}") from None
    except BaseException:  # 413, a disconnect, a cancellation: leave nothing behind
        _discard(router.spool if router else spool)
        raise


def _discard(spool: _Spool | None) -> None:
    if spool is not None:
        spool.close()
        spool.path.unlink(missing_ok=True)
