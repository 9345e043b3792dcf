"""App factory behaviour every endpoint inherits: health, request ids, errors, body limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from cds_service.app import create_app
from cds_service.errors import InsecureSettingsError, NotFoundError
from cds_service.settings import Settings

probe = APIRouter()


class Item(BaseModel):
    name: str
    count: int


@probe.post("/_test/items")
def create_item(item: Item) -> dict[str, int]:
    return {"count": item.count}


@probe.get("/_test/boom")
def boom() -> None:
    raise RuntimeError("secret detail that must not reach the client")


@probe.get("/_test/missing")
def missing() -> None:
    raise NotFoundError("no such analysis")


@pytest.fixture
def probe_client(make_settings: Callable[..., Settings], sqlite_url: str) -> Iterator[TestClient]:
    app = create_app(
        make_settings(database_url=sqlite_url, max_body_bytes=4096), extra_routers=(probe,)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["status"] == "ok"


def test_readyz_reports_unreachable_database(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(database_url="postgresql://nobody@127.0.0.1:1/none"))
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "unavailable"


def test_openapi_docs_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/healthz" in client.get("/openapi.json").json()["paths"]


def test_request_id_generated_and_honoured(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 36
    assert (
        client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    # A request id that could inject into logs is replaced, not echoed.
    unsafe = client.get("/healthz", headers={"X-Request-Id": 'x" injected=1'})
    assert unsafe.headers["x-request-id"] != 'x" injected=1'


def test_unknown_route_is_operation_outcome(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"


def test_domain_error_is_operation_outcome(probe_client: TestClient) -> None:
    response = probe_client.get("/_test/missing")
    assert response.status_code == 404
    assert response.json()["issue"][0]["diagnostics"] == "no such analysis"


def test_malformed_body_is_400_operation_outcome(probe_client: TestClient) -> None:
    response = probe_client.post("/_test/items", json={"name": "x", "count": "many"})
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["code"] == "invalid"
    assert issue["expression"] == ["count"]
    assert "many" not in response.text  # the offending value is not echoed back
    not_json = probe_client.post(
        "/_test/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["resourceType"] == "OperationOutcome"


def test_unhandled_error_is_500_without_trace(probe_client: TestClient) -> None:
    response = probe_client.get("/_test/boom", headers={"X-Request-Id": "req-boom"})
    assert response.status_code == 500
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "req-boom" in body["issue"][0]["diagnostics"]
    assert "secret detail" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["x-request-id"] == "req-boom"


def test_body_limit_by_content_length(probe_client: TestClient) -> None:
    response = probe_client.post(
        "/_test/items", content=b"x" * 5000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["issue"][0]["code"] == "too-costly"


def test_body_limit_while_streaming(probe_client: TestClient) -> None:
    """A chunked body with no Content-Length is cut off as it passes the limit."""

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'", "count": 1}'

    response = probe_client.post(
        "/_test/items", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"


def test_body_under_limit_passes(probe_client: TestClient) -> None:
    response = probe_client.post("/_test/items", json={"name": "x", "count": 3})
    assert response.status_code == 200
    assert response.json() == {"count": 3}


def test_factory_refuses_insecure_production(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(InsecureSettingsError):
        create_app(make_settings(environment="production"))


def test_each_app_is_isolated(make_settings: Callable[..., Settings], sqlite_url: str) -> None:
    first: FastAPI = create_app(make_settings(database_url=sqlite_url, instance_id="a"))
    second: FastAPI = create_app(make_settings(database_url=sqlite_url, instance_id="b"))
    assert first.state.engine is not second.state.engine
    assert first.state.settings.instance_id == "a"
