"""Every resource's whole planned Change (label, reason, script, notify, validate, rollback, commit,
satisfies, diff path) and the facts it asks for, compared exactly."""
import hashlib
from dataclasses import asdict

import pytest

from provision.facts import FactRequest, Facts, FileState
from provision.platforms import DEBIAN, REDHAT
from provision.resources import (Absent, Change, Directory, File, FirewalldPort, Link, Packages, SELinuxBoolean,
                                 Service, SystemUser, unified_diff)


def f(platform=DEBIAN, **kw):
    return Facts(os={"ID": "debian"}, platform=platform, **kw)


HELLO = hashlib.sha256(b"hello\n").hexdigest()
WRITE = "tmp=$(mktemp /etc/x.XXXXXX)\nbase64 -d > \"$tmp\" <<'__PROVISION_EOF__'\naGVsbG8K\n__PROVISION_EOF__\n"

CASES = [
    ("file new, validated, notifies, runs after",
     File("/etc/x", "hello\n", notify=("r",), validate="apache", after="systemctl daemon-reload"), f(),
     dict(label="file /etc/x", reason="created", script=WRITE + 'chown root:root "$tmp"\nchmod 644 "$tmp"\n'
          'mv -f "$tmp" /etc/x\nsystemctl daemon-reload', notify=("r",), validate="apache", rollback="rm -f /etc/x"),
     FactRequest(paths={"/etc/x"})),
    ("file over a file, validated",
     File("/etc/x", "hello\n", mode="600", owner="a", group="b", validate="apache"),
     f(files={"/etc/x": FileState("file", "644", "root", "root", "old")}),
     dict(label="file /etc/x", reason="content differs", script=WRITE + 'chown a:b "$tmp"\nchmod 600 "$tmp"\n'
          'cp -p /etc/x /etc/x.provision-bak\nmv -f "$tmp" /etc/x', validate="apache",
          rollback="mv -f /etc/x.provision-bak /etc/x", commit="rm -f /etc/x.provision-bak", diff_path="/etc/x"),
     FactRequest(paths={"/etc/x"})),
    ("file over a link", File("/etc/x", "hello\n"), f(files={"/etc/x": FileState("link", target="/y")}),
     dict(label="file /etc/x", reason="replaces a link", script=WRITE + 'chown root:root "$tmp"\nchmod 644 "$tmp"\n'
          'rm -f /etc/x\nmv -f "$tmp" /etc/x'), FactRequest(paths={"/etc/x"})),
    ("file mode and owner", File("/etc/x", "hello\n", mode="600", owner="a", group="b", notify=("r",)),
     f(files={"/etc/x": FileState("file", "644", "root", "root", HELLO)}),
     dict(label="file /etc/x", reason="mode/owner differ", script="chmod 600 /etc/x\nchown a:b /etc/x", notify=("r",)),
     FactRequest(paths={"/etc/x"})),
    ("file over a directory", File("/etc/x", "hello\n"), f(files={"/etc/x": FileState("directory", "755")}),
     dict(label="file /etc/x", reason="is a directory, refusing to replace it", script="exit 1"),
     FactRequest(paths={"/etc/x"})),
    ("directory new", Directory("/d", mode="700", owner="a", group="b"), f(),
     dict(label="directory /d", reason="created", script="mkdir -p /d\nchmod 700 /d\nchown a:b /d"),
     FactRequest(paths={"/d"})),
    ("directory drift", Directory("/d"), f(files={"/d": FileState("directory", "700", "root", "root")}),
     dict(label="directory /d", reason="mode/owner differ", script="chmod 755 /d\nchown root:root /d"),
     FactRequest(paths={"/d"})),
    ("directory over a file", Directory("/d"), f(files={"/d": FileState("file", "644", "root", "root", "s")}),
     dict(label="directory /d", reason="is a file, refusing to replace it", script="exit 1"), FactRequest(paths={"/d"})),
    ("link new, validated", Link("/l", "../t", notify=("r",), validate="apache"), f(),
     dict(label="link /l", reason="created", script="ln -sfn ../t /l", notify=("r",), validate="apache",
          rollback="rm -f /l"), FactRequest(paths={"/l"})),
    ("link elsewhere, validated", Link("/l", "../t", validate="apache"),
     f(files={"/l": FileState("link", target="../u")}),
     dict(label="link /l", reason="pointed to ../u", script="ln -sfn ../t /l", validate="apache",
          rollback="ln -sfn ../u /l"), FactRequest(paths={"/l"})),
    ("link elsewhere", Link("/l", "../t"), f(files={"/l": FileState("link", target="../u")}),
     dict(label="link /l", reason="pointed to ../u", script="ln -sfn ../t /l"), FactRequest(paths={"/l"})),
    ("link over a file", Link("/l", "../t"), f(files={"/l": FileState("file", "644", "root", "root", "s")}),
     dict(label="link /l", reason="is a file, refusing to replace it", script="exit 1"), FactRequest(paths={"/l"})),
    ("absent link, validated", Absent("/x", notify=("r",), validate="apache"),
     f(files={"/x": FileState("link", target="../y")}),
     dict(label="absent /x", reason="removed link", script="rm -f /x", notify=("r",), validate="apache",
          rollback="ln -sfn ../y /x"), FactRequest(paths={"/x"})),
    ("absent file, validated", Absent("/x", notify=("r",), validate="apache"),
     f(files={"/x": FileState("file", "644", "root", "root", "s")}),
     dict(label="absent /x", reason="removed", script="mv -f /x /x.provision-bak", notify=("r",), validate="apache",
          rollback="mv -f /x.provision-bak /x", commit="rm -f /x.provision-bak"), FactRequest(paths={"/x"})),
    ("absent directory", Absent("/x", installed_by="apache2"), f(files={"/x": FileState("directory", "755")}),
     dict(label="absent /x", reason="is a directory, refusing to remove it", script="exit 1"),
     FactRequest(paths={"/x"}, packages={"apache2"})),
    ("service new, its restart satisfied", Service("app", restart_handler="restart-app"), f(),
     dict(label="service app.service", reason="started and enabled", script="systemctl enable --now app.service",
          satisfies=("restart-app",)), FactRequest(units={"app.service"})),
    ("service failed", Service("app.service", restart_handler="restart-app"),
     f(units={"app.service": {"ActiveState": "failed", "UnitFileState": "enabled"}}),
     dict(label="service app.service", reason="started", script="systemctl start app.service",
          satisfies=("restart-app",)), FactRequest(units={"app.service"})),
    ("selinux boolean off", SELinuxBoolean("b", False), f(REDHAT, selinux="Permissive", sebools={"b": True}),
     dict(label="selinux boolean b", reason="set off (SELinux Permissive)", script="setsebool -P b off"),
     FactRequest()),
    ("selinux boolean already off", SELinuxBoolean("b", False), f(REDHAT, selinux="Enforcing", sebools={"b": False}),
     dict(label="selinux boolean b", reason="already off"), FactRequest()),
    ("selinux disabled", SELinuxBoolean("b"), f(REDHAT, selinux="Disabled"),
     dict(label="selinux boolean b", reason="SELinux is not enabled"), FactRequest()),
    ("firewalld port", FirewalldPort("8080/tcp"), f(REDHAT, firewalld=True),
     dict(label="firewalld port 8080/tcp", reason="opened",
          script="firewall-cmd -q --permanent --add-port=8080/tcp\nfirewall-cmd -q --reload"), FactRequest()),
    ("user", SystemUser("app-a", "/opt/a b", "/sbin/nologin"), f(),
     dict(label="user app-a", reason="created",
          script="useradd --system --home-dir '/opt/a b' --no-create-home --shell /sbin/nologin app-a"),
     FactRequest(users={"app-a"})),
    ("packages on redhat", Packages(REDHAT, ("httpd", "mod_ssl")), f(REDHAT, packages={"httpd": "1"}),
     dict(label="packages httpd mod_ssl", reason="missing mod_ssl", script="yum install -y -q mod_ssl"),
     FactRequest(packages={"httpd", "mod_ssl"})),
]


def fields(change: Change) -> dict:
    return {k: v for k, v in asdict(change).items() if k != "new_content"}


@pytest.mark.parametrize("name,resource,given,expected,request_", CASES, ids=[c[0] for c in CASES])
def test_whole_change(name, resource, given, expected, request_):
    assert fields(resource.plan(given)) == fields(Change(**expected))
    assert resource.request() == request_


def test_written_content_is_carried_for_diff():
    change = File("/etc/x", "hello\n").plan(f(files={"/etc/x": FileState("file", "644", "root", "root", "o")}))
    assert change.new_content == b"hello\n"


def test_unified_diff_names_host_and_wanted():
    assert unified_diff("/etc/x", b"a\nb\n", b"a\nc\n\xff\n") == (
        "--- /etc/x (host)\n+++ /etc/x (wanted)\n@@ -1,2 +1,3 @@\n a\n-b\n+c\n+\ufffd\n")


def unchanged(label, reason):
    return dict(label=label, reason=reason)


NO_CHANGE = [
    ("file matches", File("/etc/x", "hello\n"), f(files={"/etc/x": FileState("file", "644", "root", "root", HELLO)}),
     unchanged("file /etc/x", "content, mode and owner match")),
    ("directory matches", Directory("/d"), f(files={"/d": FileState("directory", "755", "root", "root")}),
     unchanged("directory /d", "exists with the right mode and owner")),
    ("link matches", Link("/l", "../t"), f(files={"/l": FileState("link", target="../t")}),
     unchanged("link /l", "points to ../t")),
    ("packages all there", Packages(DEBIAN, ("a", "b")), f(packages={"a": "1", "b": "2"}),
     unchanged("packages a b", "all installed")),
    ("user exists", SystemUser("app-a", "/opt/a", "/sbin/nologin"), f(users={"app-a"}),
     unchanged("user app-a", "exists")),
    ("service running", Service("app"), f(units={"app.service": {"ActiveState": "active",
                                                                 "UnitFileState": "enabled", "MainPID": "42"}}),
     unchanged("service app.service", "enabled and running (MainPID 42)")),
    ("service running, no pid shown", Service("app"),
     f(units={"app.service": {"ActiveState": "active", "UnitFileState": "enabled"}}),
     unchanged("service app.service", "enabled and running (MainPID ?)")),
    ("firewalld down", FirewalldPort("8080/tcp"), f(REDHAT), unchanged("firewalld port 8080/tcp",
                                                                    "firewalld is not running")),
    ("firewalld port open", FirewalldPort("8080/tcp"), f(REDHAT, firewalld=True, firewalld_ports={"8080/tcp"}),
     unchanged("firewalld port 8080/tcp", "already open")),
    ("selinux boolean already on", SELinuxBoolean("b"), f(REDHAT, selinux="Enforcing", sebools={"b": True}),
     unchanged("selinux boolean b", "already on")),
]


@pytest.mark.parametrize("name,resource,given,expected", NO_CHANGE, ids=[c[0] for c in NO_CHANGE])
def test_no_change_says_why(name, resource, given, expected):
    assert fields(resource.plan(given)) == fields(Change(**expected))


def test_several_missing_are_named_together():
    from provision.resources import ApacheModules
    assert fields(Packages(DEBIAN, ("a", "b", "c")).plan(f(packages={"b": "1"})))["reason"] == "missing a c"
    change = ApacheModules(("proxy", "proxy_http", "ssl")).plan(f(apache_modules={"proxy_http"}))
    assert (change.reason, change.script) == ("enabled proxy ssl", "a2enmod -q proxy ssl")
    assert fields(ApacheModules(("proxy",)).plan(f(apache_modules={"proxy"}))) == fields(
        Change("apache modules proxy", "all enabled"))


def house():
    from pathlib import Path

    from provision.wheels import Wheelhouse
    pip = Path("/w/pip-21.3.1-py3-none-any.whl")
    return Wheelhouse("k", ("Flask==2.0.3", "gunicorn==21.2.0"), (Path("/w/f.whl"), pip), pip)




def test_edges_of_absent_dropin_service_and_skips():
    from provision.resources import ApacheModuleDropin, Service
    link = Absent("/x").plan(f(files={"/x": FileState("link", target="../y")}))
    assert (link.rollback, link.validate) == ("", None)
    dropin = ApacheModuleDropin("/d.conf", {"a": ("a_module", "m/a.so"), "b": ("b_module", "m/b.so")}, "httpd",
                                notify=("r",))
    assert dropin.request() == FactRequest(paths={"/d.conf"}, packages={"httpd"})
    fresh = dropin.plan(Facts(os={}, platform=REDHAT))
    assert fresh.label == "apache modules a b"
    two = dropin.plan(Facts(os={}, platform=REDHAT, packages={"httpd": "1"}))
    assert two.new_content.decode().splitlines()[1:] == ["LoadModule a_module m/a.so", "LoadModule b_module m/b.so"]
    gone = dropin.plan(Facts(os={}, platform=REDHAT, packages={"httpd": "1"}, load_modules={
        "a_module": "/p.conf", "b_module": "/p.conf"}, files={"/d.conf": FileState("file", "644", "root", "root", "x")}))
    assert gone.notify == ("r",) and gone.script == "rm -f /d.conf"
    enabled = Service("s").plan(f(units={"s.service": {"ActiveState": "active", "UnitFileState": "disabled"}}))
    assert (enabled.reason, enabled.script, enabled.satisfies) == ("enabled", "systemctl enable s.service", ())
    started = Service("s").plan(f())
    assert started.satisfies == ()
    skipped = File("/x", "y", when=lambda facts: "not here").plan(f())
    assert (skipped.label, skipped.reason, skipped.changed) == ("file /x", "not here", False)


def test_unified_diff_of_undecodable_old_content():
    assert unified_diff("/x", b"\xff\n", b"a\n").splitlines()[3:] == ["-\ufffd", "+a"]
