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
    import importlib.util
    import sys
    (tmp_path / "rendered_app.py").write_bytes(rendered().encode("utf-8"))
    spec = importlib.util.spec_from_file_location("rendered_app", tmp_path / "rendered_app.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "rendered_app", module)
    spec.loader.exec_module(module)
    answer = module.app.test_client().get("/")
    assert answer.status_code == 200
    assert answer.data.decode("utf-8") == MESSAGE
