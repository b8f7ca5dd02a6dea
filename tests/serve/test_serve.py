"""Defect 8 (the bind address): serving beyond this machine without a login warns loudly and
prints the addresses it can really be reached at, not 127.0.0.1. (No test binds 0.0.0.0:
`serve` is replaced, so this checks what app.py prints and would serve.)"""
from __future__ import annotations

import ipaddress
import socket

import pytest

from qa.serve import server
from conftest import FakeEmbedder
from qa.serve.api import exposure_warning, local_addresses, serving_urls

ADDRESSES = local_addresses()
NO_ADDRESS = "this machine has no address but loopback"


@pytest.mark.skipif(not ADDRESSES, reason=NO_ADDRESS)
def test_local_addresses_are_real_and_not_loopback():
    for address in ADDRESSES:
        parsed = ipaddress.ip_address(address)
        assert parsed.version == 4 and not parsed.is_loopback, address


def test_local_addresses_leave_out_loopback(monkeypatch):
    # Whatever this machine has: the host name resolving to 127.0.1.1 (as Debian sets it)
    # is no address to be reached at.
    monkeypatch.setattr(socket, "if_nameindex", lambda: [])
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0))
        for address in ("127.0.1.1", "192.0.2.9", "10.0.0.2")])
    assert local_addresses() == ["10.0.0.2", "192.0.2.9"]


@pytest.mark.parametrize("host", ["0.0.0.0", "", "192.0.2.77"])
def test_a_public_bind_without_login_warns_with_the_real_addresses(host):
    if host in ("", "0.0.0.0") and not ADDRESSES:
        pytest.skip(NO_ADDRESS)
    warning = exposure_warning(host, 7861, None)
    assert "WARNING" in warning and "WITHOUT A LOGIN" in warning
    assert "VERBATIM_AUTH=user:password" in warning
    assert "127.0.0.1:7861" not in warning.replace("serve on 127.0.0.1", "")
    expected = ADDRESSES if host in ("", "0.0.0.0") else [host]
    for address in expected:
        assert f"http://{address}:7861" in warning


@pytest.mark.parametrize("host,auth", [("127.0.0.1", None), ("localhost", None), ("::1", None),
                                       ("0.0.0.0", ("u", "p"))])
def test_no_warning_on_localhost_or_with_a_login(host, auth):
    assert exposure_warning(host, 7861, auth) is None


@pytest.mark.skipif(not ADDRESSES, reason="this machine has no address but loopback")
def test_a_wildcard_bind_is_shown_at_a_real_address_first():
    urls = serving_urls("0.0.0.0", 7861)
    assert urls[0] == f"http://{ADDRESSES[0]}:7861" and urls[-1] == "http://127.0.0.1:7861"


def test_app_main_warns_and_prints_where_it_is_reachable(tmp_path, monkeypatch, capsys):
    served = {}
    # The machine's addresses as given, so the printed ones are checked on every machine.
    monkeypatch.setattr("qa.serve.api.local_addresses", lambda: ["192.0.2.9"])

    def fake_prepare(settings, *engine):
        return server.Page(settings, FakeEmbedder())

    def fake_serve(asgi, host, port, on_ready=None, forwarded_allow_ips=None):
        served.update(host=host, port=port, app=asgi, forwarded=forwarded_allow_ips)
        on_ready()

    monkeypatch.setattr(server, "prepare", fake_prepare)
    monkeypatch.setattr("qa.serve.api.serve", fake_serve)
    monkeypatch.delenv("VERBATIM_AUTH", raising=False)
    assert server.main(["--host", "0.0.0.0", "--port", "7861", "--corpus", str(tmp_path / "c"),
                     "--index", str(tmp_path / "i")]) == 0
    out, err = capsys.readouterr()
    assert served["host"] == "0.0.0.0" and served["port"] == 7861
    assert served["forwarded"] is None  # no forwarded header believed unless asked
    assert "WITHOUT A LOGIN" in err and "http://192.0.2.9:7861" in err
    ready = next(line for line in out.splitlines() if line.startswith("Verbatim is ready"))
    assert ready.startswith("Verbatim is ready at http://192.0.2.9:7861")
    assert "/docs" in ready

    monkeypatch.setenv("VERBATIM_AUTH", "u:p")
    assert server.main(["--host", "0.0.0.0", "--port", "7861", "--corpus", str(tmp_path / "c"),
                     "--index", str(tmp_path / "i")]) == 0
    assert "WITHOUT A LOGIN" not in capsys.readouterr().err
