"""The second security review, finding by finding: each attack or bad input reproduced, and its
safe outcome now (one line naming file, host and field for inventory input, no traceback, no
connection opened). The host lock's own tests are in test_faults.py, the property test over every
validated field in test_hypothesis_bad_input.py, the lab runs in tests/lab/test_security_lab.py."""
import copy
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from provision import deploy as deploy_mod, verify
from provision.engine import Options
from provision.facts import ABSENT, FactRequest, Facts, FileState
from provision.inventory import load
from provision.balancer import drain as balancing, manager as bm, record as drained
from provision.ops import status
from provision.platforms import DEBIAN, REDHAT
from provision.report import Reporter
from provision.resources import FolderIfMissing
from provision.roles import backends, proxy
from tests.support.refusal import deploy_refusal

ROOT = Path(__file__).resolve().parents[2]

BASE = {"all": {"children": {
    "proxies": {"hosts": {"proxy": {"ansible_host": "10.123.0.10"}}},
    "backends": {"hosts": {
        "web1": {"ansible_host": "10.123.0.11", "apps": [{"name": "hello", "port": 8080, "message": "Hello world!"}]},
        "web2": {"ansible_host": "10.123.0.12", "apps": [{"name": "howdy", "port": 8081, "message": "Howdy world!"}]},
    }}}}}


def hosts(data, group):
    return data["all"]["children"][group]["hosts"]


class NoConnect:
    def __init__(self, *a, **kw):
        raise AssertionError("a connection was attempted")


def refused(tmp_path, monkeypatch, data, name="inventory.yml") -> str:
    """Deploy ``data``: it must stop before any connection with one line; returns that line."""
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    lines = deploy_refusal(str(path), Options(check=True))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path}"), lines[0]
    return lines[0]


def with_(**changes):
    """BASE with host variables changed: {host: {var: value}}."""
    data = copy.deepcopy(BASE)
    for host, values in changes.items():
        group = "proxies" if host == "proxy" else "backends"
        hosts(data, group)[host].update(values)
    return data


def long_form(routes, pools=None):
    data = copy.deepcopy(BASE)
    data["all"]["children"]["proxies"]["vars"] = {
        "pools": pools or {"web": {"members": ["web1", "web2"]}},
        "sites": [{"server_name": "app.example.test", "routes": routes}]}
    return data


# -- 2: an IPv6 zone ID carried a newline (and an '@') past address validation ----------------------

ZONE_ATTACK = "fe80::1%@127.0.0.1\nProxyRequests On\n#"


@pytest.mark.parametrize("field,value,expected", [
    ("ansible_host", ZONE_ATTACK, "host 'web1': field 'ansible_host' contains the control character '\\n'"),
    ("ansible_host", "fe80::1%@127.0.0.1", "host 'web1': field 'ansible_host' is a scoped IPv6 address"),
    ("ansible_host", "fe80::1%eth0", "host 'web1': field 'ansible_host' is a scoped IPv6 address"),
    ("private_address", ZONE_ATTACK, "host 'web1': field 'private_address' contains the control character"),
    ("private_address", "fe80::1%@127.0.0.1", "host 'web1': field 'private_address' is a scoped IPv6 address"),
    ("ansible_ssh_common_args", "-J fe80::1%@127.0.0.1", "host 'web1': field 'ansible_ssh_common_args': jump host"),
])
def test_a_zone_id_is_refused_in_one_line_before_any_connection(tmp_path, monkeypatch, field, value, expected):
    line = refused(tmp_path, monkeypatch, with_(web1={field: value}))
    assert expected in line, line


def test_the_zone_attack_used_to_reach_the_routes_file():
    """What the review reproduced: the value parsed as an address, and became directives."""
    import ipaddress
    assert str(ipaddress.ip_address(ZONE_ATTACK)) == ZONE_ATTACK        # Python takes it as an address
    member = proxy.sites.Member("web1", "hello", ZONE_ATTACK, 8080)
    assert "\nProxyRequests On\n" in member.url()       # so the model must never see it: refused at load


def ipv6_inventory(tmp_path, mode="balancer"):
    data = with_(web1={"private_address": "fd00:123::11"}, web2={"private_address": "fd00:123::12"},
                 proxy={"private_address": "fd00:123::10"})
    data["all"]["vars"] = {"proxy_mode": mode}
    path = tmp_path / "ipv6.yml"
    path.write_text(yaml.safe_dump(data))
    return load(path)


def test_ipv6_members_are_bracketed_in_urls_and_binds(tmp_path):
    inv = ipv6_inventory(tmp_path)
    host = inv.hosts["proxy"]
    for platform in (DEBIAN, REDHAT):
        routes = proxy.routes(host, platform, inv, SimpleNamespace(mode="balancer"))[platform.routes_path]
        members = [line.split()[1] for line in routes.splitlines() if line.strip().startswith("BalancerMember")]
        assert members == ["http://[fd00:123::11]:8080", "http://[fd00:123::12]:8081"], members
        single = proxy.routes(host, platform, inv, SimpleNamespace(mode="single"))[platform.routes_path]
        assert "ProxyPass / http://[fd00:123::11]:8080/ retry=" in single
        assert "ProxyPassReverse / http://[fd00:123::11]:8080/\n" in single
    files = {r.path: r.content.decode() for r in backends.resources(inv.hosts["web1"], DEBIAN, inv, Options())
             if hasattr(r, "content")}
    unit = files["/etc/systemd/system/provision-app-hello.service"]
    assert " --bind [fd00:123::11]:8080 " in unit          # gunicorn's form for IPv6 (its docs: "[::1]:8000")
    assert " --forwarded-allow-ips 127.0.0.1,fd00:123::10 " in unit
    assert "OWN_URL = 'http://[fd00:123::11]:8080'" in files["/opt/provision/apps/hello/app.py"]
    assert balancing.member_urls(inv.hosts["web2"]) == ["http://[fd00:123::12]:8081"]
    assert [m.url() for m in proxy.sites.short_members(inv)] == ["http://[fd00:123::11]:8080",
                                                                 "http://[fd00:123::12]:8081"]
    assert "curl -s -o /dev/null -w '%{http_code}' --max-time 2 'http://[fd00:123::11]:8080/'" in \
        status.script(inv.hosts["web1"], FactRequest())


def test_ipv4_members_are_written_as_before(tmp_path):
    inv = load(ROOT / "inventory" / "lab.yml")
    routes = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, SimpleNamespace(mode="balancer"))[DEBIAN.routes_path]
    assert "    BalancerMember http://10.123.0.11:8080 route=web1-hello " in routes


# -- 3: a route's folder chmod-ed and chown-ed any folder, and took '..' and '/.' ---------------------

@pytest.mark.parametrize("folder", ["/var/www/../../etc", "/.", "/", "/var/./www", "/var//www", "/var/www/",
                                    "var/www", "/var/www/.."])
def test_a_route_folder_with_dot_segments_or_the_root_is_refused(tmp_path, monkeypatch, folder):
    data = long_form([{"path": "/", "pool": "web"}, {"path": "/static", "folder": folder}])
    line = refused(tmp_path, monkeypatch, data)
    assert "host 'proxy': field 'sites[0].routes[1].folder' must be an absolute folder path" in line, line


def facts_with(path, state):
    return Facts(os={}, platform=DEBIAN, files={path: state})


def test_an_existing_folder_is_served_as_it_is_never_chmod_ed_or_chown_ed():
    """`folder: /tmp` planned `chmod 755 /tmp; chown root:root /tmp`."""
    tmp = FolderIfMissing("/tmp")
    change = tmp.plan(facts_with("/tmp", FileState("directory", "1777", "root", "root")))
    assert not change.changed and change.reason == "exists (root:root 1777): left as it is"
    data = FolderIfMissing("/srv/data").plan(facts_with("/srv/data", FileState("directory", "750", "app", "app")))
    assert not data.changed and "chmod" not in data.script and "chown" not in data.script


def test_a_missing_folder_is_made_and_a_link_or_file_there_is_refused(tmp_path):
    made = FolderIfMissing("/var/www/static").plan(facts_with("/var/www/static", ABSENT))
    assert made.changed and made.script == "mkdir -p /var/www\nmkdir -m 755 /var/www/static"
    for kind in ("link", "file"):
        change = FolderIfMissing("/var/www/static").plan(facts_with("/var/www/static", FileState(kind, target="/")))
        assert change.script == "exit 1" and f"is a {kind}, not a folder: refusing to serve it" in change.reason
    # The step itself, run here: it makes the folder, and fails (changing nothing) on one that
    # appeared after the facts were read.
    target = tmp_path / "www" / "static"
    script = FolderIfMissing(str(target)).plan(facts_with(str(target), ABSENT)).script
    assert subprocess.run(["sh", "-ec", script]).returncode == 0
    assert target.is_dir() and oct(target.stat().st_mode & 0o777) == "0o755"
    assert subprocess.run(["sh", "-ec", script], capture_output=True).returncode != 0


def test_the_proxy_role_serves_a_route_folder_with_the_folder_resource(tmp_path):
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(long_form([{"path": "/", "pool": "web"}, {"path": "/s", "folder": "/tmp"},
                                              {"path": "/t", "folder": "/tmp"}])))
    inv = load(path)
    steps = [s for s in proxy.resources(inv.hosts["proxy"], DEBIAN, inv, Options()) if s.label == "directory /tmp"]
    assert len(steps) == 1 and isinstance(steps[0], FolderIfMissing)


# -- 4: ReDoS in route path validation -----------------------------------------------------------

@pytest.mark.parametrize("path", ["/" + "a" * 28 + " ", "/" + "a/" * 5000 + " ", "/" + "a" * 10000 + "/ ",
                                  "/a/../etc", "/a/./b", "//a"])
def test_a_near_miss_route_path_is_refused_at_once(tmp_path, monkeypatch, path):
    """A 30-character path with a trailing space kept `deploy --check` busy past 20 s."""
    data = long_form([{"path": "/", "pool": "web"}, {"path": path, "pool": "web"}])
    started = time.process_time()
    line = refused(tmp_path, monkeypatch, data)
    took = time.process_time() - started
    assert "field 'sites[0].routes[1].path' must be a URL path like /api" in line, line
    print(f"{len(path)} characters: refused after {took * 1000:.1f} ms of CPU")
    assert took < 0.05         # the nested regex took 13 s of CPU at 30 characters, 4 times more per 2


# -- 12: drain variable names collided --------------------------------------------------------------

def test_drain_variables_are_one_to_one():
    a, b = "http://web-1.example:8080", "http://web.1.example:8080"
    assert drained.legacy_status_variable(a) == drained.legacy_status_variable(b)      # the collision
    assert drained.status_variable(a) != drained.status_variable(b)
    assert drained.status_variable(a) == "provision_member_web_2d1_2eexample_3a8080"
    assert drained.status_variable("http://[fd00::1]:80") == "provision_member__5bfd00_3a_3a1_5d_3a80"


def test_undraining_one_of_two_former_namesakes_leaves_the_other_drained(tmp_path):
    """web-1 and web.1 both drained, then web-1 undrained: after a reload, web.1 is still drained."""
    a, b = "http://web-1.example:8080", "http://web.1.example:8080"
    folder = tmp_path / "provision"
    folder.mkdir()
    record(folder, drained.record_script([a, b], True))
    record(folder, drained.record_script([a], False))
    routes = "".join(f"Define {drained.status_variable(u)} -N\n" for u in (a, b))
    values = apache_defines(routes + (folder / drained.RECORD).read_text())
    assert (values[drained.status_variable(a)], values[drained.status_variable(b)]) == ("-N", "+N")


def record(folder, script):
    script = script.replace("/etc/apache2/provision", str(folder))
    subprocess.run(["sh", "-ec", script], check=True)


def apache_defines(text: str) -> dict:
    """What Apache's Define lines leave, read in order (a later Define wins)."""
    values = {}
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["Define"]:
            values[words[1]] = words[2]
    return values


def legacy_state(folder, urls):
    """A proxy as an earlier release left it: a routes file reading the legacy names, and a drain
    recorded under them."""
    (folder / "routes.inc").write_text("".join(
        f"Define {drained.legacy_status_variable(u)} -N\n    BalancerMember {u} status=${{"
        f"{drained.legacy_status_variable(u)}}}\n" for u in urls))
    (folder / drained.RECORD).write_text(drained.RECORD_HEADER + "\n" +
                                       f"Define {drained.legacy_status_variable(urls[1])} +N\n")


def test_a_deploy_after_the_upgrade_keeps_a_drain_recorded_under_the_old_name(tmp_path):
    """The routes file's step carries the record over to the new names before any reload."""
    web1, web2 = "http://10.123.0.11:8080", "http://10.123.0.12:8081"
    folder = tmp_path / "provision"
    folder.mkdir()
    legacy_state(folder, [web1, web2])
    script = drained.upgrade_script(str(folder), [web1, web2])
    subprocess.run(["sh", "-ec", script], check=True)
    subprocess.run(["sh", "-ec", script], check=True)          # a second run adds nothing
    lines = (folder / drained.RECORD).read_text().splitlines()
    assert lines == [drained.RECORD_HEADER, f"Define {drained.legacy_status_variable(web2)} +N",
                     f"Define {drained.status_variable(web2)} +N"]
    assert oct((folder / drained.RECORD).stat().st_mode & 0o777) == "0o600"
    new_routes = "".join(f"Define {drained.status_variable(u)} -N\n" for u in (web1, web2))
    values = apache_defines(new_routes + (folder / drained.RECORD).read_text())
    assert (values[drained.status_variable(web1)], values[drained.status_variable(web2)]) == ("-N", "+N")
    # the old routes file, were configtest to restore it, still reads web2 as drained
    old = apache_defines((folder / "routes.inc").read_text() + (folder / drained.RECORD).read_text())
    assert old[drained.legacy_status_variable(web2)] == "+N"


def test_the_routes_file_step_runs_the_upgrade_before_the_reload(tmp_path):
    inv = load(ROOT / "inventory" / "lab.yml")
    step = next(s for s in proxy.resources(inv.hosts["proxy"], DEBIAN, inv, Options())
                if getattr(s, "path", None) == DEBIAN.routes_path)
    change = step.plan(Facts(os={}, platform=DEBIAN, files={}))
    assert change.script.index(f"mv -f \"$tmp\" {DEBIAN.routes_path}") < \
        change.script.index(f"grep -qs '^Define {drained.LEGACY_PREFIX}'")
    assert drained.status_variable("http://10.123.0.12:8081") in change.script


def test_a_drain_before_the_upgrade_deploy_writes_the_legacy_name_too(tmp_path):
    """A proxy whose routes file still reads the legacy names keeps the drain over a reload."""
    web1, web2 = "http://10.123.0.11:8080", "http://10.123.0.12:8081"
    folder = tmp_path / "provision"
    folder.mkdir()
    legacy_state(folder, [web1, web2])
    (folder / drained.RECORD).unlink()
    record(folder, drained.record_script([web1], True))
    old = apache_defines((folder / "routes.inc").read_text() + (folder / drained.RECORD).read_text())
    assert old[drained.legacy_status_variable(web1)] == "+N"
    record(folder, drained.record_script([web1], False))
    assert (folder / drained.RECORD).read_text().splitlines() == [drained.RECORD_HEADER]
    (folder / "routes.inc").write_text("# a new release's routes file\n")
    record(folder, drained.record_script([web1], True))
    assert (folder / drained.RECORD).read_text().splitlines()[1:] == [f"Define {drained.status_variable(web1)} +N"]


# -- 5: an inventory script's output was buffered without a bound ------------------------------------

def test_an_inventory_script_that_prints_forever_is_stopped_at_the_bound(tmp_path):
    """It took the control machine from 17 MiB to 3.3 GiB in 8 s; now one line, at 64 MiB."""
    script = tmp_path / "inventory.sh"
    script.write_text("#!/bin/sh\necho '{\"all\": {\"hosts\": ['\nexec yes '\"web1\",'\n")
    script.chmod(0o755)
    started = time.monotonic()
    with open(tmp_path / "out", "w+") as out:
        proc = subprocess.Popen([sys.executable, "-m", "invoke", "inventory", "-i", str(script), "--list"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)            # its peak memory, as the kernel counted it
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().strip().splitlines()
    took, peak = time.monotonic() - started, usage.ru_maxrss / 1024
    print(f"stopped after {took:.1f} s, peak {peak:.0f} MiB")
    assert proc.returncode == 1 and lines == [f"error: {script}: inventory script --list printed more than "
                                              f"64 MiB: refused"], lines
    assert peak < 512


# -- 6: the sudo password travelled in the environment of every child ---------------------------------

def env_dumping_script(tmp_path):
    """An inventory script that writes its environment beside itself, then lists the lab's hosts."""
    dump = tmp_path / "env.seen"
    script = tmp_path / "inventory.py"
    script.write_text(f"""#!{sys.executable}
import json, os, sys
open({str(dump)!r}, "w").write(json.dumps(dict(os.environ)))
print(json.dumps({{"proxies": {{"hosts": ["proxy"]}}, "backends": {{"hosts": ["web1"]}},
                  "_meta": {{"hostvars": {{"proxy": {{"ansible_host": "10.123.0.10", "ansible_user": "deploy"}},
                                          "web1": {{"ansible_host": "10.123.0.11", "ansible_user": "deploy",
                                                   "apps": [{{"name": "a", "port": 8080, "message": "A"}}]}}}}}}}}))
""")
    script.chmod(0o755)
    return script, dump


def test_no_child_sees_the_sudo_password_and_sudo_still_gets_it(tmp_path, monkeypatch):
    """An inventory script saw PROVISION_SUDO_PASSWORD (so did ProxyCommand, pip, verify's ssh)."""
    from provision import engine
    script, dump = env_dumping_script(tmp_path)
    monkeypatch.setattr(engine, "_SUDO_TAKEN", [])
    monkeypatch.setenv(engine.SUDO_ENV, "s3cret-pw")
    given = []

    class Recorder:
        def __init__(self, host, accept_new=False, sudo_password=None, **kw):
            given.append(sudo_password)
            from provision.transport import Unreachable
            raise Unreachable("not connecting in a unit test")
    monkeypatch.setattr("provision.engine.HostConnection", Recorder)
    deploy_mod.deploy(str(script), Options(), reporter=Reporter(stream=io.StringIO()), smoke=False)
    seen = yaml.safe_load(dump.read_text())
    assert engine.SUDO_ENV not in seen and "s3cret-pw" not in dump.read_text()
    assert engine.SUDO_ENV not in os.environ                     # so no later child (ssh, pip) gets it
    assert given and set(given) == {"s3cret-pw"}                 # sudo still does


def test_at_start_up_the_tasks_take_the_password_out_of_the_environment(tmp_path):
    script, dump = env_dumping_script(tmp_path)
    env = {**os.environ, "PROVISION_SUDO_PASSWORD": "s3cret-pw"}
    run = subprocess.run([sys.executable, "-m", "invoke", "inventory", "-i", str(script), "--graph"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "@backends:" in run.stdout, run.stderr
    assert "PROVISION_SUDO_PASSWORD" not in yaml.safe_load(dump.read_text())


# -- 7: tracebacks on bad input -------------------------------------------------------------------

HUGE = "9" * 5000        # Python refuses to read an integer of more than 4,300 digits


@pytest.mark.parametrize("name,text,expected", [
    ("inventory.yml", f"all:\n  hosts:\n    h1: {{x: {HUGE}}}\n", ":3: cannot read '9999"),
    ("inventory.json", f'{{"all": {{"hosts": {{"h1": {{"x": {HUGE}}}}}}}}}', ": cannot read a number: Exceeds the limit"),
    ("inventory.yml", "all:\n  hosts:\n    h1: {x: 2001-13-45}\n", ":3: cannot read '2001-13-45': month must be in"),
    ("inventory.yml", "all:\n  hosts:\n    h1: {x: !!float abc}\n", ":3: cannot read 'abc': could not convert"),
])
def test_a_value_python_cannot_read_is_one_line(tmp_path, monkeypatch, name, text, expected):
    monkeypatch.setattr("provision.engine.HostConnection", NoConnect)
    path = tmp_path / name
    path.write_text(text)
    lines = deploy_refusal(str(path))
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}{expected}"), lines


def test_a_huge_integer_in_group_vars_or_a_script_is_one_line(tmp_path):
    from provision.inventory import InventoryError, read
    (tmp_path / "hosts").write_text("[g]\nh1\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "g.yml").write_text(f"x: {HUGE}\n")
    with pytest.raises(InventoryError, match=r"group_vars/g\.yml:1: cannot read '9+': Exceeds the limit"):
        read(tmp_path / "hosts")
    script = tmp_path / "inv.sh"
    script.write_text(f"#!/bin/sh\necho '{{\"g\": {{\"hosts\": [\"h1\"], \"vars\": {{\"x\": {HUGE}}}}}}}'\n")
    script.chmod(0o755)
    with pytest.raises(InventoryError, match=r"inv\.sh: inventory script output: cannot read a number"):
        read(script)


def tls_inventory(tmp_path, proxy_name="proxy", **proxy_vars):
    data = copy.deepcopy(BASE)
    hosts(data, "proxies")[proxy_name] = {"ansible_host": "10.123.0.10", "tls": "self-signed", **proxy_vars}
    if proxy_name != "proxy":
        del hosts(data, "proxies")["proxy"]
    return data


def test_an_alias_star_with_self_signed_tls_is_refused_in_one_line(tmp_path, monkeypatch):
    """cryptography raised ValueError on the CA's name constraints ('*')."""
    data = tls_inventory(tmp_path, pools={"web": {"members": ["web1"]}},
                         sites=[{"server_name": "a.test", "aliases": ["*"], "routes": [{"path": "/", "pool": "web"}]}])
    line = refused(tmp_path, monkeypatch, data)
    assert "host 'proxy': field 'sites[0].aliases' must be a host name, got '*'" in line, line
    assert not (tmp_path / ".tls").exists()


@pytest.mark.parametrize("name,dns", [("prøxy", "xn--prxy-hra"), ("*", None), ("proxy one", None)])
def test_a_non_ascii_or_non_dns_host_name_makes_a_certificate(tmp_path, name, dns):
    """A non-ASCII inventory name raised ValueError (DNSName wants A-labels): it goes in as its
    A-label; a name that is no host name stays out; the address always goes in."""
    from cryptography import x509
    from provision import tls
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(tls_inventory(tmp_path, proxy_name=name), allow_unicode=True))
    inv = load(path)
    made = tls.prepare(inv, inv.group("proxies"))[name]
    sans = x509.load_pem_x509_certificate(made.cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ([dns] if dns else [])
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["10.123.0.10"]


# -- 8: `invoke inventory --host/--list` expanded YAML alias bombs ----------------------------------

def alias_bomb(levels=9, width=9) -> str:
    """Each level a list of `width` aliases of the level below: width**levels strings printed."""
    lines = ["all:", "  hosts:", "    h1:", f"      l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"      l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("flags", [["--list"], ["--host", "h1"]])
def test_an_alias_bomb_is_refused_before_printing(tmp_path, flags):
    """492 bytes printed 628 million characters over 25 s; 612 bytes ran out of memory."""
    path = tmp_path / "bomb.yml"
    path.write_text(alias_bomb())
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "invoke", "inventory", "-i", str(path), *flags], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    print(f"{path.stat().st_size} bytes: refused after {took:.2f} s")
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1, lines[:3]
    assert lines[0].startswith(f"error: {path}: {' '.join(flags)}: the output would be ") and \
        " lines, over 5,000,000 (YAML aliases repeat one value many times); refused" in lines[0], lines[0]
    assert int(lines[0].split("would be ")[1].split(" ")[0].replace(",", "")) > 9 ** 9


def test_printed_lines_are_counted_exactly_and_an_ordinary_inventory_prints():
    import json
    from provision.inventory import read, show
    for value in ({"a": [1, {"b": []}, {}], "c": "x"}, [[1, 2], [3]], {}, "x"):
        assert show.printed_lines(value, {}) == len(json.dumps(value, indent=4).splitlines())
    loaded = read(ROOT / "inventory" / "sites.yml")
    assert json.loads(show.listing(loaded))["_meta"]["hostvars"]["web2"]["apps"][1]["name"] == "api"


def resolve(config_text: str, tmp_path, name: str) -> dict:
    """What OpenSSH's own client makes of ``name`` with that config (ssh -G)."""
    (tmp_path / "generated").write_text(config_text)
    shown = subprocess.run(["ssh", "-G", "-F", str(tmp_path / "generated"), name], capture_output=True,
                           text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in shown.splitlines() if " " in line)


# -- 9: verify wrote inventory names into its ssh_config as Host patterns ------------------------------

@pytest.mark.skipif(not __import__("shutil").which("ssh"), reason="needs the OpenSSH client")
def test_a_host_named_star_gets_an_alias_and_gives_no_other_host_its_settings(tmp_path):
    from provision.inventory import Host
    star = Host("*", "10.123.0.66", user="mallory", port=2222, key="/keys/mallory")
    web1 = Host("web1", "10.123.0.11")
    text = verify.ssh_config_text([star, web1], "/tmp/pv-x")
    assert "Host *\n    HostName" not in text and "Host provision-host-" in text
    got = resolve(text, tmp_path, "web1")
    assert (got["hostname"], got["user"] != "mallory", got["port"]) == ("10.123.0.11", True, "22")
    alias = verify.ssh_alias(star)
    mine = resolve(text, tmp_path, alias)
    assert (mine["hostname"], mine["user"], mine["port"]) == ("10.123.0.66", "mallory", "2222")
    assert mine["controlpath"] == f"/tmp/pv-x/{alias}"


@pytest.mark.parametrize("name", ["*", "web@evil", "a?sudo=false", "2001:db8::1", "web 1", "w%h", "a,b", "!x"])
def test_names_testinfra_or_ssh_would_misread_get_a_plain_alias(name):
    """'@', '?' and ':' passed unescaped into testinfra's ssh://NAME, which split them."""
    from testinfra.backend.base import BaseBackend
    from provision.inventory import Host
    host = Host(name, "10.123.0.11")
    spec = verify.host_spec(host, "deploy")
    alias = verify.ssh_alias(host)
    assert alias.startswith("provision-host-") and spec == f"ssh://{alias}?sudo=true"
    parsed = BaseBackend.parse_hostspec(alias)
    assert (parsed.name, parsed.port, parsed.user) == (alias, None, None)
    assert verify.ssh_alias(Host("web-1.example_2", "10.123.0.11")) == "web-1.example_2"     # plain: as before


@pytest.mark.skipif(not __import__("shutil").which("ssh"), reason="needs the OpenSSH client")
def test_an_alias_carries_what_the_inventory_ssh_config_says_for_the_name(tmp_path):
    from provision.inventory import Host
    config = tmp_path / "ssh_config"
    config.write_text("Host web@1\n    HostName 10.123.0.11\n    User deploy\n    Port 2200\n"
                      "    IdentityFile /keys/deploy\n    ProxyJump proxy\n")
    host = Host("web@1", "10.123.0.11", explicit_address=False, ssh_config=str(config))
    got = resolve(verify.ssh_config_text([host], "/tmp/pv-x"), tmp_path, verify.ssh_alias(host))
    assert (got["hostname"], got["user"], got["port"], got["proxyjump"]) == ("10.123.0.11", "deploy", "2200", "proxy")
    assert got["identityfile"] == "/keys/deploy"


# -- 10: UserKnownHostsFile=/dev/null with accept-new was accepted -------------------------------------

def test_a_known_hosts_file_that_is_not_a_regular_file_is_refused_in_the_inventory(tmp_path, monkeypatch):
    """The usual stand-in for the refused StrictHostKeyChecking=no: every key accepted, none kept
    (reproduced: a host whose key changed between two connects was accepted)."""
    (tmp_path / "null").symlink_to("/dev/null")
    for known, kind in (("/dev/null", "a character device"), ("null", "a character device"), (".", "a folder")):
        args = f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=accept-new"
        line = refused(tmp_path, monkeypatch, with_(web1={"ansible_ssh_common_args": args}))
        assert "host 'web1': field 'ansible_ssh_common_args': UserKnownHostsFile: known_hosts " in line, line
        assert f" is {kind}, not a regular file: host keys could be neither checked nor remembered" in line


def test_a_known_hosts_file_from_ssh_config_that_is_not_a_regular_file_stops_the_connection(tmp_path, monkeypatch):
    from fabric import Connection
    from provision.inventory import Host
    from provision.transport import HostConnection, Unreachable
    monkeypatch.setattr(Connection, "open", NoConnect)
    (tmp_path / "known").symlink_to("/dev/null")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host web1\n    HostName 127.0.0.1\n    UserKnownHostsFile {tmp_path / 'known'}\n")
    host = Host("web1", "127.0.0.1", explicit_address=False, ssh_config=str(config))
    with pytest.raises(Unreachable, match=r"known_hosts .*/known is a character device, not a regular file: .*"
                                          r"refusing to connect to 127\.0\.0\.1"):
        HostConnection(host, accept_new=True).open()
    (tmp_path / "known").unlink()           # a missing file is fine: an accepted key creates it
    monkeypatch.setattr(Connection, "open", lambda self: (_ for _ in ()).throw(OSError(111, "refused")))
    with pytest.raises(Unreachable, match="cannot connect to 127.0.0.1"):
        HostConnection(host, accept_new=True).open()


# -- 11: output from a managed host was trusted too far -----------------------------------------------

FIXTURES = ROOT / "tests" / "fixtures"


@pytest.mark.parametrize("arch", ["../../../../tmp/owned", "x86_64/../../x", "x86 64", "a" * 33])
def test_a_hostile_uname_m_is_refused_and_names_no_path(tmp_path, monkeypatch, arch):
    """`uname -m` became part of a local cache path: a hostile value wrote outside the cache."""
    from provision import facts as factlib, wheels
    text = (FIXTURES / "debian12" / "facts-backend.txt").read_text()
    hostile = text.replace("@@@ arch\nx86_64\n", f"@@@ arch\n{arch}\n")
    assert hostile != text
    with pytest.raises(factlib.UnsupportedHost, match=r"uname -m printed .*, not a machine architecture"):
        factlib.parse(hostile)
    monkeypatch.setenv("PROVISION_CACHE", str(tmp_path / "cache"))
    with pytest.raises(wheels.WheelError, match="is not a machine architecture"):
        wheels.wheelhouse((3, 11, 2), arch)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "owned").exists()
    assert factlib.parse(text).arch == "x86_64"


def manager_page(**cells) -> str:
    """The 2.4.6 fixture page with some cells of web2's row replaced."""
    page = (FIXTURES / "balancer-manager" / "httpd-2.4.6.html").read_text()
    for old, new in cells.items():
        page = page.replace(old, new)
    return page


class PageEveryTime:
    """Connections whose every script prints ``page`` (a proxy answering drain or wait_idle)."""

    def __init__(self, page):
        self.page = page

    def get(self, host):
        return self

    def run_script(self, script, timeout=0):
        from provision.transport import Result
        return Result(0, self.page, "")


def test_a_balancer_manager_cell_that_is_not_a_number_fails_that_proxy_in_one_line():
    """It crashed drain with ValueError."""
    page = manager_page(**{"<td>1038</td>": "<td>1038; rm -rf /</td>"})
    assert page != manager_page()
    proxy_host = SimpleNamespace(name="proxy", vars={})
    [outcome] = balancing.set_drain([proxy_host], ["http://192.0.2.12:8081"], True,
                                    PageEveryTime(page + "\n" + bm.AFTER + "\n" + page))
    assert not outcome.ok
    assert outcome.error == "balancer-manager's Elected cell for 'http://192.0.2.12:8081' is '1038; rm -rf /', not a number"
    [waited] = balancing.wait_idle([proxy_host], ["http://192.0.2.12:8081"], PageEveryTime(page), timeout=1)
    assert not waited.ok and "not a number" in waited.error


def test_a_page_built_to_make_the_row_regex_backtrack_is_read_in_linear_time():
    row = '<tr>\n<td><a href="x">http://a:1</a></td>' + "<td>1</td>" * 9 + "<td>x" * 100_000
    page = "Load Balancer Manager <h3>LoadBalancer Status for <a href=\"x\">balancer://p</a></h3>" + row
    started = time.process_time()
    assert bm.parse(page) == []             # its last cell never ends: no member
    took = time.process_time() - started
    print(f"{len(page):,} characters: parsed in {took * 1000:.0f} ms of CPU")
    assert took < 1


def test_status_prints_the_hosts_text_as_it_is_never_as_markup():
    """status rendered host text as rich markup (MarkupError on '[/]')."""
    data = {"hosts": {
        "proxy": {"groups": ["proxies"], "last_deploy": {"time": "[/]", "user": "[bold]x", "result": "ok"},
                  "would_change": ["[red]file"],
                  "members": [{"balancer": "[/b]", "route": "r[x]", "address": "a", "state": "[Drn]", "elected": 1,
                               "busy": 0, "load": 0}]},
        "web1": {"error": "[/] [link=file:///x]y[/link]"},
        "web2": {"groups": ["backends"], "last_deploy": None, "would_change": [],
                 "apps": [{"app": "a", "state": "active", "since": "[/]", "address": "b", "http": "[/]",
                           "answers": False}]}}}
    out = io.StringIO()
    out.isatty = lambda: True
    status.print_rich(data, out)
    text = out.getvalue()
    for shown in ("[/]", "[bold]x", "[red]file", "r[x]", "[Drn]", "[link=file:///x]y[/link]", "no [/]"):
        assert shown in text, shown


# -- 13: what clients learn of the inventory's names; the CA key beside the inventory -----------------

def member_names_inventory(tmp_path, value=None):
    data = long_form([{"path": "/", "pool": "web"}], pools={"web": {"members": ["web1", "web2"], "sticky": True}})
    if value is not None:
        data["all"]["vars"] = {"member_names": value}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_member_names_opaque_keeps_host_names_out_of_the_cookie_and_the_header(tmp_path):
    """ROUTEID (the member's route) and X-Backend told clients HOST-APP; opaque names name no host."""
    inv = load(member_names_inventory(tmp_path, "opaque"))
    routes = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, Options())["/etc/apache2/provision/site-app.example.test.inc"]
    found = [w[len("route="):] for line in routes.splitlines() for w in line.split() if w.startswith("route=")]
    assert found == [model_name("web1-hello"), model_name("web2-howdy")] and found[0] != found[1]
    assert "web1" not in " ".join(found) and 'Header add Set-Cookie "ROUTEID=.%{BALANCER_WORKER_ROUTE}e' in routes
    app = next(r for r in backends.resources(inv.hosts["web1"], DEBIAN, inv, Options())
               if getattr(r, "path", "").endswith("/app.py"))
    assert f'MEMBER = "{found[0]}"' in app.content.decode()     # the header names what the cookie names
    model = proxy.model(inv.hosts["proxy"], inv, Options())
    assert [p.members for p in verify.probes(model)] == [tuple(found)]      # verify checks the same names


def model_name(host_app: str) -> str:
    import hashlib
    return "m" + hashlib.sha256(host_app.encode()).hexdigest()[:12]


def test_member_names_default_to_host_names_and_refuse_other_values(tmp_path, monkeypatch):
    inv = load(member_names_inventory(tmp_path))
    routes = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, Options())["/etc/apache2/provision/site-app.example.test.inc"]
    assert " route=web1-hello " in routes and " route=web2-howdy " in routes
    data = yaml.safe_load(member_names_inventory(tmp_path, "hidden").read_text())
    line = refused(tmp_path, monkeypatch, data, name="bad.yml")
    assert "field 'member_names' must be one of host, opaque, got 'hidden'" in line, line


def test_the_tls_store_is_ignored_by_git_from_its_creation(tmp_path):
    """.tls/ sat beside the inventory with the CA key and no ignore rule."""
    import shutil
    from provision import tls
    if not shutil.which("git"):
        pytest.skip("needs git")
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(tls_inventory(tmp_path)))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    inv = load(path)
    tls.prepare(inv, inv.group("proxies"))
    assert (tmp_path / ".tls" / "inventory" / "ca" / "ca.key").is_file()
    assert (tmp_path / ".tls" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert oct((tmp_path / ".tls").stat().st_mode & 0o777) == "0o700"
    untracked = subprocess.run(["git", "-C", str(tmp_path), "status", "--porcelain", "--untracked-files=all"],
                               capture_output=True, text=True, check=True).stdout.split()
    assert untracked == ["??", "inventory.yml"], untracked


# -- found by the property test (test_hypothesis_bad_input.py) ------------------------------------------

def test_an_extra_directive_ending_in_a_backslash_is_refused(tmp_path, monkeypatch):
    """Apache joins the next line to it: the next extra directive would have become its argument."""
    line = refused(tmp_path, monkeypatch, with_(proxy={"proxy_extra_directives": ["Header set X-A b\\",
                                                                                  "ProxyPass /x !"]}))
    assert "field 'proxy_extra_directives[0]' must be one directive on one line, not end with '\\'" in line


def test_a_public_url_python_cannot_split_is_one_line(tmp_path, monkeypatch):
    """urlsplit raises ValueError ("Invalid IPv6 URL") on an unclosed '['."""
    line = refused(tmp_path, monkeypatch, with_(proxy={"public_url": "https://[www.example.test/"}))
    assert "host 'proxy': field 'public_url' must be an http:// or https:// URL" in line, line


def test_a_host_range_that_multiplies_past_the_bound_is_refused_before_expanding(tmp_path, monkeypatch):
    """2,000 ranges of 3 took a second of CPU to reach the bound one name at a time."""
    from provision.inventory import InventoryError, ranges
    started = time.process_time()
    with pytest.raises(InventoryError, match="makes more than 100000 hosts"):
        ranges.expand("[1:3]" * 2000, "inv")
    assert time.process_time() - started < 0.05


# -- the trust model, written down ----------------------------------------------------------------------

def test_the_security_page_says_what_provision_trusts_and_what_it_does_not():
    page = (ROOT / "docs" / "security.md").read_text()
    trust = page[page.index("## What provision trusts"):page.index("## What is checked, what is secret")]
    for fact in ("**Trusted: the inventory's author.**", "`proxy_extra_directives` is the raw escape hatch",
                 "An executable inventory (a script) runs on the control machine",
                 "**Trusted: the control machine.**", "**Not trusted: the managed hosts' output.**",
                 "`uname -m`", "balancer-manager", "rich markup"):
        assert fact in trust, fact
    for section in ("## The host lock", "## What is checked before any connection", "## What clients learn",
                    "## Secrets on the control machine", "## Drain records and upgrades"):
        assert section in page, section
    assert "/run/provision/host.lock" in page and "`member_names: host` (the default)" in page
