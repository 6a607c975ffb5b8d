"""Property test: hundreds of generated malformed inventories and template values. Every one
gives a one-line error naming its file (and its host and field where it has one), never a
traceback, and no connection is ever opened."""
import copy
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from provision.inventory import KNOWN_VARS, LBMETHODS, PROXY_MODES
from tests.support.refusal import deploy_refusal

BASE = {"all": {"vars": {"proxy_mode": "balancer"}, "children": {
    "proxies": {"hosts": {"proxy": {"ansible_host": "10.123.0.10"}}},
    "backends": {"hosts": {
        "web1": {"ansible_host": "10.123.0.11", "apps": [{"name": "hello", "port": 8080, "message": "Hello world!"}]},
        "web2": {"ansible_host": "10.123.0.12", "apps": [{"name": "howdy", "port": 8081, "message": "Howdy world!"}]},
    }}}}}

text = st.text(min_size=1, max_size=30)
not_int = st.one_of(st.text(max_size=10).filter(lambda s: not s.strip().isdigit()), st.floats(allow_nan=False),
                    st.lists(st.integers(), max_size=2), st.booleans())
def _swap(name: str, i: int) -> str:
    i = i % (len(name) - 1)
    return name[:i] + name[i + 1] + name[i] + name[i + 2:]


# A known variable with two neighbouring letters swapped: refused with "did you mean".
misspelt_key = st.builds(_swap, st.sampled_from(sorted(k for k in KNOWN_VARS if len(k) >= 8)),
                         st.integers(min_value=0, max_value=40)).filter(lambda k: k not in KNOWN_VARS)
bad_line = st.builds(lambda a, c, b: a + c + b, st.text(max_size=10), st.sampled_from(["\n", "\r", "\x00", "\x07"]),
                     st.text(max_size=10))


def backend(data, name="web1"):
    return data["all"]["children"]["backends"]["hosts"][name]


def proxy(data):
    return data["all"]["children"]["proxies"]["hosts"]["proxy"]


def set_app(field, value):
    def apply(data):
        backend(data)["apps"][0][field] = value
        return f"apps[0].{field}"
    return apply


def set_host(field, value, where=proxy):
    def apply(data):
        where(data)[field] = value
        return field
    return apply


def set_group_var(field, value):
    def apply(data):
        data["all"]["vars"][field] = value
        return field
    return apply


mutations = st.one_of(
    misspelt_key.map(lambda k: set_host(k, "x")),
    st.one_of(st.integers(max_value=0), st.integers(min_value=65536)).map(lambda p: set_host("ansible_port", p)),
    not_int.map(lambda p: set_host("ansible_port", p)),
    st.one_of(st.integers(max_value=1023), st.integers(min_value=65536)).map(lambda p: set_app("port", p)),
    not_int.map(lambda p: set_app("port", p)),
    st.one_of(st.just(""), st.text(min_size=201, max_size=260), bad_line, st.integers()).map(
        lambda m: set_app("message", m)),
    st.text(max_size=20).filter(lambda n: not __import__("re").match(r"^[a-z][a-z0-9_-]{0,30}$", n)).map(
        lambda n: set_app("name", n)),
    text.filter(lambda m: m not in PROXY_MODES).map(lambda m: set_group_var("proxy_mode", m)),
    text.filter(lambda m: m not in LBMETHODS).map(lambda m: set_group_var("lbmethod", m)),
    st.text(min_size=1, max_size=20).filter(lambda s: not __import__("re").match(r"^[A-Za-z0-9.*-]+$", s)).map(
        lambda s: set_host("server_name", s)),
    st.one_of(st.just(""), st.text(min_size=1, max_size=10).map(lambda s: f"bad {s}"), st.integers(),
              st.lists(st.text(), max_size=2)).map(lambda a: set_host("ansible_host", a)),
    st.one_of(st.integers(max_value=-1), st.integers(min_value=3601)).map(lambda n: set_group_var("balancer_retry", n)),
    bad_line.map(lambda s: set_host("proxy_extra_directives", [s])),
    st.text(max_size=10).filter(lambda s: not __import__("re").match(r"^/[A-Za-z0-9._/-]*$", s)).map(
        lambda s: set_host("health_path", s)),
    text.filter(lambda t: t not in ("off", "self-signed", "provided")).map(lambda t: set_host("tls", t)),
    st.sampled_from(["dup-port", "dup-app", "apps-not-list", "hosts-list", "host-list", "no-backends",
                     "no-proxies", "group-key"]),
)


def structural(data, kind):
    b = data["all"]["children"]["backends"]
    if kind == "dup-port":
        backend(data)["apps"].append({"name": "other", "port": 8080, "message": "x"})
        return "apps[1].port"
    if kind == "dup-app":
        backend(data)["apps"].append({"name": "hello", "port": 9090, "message": "x"})
        return "apps[1].name"
    if kind == "apps-not-list":
        backend(data)["apps"] = "hello"
        return "apps"
    if kind == "hosts-list":
        b["hosts"] = ["web1", "web2"]
        return "hosts"
    if kind == "host-list":
        b["hosts"]["web1"] = ["10.0.0.1"]
        return "web1"
    if kind == "no-backends":
        data["all"]["children"]["servers"] = data["all"]["children"].pop("backends")
        return "backends"
    if kind == "no-proxies":
        del data["all"]["children"]["proxies"]
        return "proxies"
    data["all"]["children"]["proxies"]["members"] = []
    return "members"


class NoConnect:
    def __init__(self, *a, **kw):
        raise AssertionError("a connection was attempted")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations)
def test_malformed_inventory_gives_one_line_and_no_connection(monkeypatch, mutation):
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    data = copy.deepcopy(BASE)
    if isinstance(mutation, str):
        field = structural(data, mutation)
    else:
        field = mutation(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory.yml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
        lines = deploy_refusal(str(path))
        assert len(lines) == 1, lines
        assert lines[0].startswith("error: ") and str(path) in lines[0], lines[0]
        assert field in lines[0], (field, lines[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.text(max_size=80))
def test_arbitrary_text_as_inventory(monkeypatch, garbage):
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory.yml"
        path.write_text(garbage)
        lines = deploy_refusal(str(path))
        assert len(lines) == 1 and str(path) in lines[0], lines


# -- every validated field: trailing newlines, control characters, wherever the value is set ------

GOOD_VALUES = {
    "ansible_host": "10.123.0.10", "ansible_user": "deploy", "ansible_ssh_private_key_file": "keys/id",
    "ansible_ssh_common_args": "-o ProxyJump=jump.example.test", "ansible_become_user": "root",
    "ssh_config": "ssh_config", "server_name": "www.example.test", "health_path": "/health",
    "private_address": "10.123.0.10", "proxy_mode": "balancer", "lbmethod": "byrequests", "tls": "off",
    "tls_cert": "certs/a.crt", "tls_key": "certs/a.key", "become_password_env": "SUDO_PASS",
    "ansible_ssh_host": "10.123.0.10", "ansible_port": "22", "ansible_ssh_port": "22", "ansible_ssh_user": "deploy",
    "ansible_private_key_file": "keys/id", "ansible_ssh_extra_args": "-J jump.example.test",
    "ansible_become_password": "secret", "ansible_become_method": "sudo", "ansible_connection": "ssh",
}
LIST_FIELDS = {"tls_names": "www.example.test", "proxy_extra_directives": "Header set X-A b"}
APP_FIELDS = ("name", "message")
CONTROL = st.sampled_from(["\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\t"])
PLACES = ("inventory", "group_vars", "host_vars")


def _place(data, tmp: Path, place: str, key: str, value) -> Path:
    """Set `key` for host proxy in the inventory, group_vars/proxies.yml or host_vars/proxy.yml."""
    if place == "inventory":
        proxy(data)[key] = value
        return tmp / "inventory.yml"
    if data:
        proxy(data).pop(key, None)      # the host's own value would win over group_vars
    folder = tmp / place
    folder.mkdir(exist_ok=True)
    path = folder / ("proxies.yml" if place == "group_vars" else "proxy.yml")
    path.write_text(yaml.safe_dump({key: value}))      # escaped, so \x85 and \u2028 survive
    return path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(GOOD_VALUES) + sorted(LIST_FIELDS) + [f"apps.{f}" for f in APP_FIELDS]),
       bad=CONTROL, where=st.sampled_from(["end", "middle"]), place=st.sampled_from(PLACES))
def test_control_characters_in_any_validated_field(monkeypatch, field, bad, where, place):
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    data = copy.deepcopy(BASE)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if field.startswith("apps."):
            app = dict(backend(data)["apps"][0])
            name = field.split(".")[1]
            app[name] = app[name] + bad if where == "end" else app[name][:2] + bad + app[name][2:]
            backend(data)["apps"] = [app]
            origin, expected = tmp / "inventory.yml", f"apps[0].{name}"
        else:
            good = GOOD_VALUES.get(field) or LIST_FIELDS[field]
            value = good + bad if where == "end" else good[:3] + bad + good[3:]
            origin = _place(data, tmp, place, field, [value] if field in LIST_FIELDS else value)
            expected = field
        if field == "proxy_extra_directives" and bad == "\t":
            return      # a tab is allowed inside an Apache directive
        path = tmp / "inventory.yml"
        path.write_text(yaml.safe_dump(data))
        lines = deploy_refusal(str(path))
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: {origin}") and expected in lines[0], (origin, lines[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(byte=st.integers(min_value=0x80, max_value=0xff), place=st.sampled_from(PLACES + ("ini",)),
       offset=st.integers(min_value=0, max_value=200))
def test_non_utf8_bytes_anywhere(monkeypatch, byte, place, offset):
    """A byte that is not UTF-8, in the inventory (YAML or INI) or a vars file: one line naming it."""
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if place == "ini":
            text = ("[proxies]\nproxy ansible_host=10.123.0.10\n[backends]\n"
                    "web1 ansible_host=10.123.0.11 apps='[{\"name\": \"hello\", \"port\": 8080, \"message\": \"Hi\"}]'\n")
            path = target = tmp / "hosts"
        else:
            path = tmp / "inventory.yml"
            path.write_text(yaml.safe_dump(BASE))
            target = path if place == "inventory" else _place({}, tmp, place, "server_name", "www.example.test")
            text = target.read_text()
        raw = text.encode()
        cut = offset % len(raw)
        target.write_bytes(raw[:cut] + bytes([byte]) + raw[cut:])
        lines = deploy_refusal(str(path))
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: {target}:") and "not UTF-8" in lines[0], lines[0]
