"""MLLP framing: the incremental decoder against split, merged, noisy and oversize streams."""

from __future__ import annotations

import pytest

from integrations.hl7v2.mllp import Frame, FrameDecoder, Garbage, OversizeFrame, frame

MSG_A = b"MSH|^~\\&|A|B|C|D|1||ORU^R01|A1|P|2.5.1\rPID|1\r"
MSG_B = b"MSH|^~\\&|A|B|C|D|1||ORU^R01|B2|P|2.5.1\r"


def test_frame_wraps_in_vt_fs_cr() -> None:
    assert frame(b"X") == b"\x0bX\x1c\x0d"


def test_one_frame_split_byte_by_byte() -> None:
    decoder = FrameDecoder(1024)
    events = []
    for byte in frame(MSG_A):
        events += decoder.feed(bytes([byte]))
    assert events == [Frame(MSG_A)]
    assert not decoder.in_frame


def test_several_frames_in_one_read_come_out_in_order() -> None:
    decoder = FrameDecoder(1024)
    assert decoder.feed(frame(MSG_A) + frame(MSG_B) + frame(MSG_A)) == [
        Frame(MSG_A),
        Frame(MSG_B),
        Frame(MSG_A),
    ]


def test_frame_split_across_reads_at_every_position() -> None:
    stream = frame(MSG_A) + frame(MSG_B)
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder(1024)
        events = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert events == [Frame(MSG_A), Frame(MSG_B)], cut


def test_garbage_between_frames_is_reported_and_skipped() -> None:
    decoder = FrameDecoder(1024)
    events = decoder.feed(b"\r\n" + frame(MSG_A) + b"noise" + frame(MSG_B))
    assert events == [Garbage(2), Frame(MSG_A), Garbage(5), Frame(MSG_B)]


def test_oversize_frame_is_discarded_with_its_head_and_next_frame_still_decodes() -> None:
    decoder = FrameDecoder(64)
    big = MSG_B + b"OBX|" + b"x" * 500
    events = []
    for i in range(0, len(frame(big)), 37):
        events += decoder.feed(frame(big)[i : i + 37])
    events += decoder.feed(frame(MSG_B))
    assert len(events) == 2
    first = events[0]
    assert isinstance(first, OversizeFrame)
    assert first.size == len(big)
    assert first.head.startswith(MSG_B)
    assert decoder.pending_bytes == 0
    assert events[1] == Frame(MSG_B)


def test_truncated_frame_is_pending_not_emitted() -> None:
    decoder = FrameDecoder(1024)
    assert decoder.feed(frame(MSG_A)[:-5]) == []
    assert decoder.in_frame
    assert decoder.pending_bytes > 0


def test_max_frame_size_is_exact() -> None:
    decoder = FrameDecoder(len(MSG_A))
    assert decoder.feed(frame(MSG_A)) == [Frame(MSG_A)]
    decoder = FrameDecoder(len(MSG_A) - 1)
    assert isinstance(decoder.feed(frame(MSG_A))[0], OversizeFrame)


def test_tiny_limit_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        FrameDecoder(1)
