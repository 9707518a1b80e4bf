"""Running a session on model inputs: a plain ``session.run``, or an IO binding for GPUs.

With an IO binding (`SessionRunner` with ``binding=True``), each call copies the input to the
device once, from a page-locked (pinned) host buffer, runs with the output bound to a device
buffer, and copies only the logits back: no host↔device copies beyond those two. Buffers are kept
per input shape (a CUDA graph replays with the addresses it captured), so the same shapes cost
no new allocation. ORT's Python API offers no pinned host allocation, so the staging buffer is
page-locked here with ``cudaHostRegister`` from the CUDA runtime that onnxruntime-gpu loads; when
that library is not found the buffer stays pageable (still one copy, at a lower bandwidth) and
``pinned`` says so. On CPU the same code path runs with CPU buffers (tests cover it there).
"""

from __future__ import annotations

import ctypes
import mmap
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: CUDA runtime sonames tried for cudaHostRegister (onnxruntime-gpu builds use CUDA 12 or 13)
_CUDART = ("libcudart.so.13", "libcudart.so.12", "libcudart.so")
#: cudaHostRegisterPortable: pinned for every CUDA context, not only the caller's
_PORTABLE = 1
#: input shapes whose buffers are kept (a batch size and the last, smaller batch, with room)
_KEEP_SHAPES = 4


def _cudart() -> ctypes.CDLL | None:
    for name in _CUDART:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


class PinnedBuffer:
    """A host array backed by anonymous mmap pages, page-locked with CUDA when it can be."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, pin: bool):
        dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
        self._map = mmap.mmap(-1, nbytes)
        self.array = np.frombuffer(self._map, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        self.pinned = False
        self._lib = _cudart() if pin else None
        if self._lib is not None:
            address = ctypes.c_void_p(self.array.ctypes.data)
            status = self._lib.cudaHostRegister(address, ctypes.c_size_t(nbytes), _PORTABLE)
            self.pinned = status == 0

    def close(self) -> None:
        """Unpin and release the pages (the array must not be used afterwards)."""
        if self.pinned and self._lib is not None:
            self._lib.cudaHostUnregister(ctypes.c_void_p(self.array.ctypes.data))
            self.pinned = False
        self.array = None  # type: ignore[assignment]
        try:
            self._map.close()
        except BufferError:  # a view is still alive somewhere: the pages go with it
            pass


@dataclass
class _Slot:
    """Buffers for one input shape: pinned staging, device input, device output."""

    staging: PinnedBuffer
    input: object  # onnxruntime.OrtValue
    output: object


class SessionRunner:
    """Runs ``session`` on (N, T, C, H, W) inputs; returns float32 logits (N, labels).

    Args:
        session: an ONNX Runtime session.
        input_name, output_name: the model's input and output.
        binding: run through an IO binding (else ``session.run``).
        device: ``"cuda"`` or ``"cpu"``: where bound buffers live.
        device_id: the GPU.
        fixed_batch: with a CUDA graph, every call runs at this batch (smaller ones padded, larger
            ones in chunks); None = the batch of the first call.
        cuda_graph: the session captures a CUDA graph (one input shape only).
    """

    def __init__(self, session, input_name: str, output_name: str, *, binding: bool = False,
                 device: str = "cpu", device_id: int = 0, cuda_graph: bool = False,
                 fixed_batch: int | None = None):
        self.session = session
        self.input_name, self.output_name = input_name, output_name
        self.binding, self.device, self.device_id = binding, device, device_id
        self.cuda_graph = cuda_graph
        self.fixed_batch = fixed_batch
        self.dtype = (np.float16 if session.get_inputs()[0].type == "tensor(float16)"
                      else np.float32)
        self._slots: OrderedDict[tuple[int, ...], _Slot] = OrderedDict()
        self._lock = threading.Lock()  # one binding and one set of buffers: one call at a time
        self._io = session.io_binding() if binding else None
        self.calls = 0

    @property
    def pinned(self) -> bool | None:
        """Whether the staging buffers are page-locked (None before the first bound call)."""
        if not self._slots:
            return None
        return all(s.staging.pinned for s in self._slots.values())

    def stack(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """Concatenate inputs along the batch axis — into the staging buffer when bound, so the
        batch is written once, where the device copy reads it."""
        if not self.binding or self.cuda_graph or not arrays:
            return np.concatenate(arrays, axis=0)
        shape = (sum(a.shape[0] for a in arrays), *arrays[0].shape[1:])
        with self._lock:
            slot = self._slot(shape)
            return np.concatenate(arrays, axis=0, out=slot.staging.array, casting="same_kind")

    def __call__(self, pixel_values: np.ndarray) -> np.ndarray:
        """Run the model; returns float32 logits."""
        if not self.binding:
            feed = {self.input_name: np.ascontiguousarray(pixel_values, dtype=self.dtype)}
            (logits,) = self.session.run([self.output_name], feed)
            return np.asarray(logits, dtype=np.float32)
        with self._lock:
            if not self.cuda_graph:
                return self._bound(pixel_values)
            return self._fixed(pixel_values)

    def _fixed(self, x: np.ndarray) -> np.ndarray:
        """CUDA graph: one shape only — pad to the fixed batch, or run in chunks of it."""
        batch = self.fixed_batch = self.fixed_batch or x.shape[0]
        out = []
        for start in range(0, x.shape[0], batch):
            part = x[start:start + batch]
            n = part.shape[0]
            if n < batch:
                part = np.concatenate([part, np.zeros((batch - n, *part.shape[1:]), part.dtype)])
            out.append(self._bound(part)[:n])
        return np.concatenate(out) if len(out) > 1 else out[0]

    def _slot(self, shape: tuple[int, ...]) -> _Slot:
        slot = self._slots.get(shape)
        if slot is not None:
            self._slots.move_to_end(shape)
            return slot
        from onnxruntime import OrtValue

        labels = self.session.get_outputs()[0].shape[-1]
        if not isinstance(labels, int):
            labels = None
        staging = PinnedBuffer(shape, self.dtype, pin=self.device == "cuda")
        device_input = OrtValue.ortvalue_from_shape_and_type(list(shape), self.dtype,
                                                             self.device, self.device_id)
        device_output = None
        if labels is not None:
            out_type = (np.float16 if self.session.get_outputs()[0].type == "tensor(float16)"
                        else np.float32)
            device_output = OrtValue.ortvalue_from_shape_and_type(
                [shape[0], labels], out_type, self.device, self.device_id)
        slot = _Slot(staging, device_input, device_output)
        self._slots[shape] = slot
        while len(self._slots) > _KEEP_SHAPES and not self.cuda_graph:
            _, old = self._slots.popitem(last=False)
            old.staging.close()
        return slot

    def _bound(self, x: np.ndarray) -> np.ndarray:
        slot = self._slot(tuple(x.shape))
        staging = slot.staging.array
        if x is not staging:  # `stack` may have written the batch there already
            np.copyto(staging, x, casting="same_kind")
        slot.input.update_inplace(staging)  # the one host -> device copy
        io = self._io
        io.bind_ortvalue_input(self.input_name, slot.input)
        if slot.output is not None:
            io.bind_ortvalue_output(self.output_name, slot.output)
        else:  # label count unknown until run: let ORT allocate on the device
            io.bind_output(self.output_name, self.device, self.device_id)
        self.session.run_with_iobinding(io)
        io.synchronize_outputs()
        result = slot.output if slot.output is not None else io.get_outputs()[0]
        self.calls += 1
        # the one device -> host copy (on CPU, numpy() is a view of the bound buffer, which the
        # next call overwrites: copy)
        return np.array(result.numpy(), dtype=np.float32, copy=True)

    def close(self) -> None:
        """Release the staging buffers."""
        with self._lock:
            for slot in self._slots.values():
                slot.staging.close()
            self._slots.clear()


def runner_for(session, input_name: str, output_name: str, provider: str,
               settings) -> SessionRunner:
    """The runner `VideoClassifier` uses: IO binding per `SessionSettings.uses_binding`.

    Args:
        session: the session.
        input_name, output_name: the model's input and output.
        provider: the short name of the provider that runs the session.
        settings: the `vidsort.session.SessionSettings` it was made with.

    Returns:
        A `SessionRunner`.
    """
    from vidsort.providers import PROVIDERS_BY_NAME

    row = PROVIDERS_BY_NAME.get(provider)
    on_gpu = row is not None and row.gpu
    return SessionRunner(session, input_name, output_name,
                         binding=settings.uses_binding(provider),
                         device="cuda" if on_gpu else "cpu", device_id=settings.device_id,
                         cuda_graph=settings.cuda_graph and on_gpu)
