"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol, Release 1).

A frame is ``<VT=0x0B> message <FS=0x1C><CR=0x0D>``; MLLP carries no length and no checksum, so
the receiver finds frame edges in a byte stream (HL7 v2.5.1 Appendix C, "MLLP"). TCP delivers
that stream in arbitrary pieces: one read may end inside a frame, hold several frames, or carry
bytes outside any frame (a sender's stray CR/LF, line noise). :class:`FrameDecoder` is fed those
pieces and hands back complete frames and framing events; it never buffers more than
``max_frame_bytes`` of one message (a peer cannot grow our memory without bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

START_BLOCK: Final = b"\x0b"
END_BLOCK: Final = b"\x1c"
CARRIAGE_RETURN: Final = b"\x0d"
TRAILER: Final = END_BLOCK + CARRIAGE_RETURN

#: How many leading bytes of an oversize frame are kept, so the error ACK can still name the
#: message (MSH-10 sits well within the first few hundred bytes of any real MSH segment).
OVERSIZE_HEAD_BYTES: Final = 4096


def frame(message: bytes) -> bytes:
    """Wrap one encoded HL7 message in an MLLP block."""
    return START_BLOCK + message + TRAILER


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete MLLP block's content (without the framing bytes)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class OversizeFrame:
    """A block that exceeded the maximum size; its content was discarded up to its end.

    Attributes:
        head: the first bytes of the content (up to :data:`OVERSIZE_HEAD_BYTES`), enough to read
            the MSH segment for the reject ACK.
        size: how many content bytes the block had.
    """

    head: bytes
    size: int


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes seen outside any block (before a start byte); skipped."""

    size: int


DecodedEvent = Frame | OversizeFrame | Garbage


class FrameDecoder:
    """Incremental MLLP decoder: feed it reads, get complete frames back in order.

    Args:
        max_frame_bytes: the largest message content accepted; a longer block is reported as
            :class:`OversizeFrame` once its end arrives (the content itself is dropped as it comes).
    """

    def __init__(self, max_frame_bytes: int) -> None:
        if max_frame_bytes < 16:
            raise ValueError("max_frame_bytes must be at least 16")
        self._max = max_frame_bytes
        self._buffer = bytearray()
        self._in_frame = False
        self._oversize = False
        self._oversize_head = b""
        self._oversize_size = 0
        self._garbage = 0
        #: The last block ended with FS at the very end of a read: its CR may start the next.
        self._expect_cr = False

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished block held (0 between blocks)."""
        if self._oversize:
            return self._oversize_size
        return len(self._buffer) if self._in_frame else 0

    @property
    def in_frame(self) -> bool:
        """True while a block has started and its end has not arrived."""
        return self._in_frame

    def feed(self, data: bytes) -> list[DecodedEvent]:
        """Consume one read; return the events it completes, in stream order."""
        events: list[DecodedEvent] = []
        view = memoryview(data)
        pos = 0
        end = len(data)
        if self._expect_cr and end:
            self._expect_cr = False
            if data[:1] == CARRIAGE_RETURN:
                pos = 1
        while pos < end:
            if not self._in_frame:
                start = data.find(START_BLOCK, pos)
                if start < 0:
                    self._garbage += end - pos
                    break
                self._garbage += start - pos
                if self._garbage:
                    events.append(Garbage(self._garbage))
                    self._garbage = 0
                self._in_frame = True
                pos = start + 1
                continue
            stop = data.find(END_BLOCK, pos)
            chunk_end = end if stop < 0 else stop
            self._take(view[pos:chunk_end])
            if stop < 0:
                break
            # The block ends at FS; the CR after it is consumed as part of the trailer when it is
            # there. A missing CR is tolerated: the next byte is then treated as outside a block.
            pos = stop + 1
            if pos == end:
                self._expect_cr = True
            elif data[pos : pos + 1] == CARRIAGE_RETURN:
                pos += 1
            events.append(self._finish())
        return events

    def _take(self, chunk: memoryview) -> None:
        if not chunk:
            return
        if self._oversize:
            self._oversize_size += len(chunk)
            return
        if len(self._buffer) + len(chunk) > self._max:
            self._oversize = True
            joined = bytes(self._buffer) + bytes(chunk[:OVERSIZE_HEAD_BYTES])
            self._oversize_head = joined[:OVERSIZE_HEAD_BYTES]
            self._oversize_size = len(self._buffer) + len(chunk)
            self._buffer.clear()
            return
        self._buffer += chunk

    def _finish(self) -> DecodedEvent:
        self._in_frame = False
        if self._oversize:
            event: DecodedEvent = OversizeFrame(head=self._oversize_head, size=self._oversize_size)
            self._oversize = False
            self._oversize_head = b""
            self._oversize_size = 0
            return event
        payload = bytes(self._buffer)
        self._buffer.clear()
        return Frame(payload)


def send_and_receive(host: str, port: int, message: bytes, *, timeout: float) -> bytes:
    """Send one message in an MLLP block on a new TCP connection and return the content of the
    first block that comes back (the receiver's ACK).

    Raises:
        OSError: connecting, sending or receiving failed or timed out, or the peer closed the
            connection before a complete block arrived.
    """
    import socket

    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(frame(message))
        decoder = FrameDecoder(OVERSIZE_HEAD_BYTES * 256)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the peer closed the connection without an answer")
            for event in decoder.feed(chunk):
                if isinstance(event, Frame):
                    return event.payload
