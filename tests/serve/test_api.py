"""The JSON API beside the page (qa/serve/api.py), against the real app served on 127.0.0.1
with the real model: the same JSON as the page's /ask and /search, the same login, clear
errors with proper status codes, the k cap, OpenAPI docs at /docs."""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from app_server import start_app

pytestmark = pytest.mark.slow

USER, PASSWORD = "reader", "s3cret:with-colon"
QUESTION = "What hardware did the US export bans target?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = start_app(tmp_path_factory.mktemp("json-api"),
                    env={"VERBATIM_AUTH": f"{USER}:{PASSWORD}"})
    yield app
    app.stop()


def call(server, path: str, body: object = None, *, auth: bool = True, raw: bytes | None = None,
         method: str = "POST"):
    """(status, headers, parsed JSON or text) of one request to the running app."""
    headers = {"Content-Type": "application/json"}
    if auth:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(server.url + path.lstrip("/"), data=data,
                                     headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, got, text = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, got, text = exc.code, exc.headers, exc.read()
    try:
        return status, got, json.loads(text)
    except ValueError:
        return status, got, text.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server.url, auth=(USER, PASSWORD), verbose=False, analytics_enabled=False,
                  download_files=False)


def test_the_api_needs_the_login(server):
    status, headers, body = call(server, "/api/ask", {"question": QUESTION}, auth=False)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert "HTTP Basic" in body["error"]


def test_ask_is_the_page_ask_as_plain_json(server, client):
    status, headers, body = call(server, "/api/ask",
                                 {"question": QUESTION, "k": 3, "mode": "hybrid"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == client.predict(QUESTION, 3, "hybrid", api_name="/ask")
    assert body["abstained"] is False and 1 <= len(body["quotes"]) <= 3
    first = body["quotes"][0]
    marked = [first["text"][h["start"]:h["end"]] for h in first["highlights"]]
    assert any("Nvidia GPUs" in m for m in marked)


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_search_is_the_page_search_as_plain_json(server, client, mode):
    question = "Which platform did Huawei unveil as a rival to Nvidia?"
    status, _, body = call(server, "/api/search", {"question": question, "k": 4, "mode": mode})
    assert status == 200
    assert body == client.predict(question, 4, mode, api_name="/search")
    assert any("CloudMatrix 384" in hit["passage"]["text"] for hit in body)


def test_defaults_and_filters(server):
    status, _, body = call(server, "/api/search", {"question": QUESTION})
    assert status == 200 and 1 <= len(body) <= 5
    status, _, body = call(server, "/api/search", {"question": QUESTION, "k": None,
                                                   "mode": None})
    assert status == 200 and 1 <= len(body) <= 5
    status, _, body = call(server, "/api/search", {"question": QUESTION,
                                                   "articles": ["no-such-article"]})
    assert (status, body) == (200, [])
    status, _, body = call(server, "/api/ask", {"question": "When was the Eiffel Tower built?",
                                                "mode": "dense"})
    assert status == 200 and body["abstained"] is True and body["quotes"] == []
    status, _, body = call(server, "/api/ask", {"question": "   "})
    assert status == 200 and body["quotes"] == [] and body["abstained"] is False


ERRORS = {
    "k zero": ({"question": QUESTION, "k": 0}, 422, "k must be > 0, got 0"),
    "k over the cap": ({"question": QUESTION, "k": 101}, 422, "k must be at most 100, got 101"),
    "k a billion": ({"question": QUESTION, "k": 10**9}, 422, "k must be at most 100"),
    "k text": ({"question": QUESTION, "k": "abc"}, 422, "k must be a whole number, got 'abc'"),
    "k a fraction": ({"question": QUESTION, "k": 2.5}, 422, "k must be a whole number"),
    "bad mode": ({"question": QUESTION, "mode": "fuzzy"}, 422,
                 "mode must be one of dense, bm25, hybrid, got 'fuzzy'"),
    "too long": ({"question": "why " * 600}, 422, "the question is 2400 characters long"),
    "no question": ({"k": 3}, 422, "question: Field required"),
    "a question that is no text": ({"question": 42}, 422, "question"),
    "an unknown field": ({"question": QUESTION, "kk": 3}, 422, "kk"),
    "not an object": ([QUESTION], 422, "send a JSON object"),
    "a bad date": ({"question": QUESTION, "date_from": "next week"}, 422,
                   "date_from must be a date"),
    "articles as text": ({"question": QUESTION, "articles": "x"}, 422, "articles"),
}


@pytest.mark.parametrize("kind", list(ERRORS))
@pytest.mark.parametrize("path", ["/api/ask", "/api/search"])
def test_errors_are_clear_json_with_a_status(server, path, kind):
    body, expected_status, message = ERRORS[kind]
    status, headers, got = call(server, path, body)
    assert status == expected_status, got
    assert headers["Content-Type"] == "application/json"
    assert message in got["error"], got


def test_a_body_that_is_not_json_is_a_400(server):
    status, _, got = call(server, "/api/ask", raw=b"{not json")
    assert status == 400 and "not valid JSON" in got["error"]


def test_a_lone_surrogate_is_a_clear_error(server):
    status, _, got = call(server, "/api/ask", raw=b'{"question": "caf\\udce9 prices?"}')
    assert status in (400, 422) and "error" in got, got


def test_the_docs_are_at_docs_behind_the_login(server):
    status, _, spec = call(server, "/openapi.json", method="GET")
    assert status == 200 and {"/api/ask", "/api/search"} <= set(spec["paths"])
    assert "k" in spec["components"]["schemas"]["Question"]["properties"]
    status, _, html = call(server, "/docs", method="GET")
    assert status == 200 and "/api/ask" in html and "/openapi.json" in html
    assert call(server, "/docs", method="GET", auth=False)[0] == 401


def test_many_clients_at_once_all_get_answers(server):
    questions = ["Who formed the Model-Chip Ecosystem Innovation Alliance?", QUESTION,
                 "Which platform did Huawei unveil as a rival to Nvidia?"] * 8

    def ask(question):
        return call(server, "/api/ask", {"question": question, "k": 2})

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(ask, questions))
    assert [status for status, _, _ in results] == [200] * len(questions)
    assert all(body["question"] == q for (_, _, body), q in zip(results, questions))


def test_kept_alive_connections_are_not_delayed(server):
    """Each response on a kept-alive connection once waited ~40 ms (Nagle against the
    client's delayed ACK: the listening socket did not say it was TCP, so asyncio left
    TCP_NODELAY off)."""
    import http.client
    import statistics
    import time
    from urllib.parse import urlparse

    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", urlparse(server.url).port, timeout=60)
    took = []
    for _ in range(21):
        started = time.perf_counter()
        connection.request("POST", "/api/ask", json.dumps({"question": " "}),
                           {"Authorization": f"Basic {token}",
                            "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        took.append(time.perf_counter() - started)
    connection.close()
    assert statistics.median(took) < 0.025, took


def test_ask_reads_a_follow_up_with_the_history_sent(server):
    first_question = "What is StepFun known for?"
    status, _, first = call(server, "/api/ask", {"question": first_question})
    assert status == 200 and not first["abstained"]
    history = [{"question": first_question, "quotes": first["quotes"]}]
    status, _, body = call(server, "/api/ask", {"question": "And Baidu?", "history": history})
    assert status == 200 and body["read_with"] == first_question
    quote = body["quotes"][0]
    marked = [quote["text"][h["start"]:h["end"]] for h in quote["highlights"]]
    assert any("Baidu, a leader in AI research and innovation" in m for m in marked)
    # The same question without the history stands alone.
    status, _, alone = call(server, "/api/ask", {"question": "And Baidu?"})
    assert status == 200 and alone["read_with"] is None


def test_history_is_bounded_in_turns_and_size(server):
    turn = {"question": QUESTION, "quotes": []}
    status, _, body = call(server, "/api/ask", {"question": "And Baidu?",
                                                "history": [turn] * 9})
    assert status == 422 and "history" in body["error"]
    huge = {"question": QUESTION, "quotes": [{"article_id": "a", "start": 0,
                                              "text": "x" * 20_001}]}
    status, _, body = call(server, "/api/ask", {"question": "And Baidu?", "history": [huge]})
    assert status == 422 and "text" in body["error"]
