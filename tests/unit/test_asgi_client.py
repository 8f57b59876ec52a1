"""The in-process client answers as Starlette's `TestClient` does, in one trip per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient

from tests.support.asgi_client import InProcessClient


def make_app(disconnects: list[str]) -> FastAPI:
    app = FastAPI()

    @app.post("/echo/{name}")
    async def echo(name: str, request: Request) -> Response:
        body = await request.body()
        response = JSONResponse(
            {
                "name": name,
                "path": request.url.path,
                "query": request.url.query,
                "body": body.decode(),
                "client": request.client.host if request.client else None,
                "cookie": request.cookies.get("flavour"),
            },
            status_code=201,
            headers={"X-Seen": "yes"},
        )
        response.set_cookie("baked", "oat")
        return response

    @app.get("/moved")
    def moved() -> Response:
        return Response(status_code=303, headers={"Location": "/echo-get"})

    @app.get("/echo-get")
    def echo_get() -> dict[str, str]:
        return {"arrived": "after the redirect"}

    @app.get("/broken")
    def broken() -> None:
        raise RuntimeError("the handler broke")

    @app.get("/endless")
    async def endless(request: Request) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            n = 0
            try:
                while True:
                    yield f"part {n}\n".encode()
                    n += 1
                    await asyncio.sleep(0)
            finally:
                disconnects.append("endless stopped")

        return StreamingResponse(parts(), media_type="text/plain")

    return app


@pytest.fixture
def clients() -> Iterator[tuple[TestClient, InProcessClient, list[str]]]:
    disconnects: list[str] = []
    app = make_app(disconnects)
    with TestClient(app) as reference, InProcessClient(app) as fast:
        yield reference, fast, disconnects


def test_answers_cookies_and_redirects_are_the_same_as_the_test_clients(
    clients: tuple[TestClient, InProcessClient, list[str]],
) -> None:
    reference, fast, _ = clients
    for client in (reference, fast):
        client.cookies.set("flavour", "plain")
    answers = []
    for client in (reference, fast):
        echoed = client.post("/echo/a%20b?x=1&y=%C3%A9", content=b"hello")
        redirected = client.get("/moved")
        answers.append(
            (
                echoed.status_code,
                echoed.headers["x-seen"],
                echoed.json(),
                client.cookies.get("baked"),
                redirected.status_code,
                redirected.json(),
                [r.status_code for r in redirected.history],
            )
        )
    assert answers[0] == answers[1]
    assert answers[1][2]["name"] == "a b"
    assert answers[1][2]["body"] == "hello"
    assert answers[1][2]["cookie"] == "plain"
    assert answers[1][3] == "oat"
    assert answers[1][5:] == ({"arrived": "after the redirect"}, [303])


def test_a_server_error_is_raised_or_answered_as_the_test_client_does() -> None:
    app = make_app([])
    with InProcessClient(app) as raising, pytest.raises(RuntimeError, match="handler broke"):
        raising.get("/broken")
    with (
        TestClient(app, raise_server_exceptions=False) as reference,
        InProcessClient(app, raise_server_exceptions=False) as fast,
    ):
        answers = [client.get("/broken") for client in (reference, fast)]
    assert [a.status_code for a in answers] == [500, 500]
    assert answers[0].text == answers[1].text


def test_a_stream_closed_early_stops_the_app(
    clients: tuple[TestClient, InProcessClient, list[str]],
) -> None:
    _, fast, disconnects = clients
    with fast.stream("GET", "/endless") as response:
        lines = response.iter_lines()
        assert [next(lines) for _ in range(3)] == ["part 0", "part 1", "part 2"]
    assert disconnects == ["endless stopped"]


def test_a_client_beside_another_has_its_own_cookies_on_the_same_app(
    clients: tuple[TestClient, InProcessClient, list[str]],
) -> None:
    _, fast, _ = clients
    fast.cookies.set("flavour", "first")
    second = InProcessClient.beside(fast)
    assert second.post("/echo/x").json()["cookie"] is None
    assert fast.post("/echo/x").json()["cookie"] == "first"
