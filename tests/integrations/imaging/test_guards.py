"""The fetch guards: allowlist, forbidden addresses, redirects, content types, byte limits while
streaming, timeouts and the overall deadline.

The misbehaving peers here (a redirecting server, one that streams without end, one that
trickles, one that accepts and never answers) are small local servers on real sockets: no real
PACS behaves like that on purpose, so they are fakes at the network edge. The DNS answer that
points at the metadata address is a resolver function passed in (also the network edge).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.imaging import (
    DicomWebClient,
    EndpointAllowlist,
    FetchLimits,
    GuardedHttp,
    ImageFetchTimeoutError,
    ImageNotAllowedError,
    ImageReferenceError,
    ImageSourceUnavailableError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from integrations.imaging.guards import forbidden_address
from tests.integrations.imaging.conftest import guarded

Handler = Callable[[BaseHTTPRequestHandler], None]


class _Server:
    def __init__(self, handle: Handler) -> None:
        hits: list[str] = []

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                hits.append(self.path)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    handle(self)

            def log_message(self, *args: object) -> None:
                return

        self.hits = hits
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], _Server]]:
    servers: list[_Server] = []

    def start(handle: Handler) -> _Server:
        servers.append(_Server(handle))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# ------------------------------------------------------------------ allowlist


@pytest.mark.parametrize(
    "url",
    [
        "https://pacs.example.org/dicom-web",
        "https://pacs.example.org/dicom-web/studies/1.2.3/metadata",
        "https://PACS.example.org:443/dicom-web/studies",
        "https://pacs.example.org./dicom-web/x",
    ],
)
def test_allowlist_accepts_urls_under_the_prefix(url: str) -> None:
    allow = EndpointAllowlist(["https://pacs.example.org/dicom-web/"])
    assert allow.check(url).origin.host == "pacs.example.org"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://pacs.example.org/dicom-webx/studies", "not on the imaging allowlist"),
        ("https://pacs.example.org/other", "not on the imaging allowlist"),
        ("http://pacs.example.org/dicom-web/studies", "not on the imaging allowlist"),
        ("https://pacs.example.org:8443/dicom-web/studies", "not on the imaging allowlist"),
        ("https://evil.example.org/dicom-web/studies", "not on the imaging allowlist"),
        ("https://pacs.example.org.evil.net/dicom-web", "not on the imaging allowlist"),
        ("https://user:pw@pacs.example.org/dicom-web/x", "user information"),
        ("https://pacs.example.org/dicom-web/../admin", "dot segments"),
        ("https://pacs.example.org/dicom-web/%2e%2e/admin", "encoded path"),
        ("https://pacs.example.org/dicom-web%2fx", "encoded path"),
        ("https://pacs.example.org/dicom-web/x#frag", "fragment"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://pacs.example.org/dicom-web", "scheme"),
    ],
)
def test_allowlist_refuses(url: str, why: str) -> None:
    allow = EndpointAllowlist(["https://pacs.example.org/dicom-web"])
    with pytest.raises(ImageNotAllowedError, match=why) as caught:
        allow.check(url)
    assert "/dicom-web" not in caught.value.reason  # host only, never the path


def test_empty_allowlist_allows_nothing() -> None:
    with pytest.raises(ImageNotAllowedError):
        EndpointAllowlist([]).check("https://pacs.example.org/dicom-web")


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("169.254.169.254", True),
        ("fe80::1", True),
        ("fd00:ec2::254", True),
        ("::ffff:169.254.169.254", True),
        ("100.100.100.200", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.10", False),
        ("::1", False),
        ("fd12:3456::1", False),
    ],
)
def test_forbidden_addresses(address: str, forbidden: bool) -> None:
    assert forbidden_address(address) is forbidden


def test_allowlisted_name_resolving_to_metadata_address_is_refused() -> None:
    allow = EndpointAllowlist(
        ["http://pacs.internal/dicom-web"], resolver=lambda host, port: ["169.254.169.254"]
    )
    with GuardedHttp(allow) as http, pytest.raises(ImageNotAllowedError, match="forbidden address"):
        DicomWebClient("http://pacs.internal/dicom-web", http).metadata("1.2.3")


def test_client_refuses_a_base_url_off_the_allowlist() -> None:
    with pytest.raises(ImageNotAllowedError):
        DicomWebClient("http://127.0.0.1:9/dicom-web", guarded("http://127.0.0.1:9/other"))


@pytest.mark.parametrize("uid", ["1.2.3/../../x", "1.2.a", "01.2", "1." + "2" * 70, ""])
def test_malformed_uids_never_reach_a_url(uid: str) -> None:
    pacs = DicomWebClient("http://127.0.0.1:9/dicom-web", guarded("http://127.0.0.1:9/dicom-web"))
    with pytest.raises(ImageReferenceError, match="UID"):
        pacs.metadata(uid)


# ------------------------------------------------------------------ live peers


def test_redirect_off_the_allowlist_is_refused_and_not_followed(
    serve: Callable[[Handler], _Server],
) -> None:
    target = serve(lambda h: (h.send_response(200), h.end_headers()))

    def redirect(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", f"{target.url}/dicom-web/studies/1.2.3/metadata")
        h.send_header("Content-Length", "0")
        h.end_headers()

    origin = serve(redirect)
    pacs = DicomWebClient(f"{origin.url}/dicom-web", guarded(f"{origin.url}/dicom-web"))
    with pytest.raises(ImageNotAllowedError, match=r"redirect .* off the allowlist"):
        pacs.metadata("1.2.3")
    assert origin.hits == ["/dicom-web/studies/1.2.3/metadata"]
    assert target.hits == []


def test_redirect_within_the_allowlist_is_followed(serve: Callable[[Handler], _Server]) -> None:
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/old/"):
            h.send_response(301)
            h.send_header("Location", h.path.replace("/old/", "/dicom-web/", 1))
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        body = b"[]"
        h.send_response(200)
        h.send_header("Content-Type", "application/dicom+json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    server = serve(handle)
    pacs = DicomWebClient(f"{server.url}/old", guarded(f"{server.url}/"))
    assert pacs.metadata("1.2.3") == []
    assert server.hits == ["/old/studies/1.2.3/metadata", "/dicom-web/studies/1.2.3/metadata"]


def test_unlisted_content_type_is_refused(serve: Callable[[Handler], _Server]) -> None:
    def html(h: BaseHTTPRequestHandler) -> None:
        body = b"<html>login</html>"
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    server = serve(html)
    pacs = DicomWebClient(f"{server.url}/dw", guarded(f"{server.url}/dw"))
    with pytest.raises(UnsupportedImageError, match="text/html"):
        pacs.metadata("1.2.3")


def test_compressed_answer_is_refused(serve: Callable[[Handler], _Server]) -> None:
    def gzip(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/dicom+json")
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", "0")
        h.end_headers()

    server = serve(gzip)
    pacs = DicomWebClient(f"{server.url}/dw", guarded(f"{server.url}/dw"))
    with pytest.raises(UnsupportedImageError, match="content-encoding"):
        pacs.metadata("1.2.3")


def test_byte_limit_stops_an_endless_chunked_stream(serve: Callable[[Handler], _Server]) -> None:
    sent: list[int] = []

    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/dicom+json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"[" + b" " * 65_535
        total = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            h.wfile.flush()
            total += len(chunk)
            sent.append(total)

    server = serve(endless)
    http = guarded(f"{server.url}/dw", max_bytes=1_000_000)
    pacs = DicomWebClient(f"{server.url}/dw", http)
    with pytest.raises(ImageTooLargeError, match="1000000 byte limit"):
        pacs.metadata("1.2.3")
    time.sleep(0.2)
    # The client stopped reading and closed: the server could not push much past the limit
    # (socket buffers hold some megabytes at most), never the 20 s worth it tried.
    assert sent[-1] < 64 * 1024 * 1024


def test_declared_length_over_the_limit_is_refused_before_reading(
    serve: Callable[[Handler], _Server],
) -> None:
    def big(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/dicom+json")
        h.send_header("Content-Length", str(10**9))
        h.end_headers()

    server = serve(big)
    pacs = DicomWebClient(f"{server.url}/dw", guarded(f"{server.url}/dw", max_bytes=1000))
    with pytest.raises(ImageTooLargeError, match="declared 1000000000 bytes"):
        pacs.metadata("1.2.3")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A socket that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_server_that_never_answers_times_out(silent_port: int) -> None:
    base = f"http://127.0.0.1:{silent_port}/dw"
    pacs = DicomWebClient(base, guarded(base, read_timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(ImageFetchTimeoutError) as caught:
        pacs.metadata("1.2.3")
    assert caught.value.transient
    assert time.monotonic() - started < 10


def test_trickling_server_hits_the_overall_deadline(serve: Callable[[Handler], _Server]) -> None:
    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/dicom+json")
        h.send_header("Content-Length", "1000")
        h.end_headers()
        for _ in range(1000):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.1)

    server = serve(trickle)
    base = f"{server.url}/dw"
    pacs = DicomWebClient(base, guarded(base, read_timeout_s=5, deadline_s=1.0))
    with pytest.raises(ImageFetchTimeoutError, match="deadline"):
        pacs.metadata("1.2.3")


def test_unreachable_server_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/dw"  # nothing listens there now
    with pytest.raises(ImageSourceUnavailableError, match="unreachable") as caught:
        DicomWebClient(base, guarded(base)).metadata("1.2.3")
    assert caught.value.transient


def test_server_errors_are_transient(serve: Callable[[Handler], _Server]) -> None:
    def busy(h: BaseHTTPRequestHandler) -> None:
        h.send_response(503)
        h.send_header("Content-Length", "0")
        h.end_headers()

    server = serve(busy)
    base = f"{server.url}/dw"
    with pytest.raises(ImageSourceUnavailableError) as caught:
        DicomWebClient(base, guarded(base)).metadata("1.2.3")
    assert caught.value.status == 503
    assert caught.value.transient


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        FetchLimits(max_bytes=0)
