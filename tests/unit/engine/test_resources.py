"""Resource planning: facts given -> commands planned, or no change with its reason."""
import hashlib

import pytest

from provision.facts import Facts, FileState
from provision.platforms import DEBIAN, PROXY_MODULES, REDHAT
from provision.resources import (Absent, ApacheModuleDropin, ApacheModules, Directory, File, FirewalldPort,
                                 FirewalldService,
                                 Link, Packages, SELinuxBoolean, Service, SystemUser, Venv)
from provision.wheels import Wheelhouse


def facts(platform=DEBIAN, **kw):
    return Facts(os={"ID": "debian"}, platform=platform, **kw)


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


CONTENT = "hello\n"
SAME = FileState("file", "644", "root", "root", sha(CONTENT))

CASES = [
    # (name, resource, facts, expected script fragments (None = no change), reason fragment)
    ("file same", File("/etc/x", CONTENT), facts(files={"/etc/x": SAME}), None, "match"),
    ("file absent", File("/etc/x", CONTENT), facts(), ["mktemp /etc/x.XXXXXX", "base64 -d", "mv -f \"$tmp\" /etc/x"],
     "created"),
    ("file differs", File("/etc/x", "new\n"), facts(files={"/etc/x": SAME}), ["base64 -d", "chmod 644"],
     "content differs"),
    ("file mode only", File("/etc/x", CONTENT, mode="600"), facts(files={"/etc/x": SAME}), ["chmod 600 /etc/x"],
     "mode/owner differ"),
    ("file owner only", File("/etc/x", CONTENT, owner="app"), facts(files={"/etc/x": SAME}),
     ["chown app:root /etc/x"], "mode/owner differ"),
    ("file validated keeps backup", File("/etc/x", "new\n", validate="apache"), facts(files={"/etc/x": SAME}),
     ["cp -p /etc/x /etc/x.provision-bak"], "content differs"),
    ("file over directory refused", File("/etc/x", CONTENT), facts(files={"/etc/x": FileState("directory")}),
     ["exit 1"], "refusing"),
    ("dir exists", Directory("/opt/a"), facts(files={"/opt/a": FileState("directory", "755", "root", "root")}),
     None, "exists"),
    ("dir absent", Directory("/opt/a"), facts(), ["mkdir -p /opt/a", "chmod 755 /opt/a"], "created"),
    ("link right", Link("/l", "../t"), facts(files={"/l": FileState("link", target="../t")}), None, "points to"),
    ("link wrong", Link("/l", "../t"), facts(files={"/l": FileState("link", target="../u")}),
     ["ln -sfn ../t /l"], "pointed to ../u"),
    ("absent already", Absent("/x"), facts(), None, "already absent"),
    ("absent link", Absent("/x"), facts(files={"/x": FileState("link", target="y")}), ["rm -f /x"], "removed"),
    ("packages all there", Packages(DEBIAN, ("apache2", "curl")), facts(packages={"apache2": "1", "curl": "2"}),
     None, "all installed"),
    ("packages missing debian", Packages(DEBIAN, ("apache2", "curl")), facts(packages={"curl": "2"}),
     ["apt-get update -q", "apt-get install -y -q --no-install-recommends", "apache2"], "missing apache2"),
    ("packages missing redhat", Packages(REDHAT, ("httpd",)), facts(REDHAT), ["yum install -y -q httpd"],
     "missing httpd"),
    ("user exists", SystemUser("app-a", "/opt/a", "/usr/sbin/nologin"), facts(users={"app-a"}), None, "exists"),
    ("user missing", SystemUser("app-a", "/opt/a", "/sbin/nologin"), facts(),
     ["useradd --system --home-dir /opt/a --no-create-home --shell /sbin/nologin app-a"], "created"),
    ("service running", Service("a.service"),
     facts(units={"a.service": {"ActiveState": "active", "UnitFileState": "enabled", "MainPID": "7"}}), None,
     "MainPID 7"),
    ("service stopped", Service("a.service"),
     facts(units={"a.service": {"ActiveState": "inactive", "UnitFileState": "enabled"}}),
     ["systemctl start a.service"], "started"),
    ("service new", Service("a.service"), facts(), ["systemctl enable --now a.service"], "started and enabled"),
    ("service not enabled", Service("a.service"),
     facts(units={"a.service": {"ActiveState": "active", "UnitFileState": "disabled"}}),
     ["systemctl enable a.service"], "enabled"),
    ("a2enmod all", ApacheModules(tuple(PROXY_MODULES)),
     facts(apache_modules={"proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests"}), None, "all enabled"),
    ("a2enmod missing", ApacheModules(tuple(PROXY_MODULES)), facts(apache_modules={"proxy"}),
     ["a2enmod -q proxy_http proxy_balancer lbmethod_byrequests"], "enabled proxy_http"),
    ("selinux off", SELinuxBoolean("httpd_can_network_connect"), facts(REDHAT), None, "not enabled"),
    ("selinux enforcing", SELinuxBoolean("httpd_can_network_connect"),
     facts(REDHAT, selinux="Enforcing", sebools={"httpd_can_network_connect": False}),
     ["setsebool -P httpd_can_network_connect on"], "set on"),
    ("selinux already", SELinuxBoolean("httpd_can_network_connect"),
     facts(REDHAT, selinux="Enforcing", sebools={"httpd_can_network_connect": True}), None, "already on"),
    ("firewalld down", FirewalldService("http"), facts(REDHAT), None, "not running"),
    ("firewalld open", FirewalldService("http"), facts(REDHAT, firewalld=True, firewalld_services={"http"}),
     None, "already open"),
    ("port closed", FirewalldPort("8080/tcp"), facts(REDHAT, firewalld=True, firewalld_ports={"22/tcp"}),
     ["firewall-cmd -q --permanent --add-port=8080/tcp"], "opened"),
    ("port open", FirewalldPort("8080/tcp"), facts(REDHAT, firewalld=True, firewalld_ports={"8080/tcp"}), None,
     "already open"),
    ("firewalld closed", FirewalldService("http"), facts(REDHAT, firewalld=True, firewalld_services={"ssh"}),
     ["firewall-cmd -q --permanent --add-service=http", "firewall-cmd -q --reload"], "opened"),
]


@pytest.mark.parametrize("name,resource,given,fragments,reason", CASES, ids=[c[0] for c in CASES])
def test_plan(name, resource, given, fragments, reason):
    change = resource.plan(given)
    assert reason in change.reason
    if fragments is None:
        assert not change.changed, change.script
    else:
        assert change.changed
        for fragment in fragments:
            assert fragment in change.script


def test_file_write_carries_the_exact_content():
    import base64
    import re
    change = File("/etc/x", "a'b\"c\n$HOME\n").plan(facts())
    encoded = re.search(r"<<'__PROVISION_EOF__'\n(.*?)__PROVISION_EOF__", change.script, re.S).group(1)
    assert base64.b64decode(encoded) == b"a'b\"c\n$HOME\n"


def test_validated_file_rollback_and_commit():
    old = File("/etc/x", "new\n", validate="apache").plan(facts(files={"/etc/x": SAME}))
    assert old.rollback == "mv -f /etc/x.provision-bak /etc/x" and old.commit == "rm -f /etc/x.provision-bak"
    new = File("/etc/x", "new\n", validate="apache").plan(facts())
    assert new.rollback == "rm -f /etc/x"


DROPIN = "/etc/httpd/conf.modules.d/10-provision-proxy.conf"
STOCK = {m: "/etc/httpd/conf.modules.d/00-proxy.conf" for m, _ in PROXY_MODULES.values()}


def test_redhat_modules_loaded_by_package_need_no_dropin():
    change = ApacheModuleDropin(DROPIN, PROXY_MODULES, "httpd").plan(
        facts(REDHAT, packages={"httpd": "2.4.6"}, load_modules=STOCK))
    assert not change.changed and "loaded by the package's conf.modules.d" in change.reason


def test_redhat_missing_module_gets_a_dropin():
    loaded = {k: v for k, v in STOCK.items() if k != "proxy_balancer_module"}
    change = ApacheModuleDropin(DROPIN, PROXY_MODULES, "httpd").plan(
        facts(REDHAT, packages={"httpd": "2.4.6"}, load_modules=loaded))
    assert change.changed
    import base64
    import re
    body = base64.b64decode(re.search(r"<<'__PROVISION_EOF__'\n(.*?)__PROVISION_EOF__", change.script, re.S)
                            .group(1)).decode()
    assert "LoadModule proxy_balancer_module modules/mod_proxy_balancer.so" in body
    assert "proxy_http_module" not in body


def test_redhat_own_dropin_is_kept_while_needed():
    loaded = {**STOCK, "proxy_balancer_module": DROPIN}
    body = ("# Managed by provision: proxy modules the package's conf.modules.d does not load.\n"
            "LoadModule proxy_balancer_module modules/mod_proxy_balancer.so\n")
    change = ApacheModuleDropin(DROPIN, PROXY_MODULES, "httpd").plan(
        facts(REDHAT, packages={"httpd": "2.4.6"}, load_modules=loaded,
              files={DROPIN: FileState("file", "644", "root", "root", sha(body))}))
    assert not change.changed, change.reason


def house():
    from pathlib import Path
    pip = Path("/w/pip-21.3.1-py3-none-any.whl")
    return Wheelhouse("py36-x86_64-k", ("Flask==2.0.3",), (Path("/w/Flask-2.0.3-py3-none-any.whl"), pip), pip,
                      ("a" * 64, "b" * 64))


def test_venv_matching_marker_is_left_alone():
    marker = sha(house().manifest)
    v = Venv("/opt/a/venv", lambda f: house())
    change = v.plan(facts(python=(3, 6, 8), files={v.marker: FileState("file", "644", "root", "root", marker)}))
    assert not change.changed and "Flask==2.0.3" in change.reason


def test_venv_installs_offline_from_uploaded_wheels():
    v = Venv("/opt/a/venv", lambda f: house())
    change = v.plan(facts(python=(3, 6, 8)))
    assert "python3 -m venv --without-pip /opt/a/venv" in change.script
    assert ('/opt/a/venv/bin/python "$wheels"/pip-21.3.1-py3-none-any.whl/pip install'
            in change.script)
    assert "--no-index --find-links \"$wheels\" Flask==2.0.3" in change.script
    assert "wheels=$(mktemp -d /var/lib/provision/wheels.XXXXXX)" in change.script
    assert change.uploads == (("/w/Flask-2.0.3-py3-none-any.whl", "py36-x86_64-k/Flask-2.0.3-py3-none-any.whl",
                               "a" * 64),
                              ("/w/pip-21.3.1-py3-none-any.whl", "py36-x86_64-k/pip-21.3.1-py3-none-any.whl",
                               "b" * 64))


def test_venv_on_a_host_without_python_uses_its_releases_python_and_checks_it():
    # A minimal image (the VM lab's box) has no python3: the backends role installs it earlier in
    # the same run, so the wheels are chosen for the python3 Debian 12 ships, and checked at apply.
    seen = []
    v = Venv("/opt/a/venv", lambda f: seen.append(f) or house())
    bookworm = Facts(os={"ID": "debian", "VERSION_ID": "12"}, platform=DEBIAN, python=None, arch="x86_64")
    change = v.plan(bookworm)
    assert change.changed and change.reason.startswith("installed Flask==2.0.3")
    first = change.script.splitlines()[0]
    assert first == ("python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || "
                     "{ echo 'python3 is not 3.11, the version the wheels were chosen for' >&2; exit 1; }")
    assert "python3 -m venv --without-pip /opt/a/venv" in change.script
    assert seen == [bookworm]


def test_venv_on_a_host_with_python_has_no_version_check():
    change = Venv("/opt/a/venv", lambda f: house()).plan(facts(python=(3, 11, 2)))
    assert "sys.version_info" not in change.script


def test_venv_without_python_on_a_release_not_listed_fails_saying_so():
    change = Venv("/opt/a/venv", lambda f: house()).plan(
        Facts(os={"ID": "debian", "VERSION_ID": "14"}, platform=DEBIAN, python=None))
    assert change.reason == "no python3 on the host"
    assert change.script == "echo 'python3 is missing' >&2; exit 1"


def test_when_skips_with_reason():
    f = File("/etc/yum.repos.d/x.repo", "x", when=lambda facts: "not CentOS 7")
    change = f.plan(facts())
    assert not change.changed and change.reason == "not CentOS 7"


def test_optional_module_is_marked_when_enabled_and_disabled_when_not_wanted():
    from provision.facts import FileState
    wanted = ApacheModules(("proxy", "lbmethod_bybusyness"), optional=("lbmethod_bybusyness", "lbmethod_bytraffic"),
                           marks="/etc/apache2/provision/modules")
    assert wanted.request().paths == {"/etc/apache2/provision/modules/lbmethod_bybusyness",
                                      "/etc/apache2/provision/modules/lbmethod_bytraffic"}
    change = wanted.plan(facts(apache_modules={"proxy"}))
    assert change.script.splitlines() == ["a2enmod -q lbmethod_bybusyness", "mkdir -p /etc/apache2/provision/modules",
                                          "touch /etc/apache2/provision/modules/lbmethod_bybusyness"]
    back = ApacheModules(("proxy",), optional=wanted.optional, marks=wanted.marks)
    ours = facts(apache_modules={"proxy", "lbmethod_bybusyness"},
                 files={"/etc/apache2/provision/modules/lbmethod_bybusyness": FileState("file")})
    change = back.plan(ours)
    assert change.reason == "disabled lbmethod_bybusyness (no longer needed)"
    assert change.script.splitlines() == ["a2dismod -q lbmethod_bybusyness",
                                          "rm -f /etc/apache2/provision/modules/lbmethod_bybusyness"]
    # enabled by someone else (no mark): left alone
    assert not back.plan(facts(apache_modules={"proxy", "lbmethod_bybusyness"})).changed
