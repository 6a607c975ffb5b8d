"""One test per one-line mutation that once survived the unit suite (docs/quality.md names them).
Each asserts behaviour through public functions: inventory.load, facts.parse, Resource.plan,
apply.build run by sh, and the roles' resources."""
import hashlib
import subprocess
import textwrap
from dataclasses import dataclass

import pytest

from provision import apply, facts as factlib
from provision.apply import Handler
from provision.facts import Facts, FileState
from provision.inventory import InventoryError, load
from provision.platforms import DEBIAN, REDHAT
from provision.resources import Absent, Change, Directory, File
from provision.roles import proxy

INVENTORY = """
all:
  children:
    proxies:
      hosts:
        proxy:
          ansible_host: 10.0.0.10
{proxy_vars}
    backends:
      hosts:
        web1:
          ansible_host: 10.0.0.11
          apps: [{{name: hello, port: 8080, message: "Hello world!"}}]
"""


@dataclass
class Opts:
    mode: str | None = None
    tls: dict | None = None


def inventory(tmp_path, **proxy_vars):
    lines = "".join(f"          {k}: {v}\n" for k, v in proxy_vars.items()).rstrip("\n")
    path = tmp_path / "inv.yml"
    path.write_text(textwrap.dedent(INVENTORY).format(proxy_vars=lines))
    return load(path)


def proxy_files(tmp_path, platform=DEBIAN, **proxy_vars) -> dict[str, str]:
    """Every File the proxy role wants, path -> text."""
    inv = inventory(tmp_path, **proxy_vars)
    steps = proxy.resources(inv.hosts["proxy"], platform, inv, Opts())
    return {s.path: s.content.decode() for s in steps if isinstance(s, File)}


def lines_with(files: dict[str, str], word: str) -> list[str]:
    return [line.strip() for text in files.values() for line in text.splitlines() if line.strip().startswith(word)]


def facts(platform=DEBIAN, **kw):
    return Facts(os={"ID": "debian"}, platform=platform, **kw)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- inventory ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["balancer_retry", "balancer_timeout", "balancer_connectiontimeout"])
@pytest.mark.parametrize("value", [-1, 3601])
def test_each_balancer_setting_is_range_checked(tmp_path, field, value):
    with pytest.raises(InventoryError) as err:
        inventory(tmp_path, **{field: value})
    assert f"field {field!r} must be 0-3600 seconds, got {value}" in str(err.value)


@pytest.mark.parametrize("field", ["balancer_retry", "balancer_timeout", "balancer_connectiontimeout"])
def test_balancer_settings_at_the_range_ends_load(tmp_path, field):
    for value in (0, 3600):
        assert inventory(tmp_path, **{field: value}).hosts["proxy"].vars[field] == value


@pytest.mark.parametrize("field", ["balancer_retry", "balancer_timeout"])
def test_a_bool_is_not_an_int(tmp_path, field):
    with pytest.raises(InventoryError) as err:
        inventory(tmp_path, **{field: "true"})
    assert f"field {field!r} must be int, got bool" in str(err.value)


# --- resources: drift the facts can see -----------------------------------------------------

CONTENT = "hello\n"


@pytest.mark.parametrize("have,script", [
    (FileState("file", "644", "root", "adm", sha(CONTENT)), "chown root:root /etc/x"),
    (FileState("file", "644", "www-data", "root", sha(CONTENT)), "chown root:root /etc/x"),
    (FileState("file", "600", "root", "root", sha(CONTENT)), "chmod 644 /etc/x"),
])
def test_file_owner_group_and_mode_drift_is_fixed(have, script):
    change = File("/etc/x", CONTENT).plan(facts(files={"/etc/x": have}))
    assert (change.reason, change.script) == ("mode/owner differ", script)


def test_file_that_matches_changes_nothing():
    change = File("/etc/x", CONTENT).plan(facts(files={"/etc/x": FileState("file", "644", "root", "root",
                                                                           sha(CONTENT))}))
    assert (change.changed, change.reason) == (False, "content, mode and owner match")


@pytest.mark.parametrize("have", [
    FileState("directory", "755", "app", "root"),
    FileState("directory", "755", "root", "app"),
    FileState("directory", "700", "root", "root"),
])
def test_directory_owner_group_and_mode_drift_is_fixed(have):
    change = Directory("/opt/a").plan(facts(files={"/opt/a": have}))
    assert change.reason == "mode/owner differ"
    assert change.script.splitlines() == ["chmod 755 /opt/a", "chown root:root /opt/a"]


def test_link_target_drift_is_fixed():
    from provision.resources import Link
    change = Link("/l", "../t").plan(facts(files={"/l": FileState("link", target="../u")}))
    assert change.script == "ln -sfn ../t /l"


ABSENT_CASES = [
    # (resource, files, packages, script or None, reason)
    (Absent("/x"), {}, {}, None, "already absent"),
    (Absent("/x", installed_by="apache2"), {}, {}, "rm -f /x", "apache2 is about to install it"),
    (Absent("/x", installed_by="apache2"), {}, {"apache2": "2.4"}, None, "already absent"),
    (Absent("/x"), {"/x": FileState("file", "644", "root", "root", "s")}, {}, "rm -f /x", "removed"),
    (Absent("/x", validate="apache"), {"/x": FileState("file", "644", "root", "root", "s")}, {},
     "mv -f /x /x.provision-bak", "removed"),
    (Absent("/x"), {"/x": FileState("link", target="y")}, {}, "rm -f /x", "removed link"),
    (Absent("/x"), {"/x": FileState("directory", "755", "root", "root")}, {}, "exit 1",
     "is a directory, refusing to remove it"),
]


@pytest.mark.parametrize("resource,files,packages,script,reason", ABSENT_CASES)
def test_absent_every_branch(resource, files, packages, script, reason):
    change = resource.plan(facts(files=files, packages=packages))
    assert (change.script or None, change.reason) == (script, reason)


def test_absent_validated_file_is_restored_on_rollback_and_dropped_on_commit():
    change = Absent("/x", validate="apache").plan(facts(files={"/x": FileState("file", "644", "root", "root", "s")}))
    assert (change.rollback, change.commit) == ("mv -f /x.provision-bak /x", "rm -f /x.provision-bak")


# --- apply: a failed configtest keeps earlier runs' handler records ----------------------------

def test_failed_configtest_keeps_the_pending_record_of_an_earlier_run(tmp_path):
    pending = tmp_path / "pending"
    pending.mkdir()
    (pending / "reload").write_text("")          # left by an earlier, interrupted run
    known = {"reload": Handler("reload", "reload", "true"), "restart": Handler("restart", "restart", "true")}
    changes = [Change("a", "x", script="true", notify=("reload",), validate="apache"),
               Change("b", "x", script="true", notify=("restart",), validate="apache")]
    script = apply.build(changes, apply.handlers_to_run(changes, {"reload"}, known), {"apache": "false"},
                         {"reload"}, str(tmp_path))
    proc = subprocess.run(["sh", "-s"], input=script.replace(apply.PENDING_DIR, str(pending)),
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == apply.VALIDATION_FAILED
    assert sorted(p.name for p in pending.iterdir()) == ["reload"]     # this run's "restart" record is gone


# --- facts parsers ----------------------------------------------------------------------------

def test_files_parser_keeps_owner_and_group_apart():
    text = "@@@ os-release\nID=debian\nVERSION_ID=12\n@@@ files\n" \
           f"/etc/x file 640 root adm {'a' * 64}\n/opt/d directory 750 app-hello www-data -\n"
    f = factlib.parse(text)
    assert f.file("/etc/x") == FileState("file", "640", "root", "adm", "a" * 64)
    assert f.file("/opt/d") == FileState("directory", "750", "app-hello", "www-data", "")


def test_first_loadmodule_file_wins_as_in_httpd():
    # httpd reads conf.modules.d/*.conf in order and warns "module X is already loaded, skipping"
    # for the later ones (CentOS 7 00-proxy.conf loads lbmethod_* first).
    text = "@@@ os-release\nID=centos\nVERSION_ID=7\n@@@ loadmodules\n" \
           "/etc/httpd/conf.modules.d/00-proxy.conf:LoadModule proxy_module modules/mod_proxy.so\n" \
           "/etc/httpd/conf.modules.d/99-provision.conf:LoadModule proxy_module modules/mod_proxy.so\n"
    assert factlib.parse(text).load_modules == {"proxy_module": "/etc/httpd/conf.modules.d/00-proxy.conf"}


# --- proxy role rendering ---------------------------------------------------------------------

def test_balancer_member_line_exactly(tmp_path):
    files = proxy_files(tmp_path, balancer_retry=7, balancer_timeout=41, balancer_connectiontimeout=3)
    assert lines_with(files, "BalancerMember") == [
        "BalancerMember http://10.0.0.11:8080 route=web1-hello retry=7 connectiontimeout=3 timeout=41"
        " status=${provision_member_10_2e0_2e0_2e11_3a8080}"]


def test_balancer_member_defaults_exactly(tmp_path):
    assert lines_with(proxy_files(tmp_path), "BalancerMember") == [
        "BalancerMember http://10.0.0.11:8080 route=web1-hello retry=5 connectiontimeout=2 timeout=30"
        " status=${provision_member_10_2e0_2e0_2e11_3a8080}"]


def test_single_mode_proxypass_line_exactly(tmp_path):
    files = proxy_files(tmp_path, proxy_mode="single", balancer_timeout=41, balancer_connectiontimeout=3)
    assert lines_with(files, "ProxyPass / ") == [
        "ProxyPass / http://10.0.0.11:8080/ retry=5 connectiontimeout=3 timeout=41"]


def test_server_name_from_the_inventory(tmp_path):
    named = lines_with(proxy_files(tmp_path, server_name="www.example.test"), "ServerName")
    assert named and set(named) == {"ServerName www.example.test"}
    default = lines_with(proxy_files(tmp_path), "ServerName")
    assert default and set(default) == {"ServerName proxy"}


def test_lbmethod_line_and_its_module_on_debian(tmp_path):
    files = proxy_files(tmp_path, lbmethod="bybusyness")
    assert lines_with(files, "ProxySet") == ["ProxySet lbmethod=bybusyness failonstatus=502,503 failontimeout=On"]
    inv = inventory(tmp_path, lbmethod="bybusyness")
    steps = proxy.resources(inv.hosts["proxy"], DEBIAN, inv, Opts())
    stock = {"proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "slotmem_shm", "headers"}
    scripts = [s.plan(facts(apache_modules=stock)).script for s in steps if s.label.startswith("apache modules")]
    assert [s.splitlines()[0] for s in scripts if s] == ["a2enmod -q lbmethod_bybusyness"]


def test_lbmethod_module_in_the_redhat_dropin(tmp_path):
    inv = inventory(tmp_path, lbmethod="bytraffic")
    steps = proxy.resources(inv.hosts["proxy"], REDHAT, inv, Opts())
    loaded = {mid: "/etc/httpd/conf.modules.d/00-proxy.conf" for mid in
              ("proxy_module", "proxy_http_module", "proxy_balancer_module", "lbmethod_byrequests_module")}
    f = Facts(os={"ID": "centos"}, platform=REDHAT, packages={"httpd": "2.4.6"}, load_modules=loaded)
    [dropin] = [s for s in steps if s.label.startswith("apache modules")]
    change = dropin.plan(f)
    assert set(change.new_content.decode().splitlines()[1:]) == {
        "LoadModule headers_module modules/mod_headers.so",
        "LoadModule lbmethod_bytraffic_module modules/mod_lbmethod_bytraffic.so"}


def test_backend_unit_execstart_exactly(tmp_path):
    from provision.roles import backends
    inv = inventory(tmp_path)
    steps = backends.resources(inv.hosts["web1"], DEBIAN, inv, Opts())
    [unit] = [s for s in steps if isinstance(s, File) and s.path.endswith(".service")]
    assert unit.path == "/etc/systemd/system/provision-app-hello.service"
    text = unit.content.decode().splitlines()
    assert [line for line in text if line.startswith(("ExecStart=", "User=", "Group="))] == [
        "User=app-hello", "Group=app-hello",
        "ExecStart=/opt/provision/apps/hello/venv/bin/gunicorn --config /opt/provision/apps/hello/gunicorn.conf.py "
        "--bind 10.0.0.11:8080 --workers 2 --forwarded-allow-ips 127.0.0.1,10.0.0.10 --access-logfile - app:app"]
