"""The packet hub's pure parts: the checksum it completes on frames a veth left unfinished, and
when a degraded link lets a frame through."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tests.packethub import Impairment, ones_sum, with_l4_checksum


def reference_sum(data: bytes) -> int:
    """RFC 1071 the slow way: 16-bit words added with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ipv4_frame(proto: int, payload: bytes, src: bytes, dst: bytes) -> bytes:
    header_len = 20 if proto == 6 else 8
    l4 = bytearray(header_len + len(payload))
    l4[header_len:] = payload
    if proto == 17:
        l4[4:6] = len(l4).to_bytes(2, "big")
    ip = bytearray(20)
    ip[0], ip[9] = 0x45, proto
    ip[2:4] = (20 + len(l4)).to_bytes(2, "big")
    ip[12:16], ip[16:20] = src, dst
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + bytes(ip) + bytes(l4)


@given(st.binary(max_size=3000))
def test_ones_sum_is_rfc1071(data):
    assert ones_sum(data) == reference_sum(data) or (ones_sum(data), reference_sum(data)) == (0xFFFF, 0)


@given(st.sampled_from([6, 17]), st.binary(max_size=1460), st.binary(min_size=4, max_size=4),
       st.binary(min_size=4, max_size=4), st.binary(max_size=30))
def test_completed_checksum_verifies(proto, payload, src, dst, padding):
    frame = with_l4_checksum(ipv4_frame(proto, payload, src, dst) + padding)  # Ethernet padding past the IP length
    ip_len = int.from_bytes(frame[16:18], "big")
    segment = frame[34:14 + ip_len]
    pseudo = src + dst + bytes((0, proto)) + len(segment).to_bytes(2, "big")
    # a receiver's check: the sum over pseudo-header and segment, checksum included, is all ones
    assert reference_sum(pseudo + segment) == 0xFFFF
    assert frame[14 + ip_len:] == padding


def test_other_frames_pass_untouched():
    arp = b"\xff" * 6 + b"\x04" * 6 + b"\x08\x06" + bytes(28)
    assert with_l4_checksum(arp) == arp


@given(st.floats(0, 100), st.floats(0, 200), st.floats(0, 100), st.floats(0, 100), st.integers(0, 2**32))
def test_impairment_due(loss, delay, jitter, reorder, seed):
    rng = random.Random(seed)
    now = 1000.0
    assert Impairment(loss, delay, jitter, reorder, cut=True).due(rng, now) is None
    assert Impairment(100.0, delay, jitter, reorder).due(rng, now) is None
    due = Impairment(0, delay, jitter, 0).due(rng, now)
    assert due is not None and now + max(0, delay - jitter) / 1000 - 1e-9 <= due <= now + (delay + jitter) / 1000 + 1e-9
    assert Impairment(0, delay, jitter, 100.0).due(rng, now) == now
