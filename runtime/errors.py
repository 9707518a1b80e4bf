"""Typed errors. Every message names the file it is about and says why.

The CLI turns any `VidsortError` into a one-line message (or a JSON error object) and an exit
code, so users never see a traceback for bad input.
"""

from __future__ import annotations

import os


class VidsortError(Exception):
    """Base class of every error vidsort raises on purpose."""

    #: process exit code the CLI uses when this error stops a whole command
    exit_code = 2


class ModelDirError(VidsortError):
    """A model directory is missing, incomplete or corrupt."""


class ExportError(VidsortError):
    """The export step cannot go on (bad model, unsupported architecture, failed validation)."""


class MissingExtraError(VidsortError):
    """A command needs an optional extra (export, serve, ray, plot...) that is not installed."""


class ProviderUnavailableError(VidsortError):
    """An execution provider (or precision) that was asked for explicitly is not available."""


class VideoError(VidsortError):
    """A problem with one input video. Carries the path so batch results can name it."""

    exit_code = 1

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{reason}")

    def __reduce__(self):
        # Pickle with the constructor's arguments, so errors cross process boundaries intact.
        return (type(self), (self.path, self.reason))


class VideoNotFoundError(VideoError):
    """The path does not exist or is not a regular file."""


class UnsupportedInputError(VideoError):
    """The input is refused before decoding (special file, too large, wrong array shape...)."""


class VideoDecodeError(VideoError):
    """The file exists but no frames could be decoded from it."""


class NoVideoStreamError(VideoDecodeError):
    """The container holds no video stream (audio-only, an image container, not media)."""


class DecodeTimeout(VideoDecodeError):
    """Decoding took longer than the per-file timeout; the worker was killed."""


class DecoderCrashed(VideoDecodeError):
    """The decoder process died (segfault, abort, out of memory) on this file."""


class ResourceLimitError(VideoError):
    """The file exceeds a configured resource limit (size, pixels per frame, duration)."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its class name when empty), for one-line
    reports; ``limit`` cuts it to that many characters."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if limit is None else line[:limit]


def import_extra(module: str, extra: str):
    """Import ``module`` from an optional extra, or raise a one-line `MissingExtraError` saying
    what to install (``pip install 'vidsort[extra]'``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"needs the {extra} extra (pip install 'vidsort[{extra}]'): "
                                f"{first_line(exc)}") from None


def error_record(exc: BaseException) -> dict:
    """Return ``{"type", "message"}`` for JSON output; unknown exceptions keep their class name."""
    return {"type": type(exc).__name__, "message": str(exc) or repr(exc)}
