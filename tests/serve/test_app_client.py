"""The page's named API (/ask, /search) through gradio_client, behind the optional login."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from app_server import start_app
from qa.serve.server import parse_auth
from qa.errors import ConfigError

USER, PASSWORD = "reader", "s3cret:with-colon"


def test_parse_auth():
    assert parse_auth(None) is None and parse_auth("") is None
    assert parse_auth(f"{USER}:{PASSWORD}") == (USER, PASSWORD)
    for bad in ("nopassword", ":x", "x:"):
        with pytest.raises(ConfigError, match="user:password"):
            parse_auth(bad)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Port from VERBATIM_PORT this time (the browser tests use --port), and a login.
    app = start_app(tmp_path_factory.mktemp("api"), use_port_flag=False,
                    env={"VERBATIM_AUTH": f"{USER}:{PASSWORD}"})
    yield app
    app.stop()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server.url, auth=(USER, PASSWORD), verbose=False, analytics_enabled=False,
                  download_files=False)


@pytest.mark.slow
def test_login_is_required(server):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + "gradio_api/info", timeout=30)
    assert info.value.code in (401, 403)


@pytest.mark.slow
def test_only_ask_and_search_are_public(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/ask", "/search"}
    names = [p["parameter_name"] for p in endpoints["/ask"]["parameters"]]
    assert names == ["question", "k", "mode"]


@pytest.mark.slow
def test_ask_returns_the_answer_as_json(client):
    result = client.predict("What hardware did the US export bans target?", 3, "hybrid",
                            api_name="/ask")
    assert result["question"] == "What hardware did the US export bans target?"
    assert result["abstained"] is False
    assert 1 <= len(result["quotes"]) <= 3
    first = result["quotes"][0]
    assert set(first) >= {"text", "title", "source", "date", "score", "highlights", "start"}
    marked = [first["text"][h["start"]:h["end"]] for h in first["highlights"]]
    assert any("Nvidia GPUs" in m for m in marked)
    assert 0 <= first["score"] <= 1


@pytest.mark.slow
def test_ask_abstains_off_topic(client):
    result = client.predict(question="When was the Eiffel Tower built?", k=5, mode="dense",
                            api_name="/ask")
    assert result["abstained"] is True and result["quotes"] == []


@pytest.mark.slow
def test_ask_reports_errors_as_messages(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="characters long"):
        client.predict("why " * 600, 3, "hybrid", api_name="/ask")
    with pytest.raises(AppError, match="mode must be one of"):
        client.predict("What hardware?", 3, "fuzzy", api_name="/ask")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_returns_ranked_hits(client, mode):
    hits = client.predict("Which platform did Huawei unveil as a rival to Nvidia?", 4, mode,
                          api_name="/search")
    assert 1 <= len(hits) <= 4
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert {"passage", "score", "dense_score", "lexical_score"} <= set(hits[0])
    assert any("CloudMatrix 384" in h["passage"]["text"] for h in hits)
