"""The backend app as rendered: X-Forwarded-* are trusted from the proxies' addresses only, and
every answer names its member (run in-process with Flask's test client)."""
import importlib.util
from pathlib import Path

import pytest

from provision.inventory import load
from provision.render import render
from provision.roles import backends

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def client(tmp_path):
    pytest.importorskip("flask")
    pytest.importorskip("flask_sock")       # the apps' /ws (dev extra)
    trusted = backends.trusted_proxies(load(ROOT / "inventory" / "lab.yml"))
    assert trusted == ["127.0.0.1", "10.123.0.10"]
    source = tmp_path / "app.py"
    source.write_text(render("app.py.j2", name="hello", message="Hello world!", own_url="http://10.123.0.11:8080",
                             member="web1-hello", trusted=trusted))
    spec = importlib.util.spec_from_file_location("rendered_app", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app.test_client()


def whoami(client, peer, **headers):
    resp = client.get("/whoami", headers=headers, environ_base={"REMOTE_ADDR": peer})
    assert resp.headers["X-Backend"] == "web1-hello"
    return resp.get_json()


def test_the_proxy_may_name_the_client(client):
    got = whoami(client, "10.123.0.10", **{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
    assert (got["remote_addr"], got["scheme"]) == ("198.51.100.7", "https")


def test_only_the_last_hop_counts_through_the_proxy(client):
    got = whoami(client, "10.123.0.10", **{"X-Forwarded-For": "1.2.3.4, 198.51.100.7"})
    assert got["remote_addr"] == "198.51.100.7"


def test_a_forged_header_straight_to_the_app_is_ignored(client):
    got = whoami(client, "10.123.0.99", **{"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"})
    assert (got["remote_addr"], got["scheme"]) == ("10.123.0.99", "http")
    assert got["x_forwarded_for"] == "1.2.3.4"          # received, shown, not believed


def test_unknown_paths_still_name_the_member(client):
    resp = client.get("/api/x")
    assert resp.status_code == 404 and resp.headers["X-Backend"] == "web1-hello"


def test_the_unit_passes_the_same_list_to_gunicorn():
    text = render("app.service.j2", name="hello", user="app-hello", home="/opt/x", bind="10.0.0.1:8080",
                  workers=2, trusted="127.0.0.1,10.123.0.10")
    assert "--forwarded-allow-ips 127.0.0.1,10.123.0.10 " in text


def test_ws_is_a_websocket_endpoint(client):
    """/ws is routed, and answers a WebSocket handshake only: a plain GET gets 400 (not 404, not a page)."""
    assert client.get("/ws").status_code == 400
    assert client.get("/no-such-path").status_code == 404
