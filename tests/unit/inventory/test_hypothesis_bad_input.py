"""Property test: hundreds of generated malformed inventories and template values. Every one
gives a one-line error naming its file (and its host and field where it has one), never a
traceback, and no connection is ever opened."""
import ast
import copy
import gc
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from provision import deploy as deploy_mod
from provision.engine import Options
from provision.inventory import KNOWN_VARS, LBMETHODS, PROXY_MODES, InventoryError, load
from provision.platforms import PLATFORMS
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


# -- second review, finding 4: every validated field, hostile fragments and long near-misses ----------
# Each value is refused (one line naming its file) or accepted within LIMIT of CPU; an accepted one
# leaves every rendered file with the same number of lines and of directives as the good value.

LIMIT = 0.05        # s of CPU for the checks (load and plan), the acceptance's bound
FRAGMENTS = ["\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "%", "@", "..", "/..", "/.", " ",
             "\t", '"', "'", "#", "$", "{", "}", "*", ":", "[", "]", "\\", "-", "%25", "/", "\nProxyRequests On\n#",
             "<", ">", ";", "&", "|", "`", "\ufeff", "é", "xn--"]
REPEATED = ["a", "a.", "a/", "/a", ":", "]:1", "[1:3]", "a@", "-", "1", "%", "a-", "*.", "fe80::1%"]
LONG = 10_000
LONG_FORM = {"all": {"children": {
    "proxies": {"vars": {
        "pools": {"web": {"members": ["web1", "web2:howdy"], "lbmethod": "bybusyness", "sticky": True}},
        "sites": [{"server_name": "app.example.test", "aliases": ["www.app.example.test"],
                   "routes": [{"path": "/", "pool": "web"}, {"path": "/api/v1", "pool": "web"},
                              {"path": "/static", "folder": "/var/www/static"}, {"path": "/ws", "websocket": "web"},
                              {"path": "/private", "exclude": True}]}]},
        "hosts": {"proxy": {"ansible_host": "10.123.0.10"}}},
    "backends": BASE["all"]["children"]["backends"]}}}


def _at(*keys):
    """A setter for the value at that path ("[0]" picks a list item); returns the field's name."""
    def set_(data, value):
        node = data
        for key in keys[:-1]:
            node = node[int(key[1:-1])] if key.startswith("[") else node[key]
        last = keys[-1]
        node[int(last[1:-1]) if last.startswith("[") else last] = value
    return set_


def _rename(group, old):
    def set_(data, value):
        hosts = data["all"]["children"][group]["hosts"]
        hosts[value] = hosts.pop(old)
    return set_


def _rename_pool(data, value):
    data["all"]["children"]["proxies"]["vars"]["pools"][value] = \
        data["all"]["children"]["proxies"]["vars"]["pools"].pop("web")
    for route in data["all"]["children"]["proxies"]["vars"]["sites"][0]["routes"]:
        for kind in ("pool", "websocket"):
            if kind in route:
                route[kind] = value


PROXY, WEB1 = ("all", "children", "proxies", "hosts", "proxy"), ("all", "children", "backends", "hosts", "web1")
SITE = ("all", "children", "proxies", "vars", "sites", "[0]")
POOL = ("all", "children", "proxies", "vars", "pools", "web")
# field -> (base, setter, a good value)
FIELDS = {
    **{name: (BASE, _at(*PROXY, name), good) for name, good in {
        "ansible_host": "10.123.0.10", "ansible_ssh_host": "proxy.example.test", "ansible_port": "2222",
        "ansible_ssh_port": "22", "ansible_user": "deploy", "ansible_ssh_user": "deploy",
        "ansible_private_key_file": "keys/id", "ansible_ssh_private_key_file": "keys/id_ed25519",
        "ansible_ssh_common_args": "-o ProxyJump=jump.example.test", "ansible_ssh_extra_args": "-J u@jump:2222",
        "ansible_become_user": "root", "ansible_become_method": "sudo", "ansible_become_password": "pa55-word",
        "ansible_connection": "ssh", "ssh_config": "ssh_config", "server_name": "www.example.test",
        "health_path": "/health", "proxy_mode": "balancer", "lbmethod": "byrequests", "tls": "off",
        "tls_cert": "certs/a.crt", "tls_key": "certs/a.key", "public_url": "https://www.example.test/",
        "become_password_env": "SUDO_PASS", "member_names": "opaque"}.items()},
    "tls_names": (BASE, _at(*PROXY, "tls_names", "[0]"), "alt.example.test"),
    "proxy_extra_directives": (BASE, _at(*PROXY, "proxy_extra_directives", "[0]"), "Header set X-A b"),
    "private_address": (BASE, _at(*WEB1, "private_address"), "10.123.0.11"),
    "apps[0].name": (BASE, _at(*WEB1, "apps", "[0]", "name"), "hello"),
    "apps[0].message": (BASE, _at(*WEB1, "apps", "[0]", "message"), "Hello world!"),
    "host name": (BASE, _rename("backends", "web2"), "web2"),
    "sites[0].server_name": (LONG_FORM, _at(*SITE, "server_name"), "app.example.test"),
    "sites[0].aliases": (LONG_FORM, _at(*SITE, "aliases", "[0]"), "www.app.example.test"),
    "sites[0].routes[1].path": (LONG_FORM, _at(*SITE, "routes", "[1]", "path"), "/api/v1"),
    "sites[0].routes[2].folder": (LONG_FORM, _at(*SITE, "routes", "[2]", "folder"), "/var/www/static"),
    "pools": (LONG_FORM, _rename_pool, "web"),
    "pools.web.members[1]": (LONG_FORM, _at(*POOL, "members", "[1]"), "web2:howdy"),
    "pools.web.lbmethod": (LONG_FORM, _at(*POOL, "lbmethod"), "bybusyness"),
}
# The lists these fields are in (a list whose set element is the list itself gets it as one item)
for name in ("tls_names", "proxy_extra_directives"):
    base, setter, good = FIELDS[name]

    def list_setter(data, value, name=name, good=good):
        _at(*PROXY, name)(data, [value, good])        # a line ending in '\\' would swallow the next
    FIELDS[name] = (base, list_setter, good)


@st.composite
def hostile_values(draw, good: str):
    """The good value with a fragment put in or in place of a character, or a 10,000-character
    near-miss: a repeated piece ending in a fragment."""
    fragment = draw(st.sampled_from(FRAGMENTS))
    how = draw(st.sampled_from(["insert", "replace", "long"]))
    if how == "long":
        unit = draw(st.sampled_from(REPEATED + [good]))
        return (unit * (LONG // len(unit) + 1))[:LONG - len(fragment)] + fragment
    i = draw(st.integers(min_value=0, max_value=len(good)))
    return good[:i] + fragment + good[i + (how == "replace"):]


def checked(path):
    """What a deploy does before it connects: load, then plan the phases. Returns the inventory,
    or raises the one-line error."""
    inventory = load(path)
    deploy_mod.plan_phases(inventory, None)
    return inventory


def timed(path, tries: int = 10) -> tuple[float, object]:
    """(CPU s of the checks, the inventory or the error): the fastest of up to ``tries`` runs,
    stopping at one within LIMIT. A first run may import a module (paramiko for ssh_config) once
    per process, whatever the value, and on a busy virtual machine a thread's CPU clock also runs
    while the host steals its CPU; a super-linear check is slow on every run."""
    took, outcome = [], None
    gc.collect()
    gc.disable()            # a collection of the whole test process's heap is not the checks' time
    try:
        while len(took) < tries and (not took or min(took) >= LIMIT):
            started = time.thread_time()
            try:
                outcome = checked(path)
            except (InventoryError, deploy_mod.DeployError) as exc:
                outcome = exc
            took.append(time.thread_time() - started)
    finally:
        gc.enable()
    return min(took), outcome


def rendered(inventory) -> list:
    """Every file the roles would write, in order: (host, platform, label, content)."""
    out = []
    for role, hosts in deploy_mod.plan_phases(inventory, None):
        for host in hosts:
            for platform in PLATFORMS.values():
                for r in role.resources(host, platform, inventory, Options()):
                    if getattr(r, "content", None) is not None:
                        out.append((host.name, platform.family, r.label, r.content.decode()))
    return out


def shape(name: str, text: str) -> tuple[int, int]:
    """(lines, directives): a Python file's statements; elsewhere the lines Apache or systemd
    read as one each, a line ending in '\\' joined to the next (a comment counts: it is a line
    that says nothing, not a way to add or merge directives)."""
    lines = text.splitlines()
    if name.endswith(".py"):
        return len(lines), len(ast.parse(text).body)
    directives, joined = 0, False
    for line in lines:
        if not joined and line.strip():
            directives += 1
        joined = line.rstrip().endswith("\\")
    return len(lines), directives


_BASE_SHAPES: dict = {}


def base_shapes(field, tmp: Path):
    """The shapes of the files rendered with the field's good value."""
    if field not in _BASE_SHAPES:
        base, setter, good = FIELDS[field]
        data = copy.deepcopy(base)
        setter(data, good)
        path = tmp / "base.yml"
        path.write_text(yaml.safe_dump(data))
        _BASE_SHAPES[field] = sorted((p, shape(label, text)) for _, p, label, text in rendered(load(path)))
    return _BASE_SHAPES[field]


TIMES: list = []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), field=st.sampled_from(sorted(FIELDS)))
def test_every_validated_field_refuses_or_accepts_hostile_input_quickly_and_safely(data, field):
    base, setter, good = FIELDS[field]
    value = data.draw(hostile_values(good))
    inventory_data = copy.deepcopy(base)
    setter(inventory_data, value)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory_data, allow_unicode=True))
        took, inventory = timed(path)
        TIMES.append(took)
        assert took < LIMIT, (field, value[:80], took)
        if isinstance(inventory, Exception):
            assert "\n" not in str(inventory) and str(inventory).startswith(str(tmp)), (field, str(inventory)[:300])
            return
        try:
            deploy_mod.prevalidate(inventory, deploy_mod.plan_phases(inventory, None), Options())
        except deploy_mod.DeployError as exc:        # refused when rendered: one line, naming the host
            assert "\n" not in str(exc) and "host " in str(exc), (field, str(exc)[:300])
            return
        got = sorted((p, shape(label, text)) for _, p, label, text in rendered(inventory))
        assert got == base_shapes(field, tmp), (field, value[:80])


@pytest.fixture(scope="module", autouse=True)
def times_printed():
    """The figures the property test measured, printed once the module's tests are done."""
    yield
    if TIMES:
        print(f"\n{len(TIMES)} hostile values checked: longest {max(TIMES) * 1000:.1f} ms of CPU, "
              f"median {sorted(TIMES)[len(TIMES) // 2] * 1000:.2f} ms (limit {LIMIT * 1000:.0f} ms)")
