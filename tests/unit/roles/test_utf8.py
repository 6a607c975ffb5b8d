"""UTF-8 end to end (security review, item 12): a message with an emoji is the same string in
the rendered app.py, and the app answers it encoded as UTF-8."""
import ast

import pytest

from provision.render import render

MESSAGE = "Hello 🌍 wörld! \"quoted\" 'and' \\ backslash"


def rendered() -> str:
    return render("app.py.j2", name="hello", message=MESSAGE, own_url="http://10.0.0.11:8080",
                  member="web1-hello", trusted=["10.0.0.10"])


def test_app_source_holds_the_message_as_one_string():
    tree = ast.parse(rendered().encode("utf-8").decode("utf-8"))       # written and read as UTF-8
    found = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
             if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)}
    assert found["MESSAGE"] == MESSAGE
    found["MESSAGE"].encode("utf-8")            # no lone surrogates


def test_app_answers_the_message_in_utf8(tmp_path, monkeypatch):
    pytest.importorskip("flask")
    answer = _app(tmp_path, monkeypatch).test_client().get("/")
    assert answer.status_code == 200
    assert answer.data.decode("utf-8") == MESSAGE


def _app(tmp_path, monkeypatch):
    import importlib.util
    import sys
    (tmp_path / "rendered_app.py").write_bytes(rendered().encode("utf-8"))
    spec = importlib.util.spec_from_file_location("rendered_app", tmp_path / "rendered_app.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "rendered_app", module)
    spec.loader.exec_module(module)
    return module.app


def test_whoami_host_is_the_host_header_received_not_the_forwarded_one(tmp_path, monkeypatch):
    """Without ProxyPreserveHost the app receives its own address as Host: /whoami must show
    that, even though ProxyFix takes the client's name from X-Forwarded-Host."""
    client = _app(tmp_path, monkeypatch).test_client()
    forwarded = {"X-Forwarded-Host": "site.example", "X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "http"}
    seen = client.get("/whoami", headers={"Host": "10.0.0.11:8080", **forwarded},
                      environ_base={"REMOTE_ADDR": "10.0.0.10"}).get_json()
    assert (seen["host"], seen["remote_addr"]) == ("10.0.0.11:8080", "192.0.2.7")
    preserved = client.get("/whoami", headers={"Host": "site.example", **forwarded},
                           environ_base={"REMOTE_ADDR": "10.0.0.10"}).get_json()
    assert preserved["host"] == "site.example"
    direct = client.get("/whoami", headers={"Host": "10.0.0.11:8080", **forwarded},
                        environ_base={"REMOTE_ADDR": "192.0.2.99"}).get_json()
    assert (direct["host"], direct["remote_addr"]) == ("10.0.0.11:8080", "192.0.2.99")    # not trusted
