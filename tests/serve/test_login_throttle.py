"""Defect 8: failed logins are throttled per client address, on the page's login form and
on the JSON API alike (the real app on 127.0.0.1, the real model)."""
from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from app_server import start_app

pytestmark = pytest.mark.slow

USER, PASSWORD = "reader", "s3cret"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = start_app(tmp_path_factory.mktemp("throttle"),
                    env={"VERBATIM_AUTH": f"{USER}:{PASSWORD}"})
    yield app
    app.stop()


def request(req: urllib.request.Request):
    """(status, headers (case-insensitive), body)."""
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def page_login(url: str, password: str):
    body = urllib.parse.urlencode({"username": USER, "password": password}).encode()
    return request(urllib.request.Request(url + "login", data=body, method="POST"))


def api_search(url: str, password: str):
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    body = json.dumps({"question": "What hardware did the US export bans target?",
                       "k": 1}).encode()
    return request(urllib.request.Request(
        url + "api/search", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"}))


def burst(call, url: str, tries: int = 300) -> list:
    return [call(url, "wrong") for _ in range(tries)]


def wait_out(responses) -> None:
    time.sleep(float(responses[-1][1].get("Retry-After", 0)) + 0.2)


def the_right_password_waits_its_turn(call, url: str, responses) -> bytes:
    """Sent while more than a second of the wait is left (a refused try said Retry-After:
    2 or more), the right password is refused unchecked; once the wait is over it logs in.
    The body of that login."""
    last, deadline = responses[-1], time.monotonic() + 60
    while int(last[1].get("Retry-After") or 0) < 2:  # the wait ends within a second
        assert time.monotonic() < deadline, "no wait of 2 s or more within a minute"
        last = call(url, "wrong")
    assert call(url, PASSWORD)[0] == 429
    wait_out([last])
    code, _, body = call(url, PASSWORD)
    assert code == 200
    return body


def test_a_burst_of_wrong_page_logins_is_refused_after_a_few(server):
    responses = burst(page_login, server.url)
    codes = [code for code, _, _ in responses]
    assert codes[:5] == [400] * 5, codes[:10]  # wrong: checked, and said so
    assert codes.count(429) >= 290, codes  # then refused without checking
    refused = next(r for r in responses if r[0] == 429)
    assert int(refused[1]["Retry-After"]) >= 1
    assert "try again in" in json.loads(refused[2])["detail"]
    the_right_password_waits_its_turn(page_login, server.url, responses)


def test_a_burst_of_wrong_api_logins_is_refused_after_a_few(server):
    responses = burst(api_search, server.url, 100)
    codes = [code for code, _, _ in responses]
    assert codes[:5] == [401] * 5, codes[:10]
    assert codes.count(429) >= 90, codes
    refused = next(r for r in responses if r[0] == 429)
    assert "try again in" in json.loads(refused[2])["error"]
    assert json.loads(the_right_password_waits_its_turn(api_search, server.url, responses))
