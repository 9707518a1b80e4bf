"""Presentation order of H.264 pictures from their slice headers, before decoding them.

AVI stores H.264 in decode order and stamps packets with decode numbers, so with B-frames a
packet's presentation index is unknown until the decoder has reordered it. Knowing it up front
lets `pyav_backend` find frames by timestamp and skip the unwanted non-reference pictures
(about 40 % of an x264 stream) instead of decoding everything from the keyframe.

Why it stays (``python benchmarks/bench_decode_choices.py``, 15 interleaved rounds, 2-core AMD
EPYC, identical frames with and without it): on the shared 1080p H.264-in-AVI clip it decodes 53
instead of 83 frames, 181 vs 210 ms (-14 %, CPU -25 %); on a generated 720p H.264-in-AVI with
B-frames 99 instead of 182 frames, 120 vs 188 ms (-36 %, CPU -34 %). It costs 1–3 ms of header
parsing on H.264 AVI files only; MP4 and other containers never reach it. AVI is still common in
action-recognition datasets (NTU RGB+D, HMDB51, UCF101), so the saving lands where users are.

Why hand-written: H.264 carries the order as the picture order count (POC) in each slice header,
but neither FFmpeg's public API nor PyAV exposes it without decoding the picture. Only the few
fields needed are read (ITU-T H.264 7.3.2.1 SPS, 7.3.2.2 PPS, 7.3.3 slice header; POC types 0
and 2 of 8.2.1). Anything else (POC type 1, field pictures, several pictures in one packet, a
header that does not parse) gives None and the caller counts decoded frames instead; the
decoder's own output order double-checks the result while decoding.
"""

from __future__ import annotations

# profile_idc values whose SPS carries chroma format, bit depths and scaling matrices
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
_SLICE, _IDR, _SPS, _PPS = 1, 5, 7, 8
# the slice header fields needed sit in its first bytes; parse no more of big NAL units
_HEADER_BYTES = 64


class _Unsupported(Exception):
    """The stream uses something this reader does not handle."""


class _Bits:
    """An RBSP bit reader (emulation prevention bytes removed)."""

    def __init__(self, nal: bytes):
        data = nal.replace(b"\x00\x00\x03", b"\x00\x00")
        self.value = int.from_bytes(data, "big")
        self.left = len(data) * 8

    def u(self, n: int) -> int:
        if n > self.left:
            raise _Unsupported("header ends early")
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise _Unsupported("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _parse_sps(bits: _Bits) -> tuple[int, dict]:
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    sps_id = bits.ue()
    separate_planes = 0
    if profile in _HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format == 3:
            separate_planes = bits.u(1)
        bits.ue(), bits.ue(), bits.u(1)  # bit depths, qpprime_y_zero_transform_bypass
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format != 3 else 12):
                if bits.u(1):
                    last = nxt = 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + bits.se() + 256) % 256
                        last = nxt or last
    sps = {"separate_planes": separate_planes, "frame_num_bits": bits.ue() + 4,
           "poc_type": bits.ue()}
    if sps["poc_type"] == 0:
        sps["poc_lsb_bits"] = bits.ue() + 4
    elif sps["poc_type"] != 2:
        raise _Unsupported("POC type 1")
    bits.ue(), bits.u(1), bits.ue(), bits.ue()  # ref frames, gaps, width, height
    sps["frame_mbs_only"] = bits.u(1)
    return sps_id, sps


class PocReader:
    """Feed packets in decode order; `ranks` then gives each one's presentation index."""

    def __init__(self, extradata: bytes | None):
        self._sps: dict[int, dict] = {}
        self._pps: dict[int, int] = {}  # pps id -> sps id
        self._length_size = 0  # 0: Annex B start codes, else avcC NAL length prefix bytes
        self._keys: list[tuple[int, int]] = []  # (IDR period, POC) per packet
        self._idr_period = -1
        self._prev = {"msb": 0, "lsb": 0, "frame_num": 0, "offset": 0}
        self.failed: str | None = None
        if extradata:
            try:
                self._read_extradata(extradata)
            except (_Unsupported, IndexError) as exc:
                self.failed = f"extradata: {exc}"

    def add(self, packet: bytes) -> None:
        """The next packet (one picture) in decode order."""
        if self.failed is not None:
            return
        try:
            key = None
            for nal in self._nals(packet):
                kind = nal[0] & 0x1F
                if kind in (_SLICE, _IDR):
                    if key is None:
                        key = self._slice(nal)
                    elif _Bits(nal[1:8]).ue() == 0:  # first_mb_in_slice 0: another picture
                        raise _Unsupported("several pictures in one packet")
                else:
                    self._parameter_set(nal)
            if key is None:
                raise _Unsupported("a packet without a picture")
            self._keys.append(key)
        except (_Unsupported, IndexError, KeyError) as exc:
            self.failed = str(exc) or type(exc).__name__

    def ranks(self) -> list[int] | None:
        """Presentation index of each packet added, or None if the order is unknown."""
        if self.failed is not None or not self._keys or len(set(self._keys)) != len(self._keys):
            return None
        order = sorted(range(len(self._keys)), key=self._keys.__getitem__)
        ranks = [0] * len(order)
        for rank, packet in enumerate(order):
            ranks[packet] = rank
        return ranks

    def _read_extradata(self, data: bytes) -> None:
        if data[0] != 1:  # Annex B parameter sets
            for nal in self._nals(data):
                self._parameter_set(nal)
            return
        self._length_size = (data[4] & 3) + 1  # avcC: length-prefixed NAL units
        pos, count = 6, data[5] & 0x1F
        for sets in range(2):
            for _ in range(count):
                size = int.from_bytes(data[pos:pos + 2], "big")
                self._parameter_set(data[pos + 2:pos + 2 + size])
                pos += 2 + size
            if sets == 0:
                count, pos = data[pos], pos + 1

    def _nals(self, data: bytes):
        if self._length_size:
            pos, n = 0, self._length_size
            while pos + n <= len(data):
                size = int.from_bytes(data[pos:pos + n], "big")
                yield data[pos + n:pos + n + size]
                pos += n + size
            return
        starts = []
        pos = data.find(b"\x00\x00\x01")
        while pos != -1:
            starts.append(pos + 3)
            pos = data.find(b"\x00\x00\x01", pos + 3)
        for i, start in enumerate(starts):
            end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
            nal = data[start:end].rstrip(b"\x00")  # trailing zeros, 4-byte start codes
            if nal:
                yield nal

    def _parameter_set(self, nal: bytes) -> None:
        kind = nal[0] & 0x1F
        if kind == _SPS:
            sps_id, sps = _parse_sps(_Bits(nal[1:]))
            self._sps[sps_id] = sps
        elif kind == _PPS:
            bits = _Bits(nal[1:_HEADER_BYTES])
            pps_id = bits.ue()
            self._pps[pps_id] = bits.ue()

    def _slice(self, nal: bytes) -> tuple[int, int]:
        ref_idc, idr = nal[0] >> 5 & 3, (nal[0] & 0x1F) == _IDR
        bits = _Bits(nal[1:_HEADER_BYTES])
        bits.ue(), bits.ue()  # first_mb_in_slice, slice_type
        sps = self._sps[self._pps[bits.ue()]]
        if sps["separate_planes"]:
            bits.u(2)
        frame_num = bits.u(sps["frame_num_bits"])
        if not sps["frame_mbs_only"] and bits.u(1):
            raise _Unsupported("field pictures")
        if idr:
            bits.ue()  # idr_pic_id
            self._idr_period += 1
        elif self._idr_period < 0:
            raise _Unsupported("the stream does not start with an IDR picture")
        prev = self._prev
        if sps["poc_type"] == 0:  # 8.2.1.1
            lsb, max_lsb = bits.u(sps["poc_lsb_bits"]), 1 << sps["poc_lsb_bits"]
            if idr:
                prev["msb"] = prev["lsb"] = 0
            msb = prev["msb"]
            if lsb < prev["lsb"] and prev["lsb"] - lsb >= max_lsb // 2:
                msb += max_lsb
            elif lsb > prev["lsb"] and lsb - prev["lsb"] > max_lsb // 2:
                msb -= max_lsb
            if ref_idc:
                prev["msb"], prev["lsb"] = msb, lsb
            return self._idr_period, msb + lsb
        # POC type 2 (8.2.1.3): output order is decode order
        offset = 0 if idr else prev["offset"] + (
            1 << sps["frame_num_bits"] if prev["frame_num"] > frame_num else 0)
        prev["offset"], prev["frame_num"] = offset, frame_num
        return self._idr_period, 2 * (offset + frame_num) - (0 if ref_idc else 1)
