"""The roles planned on captured CentOS 7 facts: the exact plan a fresh CentOS 7 host gets.
Facts come from real CentOS 7 files (tests/fixtures/centos7, from the httpd-2.4.6-45.el7.centos
package sources) and RHEL 7 command outputs (tests/fixtures/rhel*)."""
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision import apply, facts as factlib
from provision.inventory import load
from provision.roles import backends, proxy
from provision.wheels import Wheelhouse, installer_for, pins_for

FIX = Path(__file__).resolve().parents[2] / "fixtures"
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Opts:
    mode: str | None = None
    wheels: object = None


def fake_wheels(facts):
    pins = pins_for(facts.python)
    installer = Path(f"/cache/{installer_for(facts.python).replace('==', '-')}-py3-none-any.whl")
    return Wheelhouse(f"py{facts.python[0]}{facts.python[1]}-x86_64-test", pins,
                      tuple(Path(f"/cache/{p.replace('==', '-')}-py3-none-any.whl") for p in pins) + (installer,),
                      installer, ("0" * 64,) * (len(pins) + 1))


def centos7_output(installed=(), loadmodules=True, selinux="Enforcing", sebool="off", firewalld=True):
    """What the facts script prints on a CentOS 7 host, built from captured files."""
    out = ["@@@ os-release", (FIX / "centos7/os-release").read_text(), "@@@ arch", "x86_64",
           "@@@ python", "Python 3.6.8", "@@@ packages"]
    out += [f"{name}\tinstalled\t2.4.6-97.el7.centos.5" for name in installed]
    out += ["@@@ loadmodules"]
    if loadmodules:
        for conf in sorted((FIX / "centos7/conf.modules.d").glob("0*.conf")):
            out += [f"/etc/httpd/conf.modules.d/{conf.name}:{line}" for line in conf.read_text().splitlines()
                    if line.lstrip().startswith("LoadModule")]
    # getsebool's line format as captured on RHEL (tests/fixtures/rhel/getsebool-a.excerpt.txt)
    out += ["@@@ selinux", selinux, f"httpd_can_network_connect --> {sebool}"]
    out += ["@@@ firewalld"] + (["running", "dhcpv6-client ssh"] if firewalld else [])
    out += ["@@@ pending"]
    return "\n".join(out) + "\n"


@pytest.fixture
def inventory():
    return load(ROOT / "inventory/tutorial.yml")


def plan(role, host, inventory, text, opts=None):
    f = factlib.parse(text)
    resources = role.resources(host, f.platform, inventory, opts or Opts(wheels=fake_wheels))
    return f, [r.plan(f) for r in resources]


def test_fresh_centos7_proxy_plan(inventory):
    f, changes = plan(proxy, inventory.hosts["proxy"], inventory, centos7_output())
    assert f.family == "redhat"
    todo = [(c.label, c.script) for c in changes if c.changed]
    labels = [label for label, _ in todo]
    assert labels == [
        "yum repo /etc/yum.repos.d/CentOS-Base.repo",
        "packages httpd curl",
        "selinux boolean httpd_can_network_connect",
        "firewalld service http",
        "directory /etc/httpd/provision",
        "directory /var/log/provision",
        "directory /etc/logrotate.d",
        "logrotate /etc/logrotate.d/provision",
        "file /etc/httpd/provision/proxy-routes.inc",
        "file /etc/httpd/conf.d/provision-proxy.conf",
        "file /etc/httpd/conf.d/welcome.conf",
        "service httpd.service",
    ]
    scripts = dict(todo)
    import base64
    import re
    repo = base64.b64decode(re.search(r"<<'__PROVISION_EOF__'\n(.*?)__PROVISION_EOF__",
                                      scripts[labels[0]], re.S).group(1)).decode()
    for name in ("base", "updates", "extras"):
        assert f"baseurl=http://vault.centos.org/7.9.2009/{name}/$basearch/" in repo
    assert "mirrorlist" not in repo.replace("mirrorlist.centos.org", "")
    assert "yum clean all" in scripts[labels[0]]
    assert scripts["packages httpd curl"] == "yum install -y -q httpd curl"
    assert scripts["selinux boolean httpd_can_network_connect"] == "setsebool -P httpd_can_network_connect on"
    assert "firewall-cmd -q --permanent --add-service=http" in scripts["firewalld service http"]
    assert scripts["service httpd.service"] == "systemctl enable --now httpd.service"
    # every Apache config change is configtested and reloads once
    config = [c for c in changes if c.changed and c.validate]
    assert len(config) >= 3 and {c.validate for c in config} == {"apache"}
    assert all(c.notify == (proxy.RELOAD,) for c in config)
    script = apply.build(changes, list(proxy.handlers(None, f.platform).values()),
                         proxy.validators_for(f.platform), set(), "/x")
    assert script.count("apachectl configtest") == 2        # the guard, then the handler
    assert "systemctl reload httpd" in script and "restart httpd" not in script


def test_centos7_proxy_with_httpd_installed_uses_stock_proxy_modules(inventory):
    _, changes = plan(proxy, inventory.hosts["proxy"], inventory, centos7_output(installed=("httpd", "curl")))
    mods = next(c for c in changes if c.label.startswith("apache modules"))
    assert not mods.changed and "conf.modules.d" in mods.reason   # no drop-in: 00-proxy.conf loads them


def test_centos7_proxy_adds_dropin_when_a_module_is_commented_out(inventory):
    text = centos7_output(installed=("httpd", "curl")).replace(
        "00-proxy.conf:LoadModule proxy_balancer_module", "00-proxy.conf:#LoadModule proxy_balancer_module")
    _, changes = plan(proxy, inventory.hosts["proxy"], inventory, text)
    mods = next(c for c in changes if c.label.startswith("apache modules"))
    assert mods.changed and "10-provision-proxy.conf" in mods.script


def test_centos7_permissive_off_and_firewalld_stopped(inventory):
    text = centos7_output(selinux="Disabled", firewalld=False)
    _, changes = plan(proxy, inventory.hosts["proxy"], inventory, text)
    by = {c.label: c for c in changes}
    assert not by["selinux boolean httpd_can_network_connect"].changed
    assert not by["firewalld service http"].changed


def test_centos7_backend_plan_python36_and_flask20_wheels(inventory):
    host = inventory.hosts["proxy"]             # the tutorial's one server: proxy and backend
    f, changes = plan(backends, host, inventory, centos7_output())
    todo = {c.label: c for c in changes if c.changed}
    assert todo["packages python3 curl"].script == "yum install -y -q python3 curl"
    for app in ("hello", "howdy"):
        venv = todo[f"venv /opt/provision/apps/{app}/venv"]
        assert "python3 -m venv --without-pip" in venv.script
        assert "pip-21.3.1-py3-none-any.whl/pip install" in venv.script
        assert "--no-index" in venv.script
        assert "Flask==2.0.3" in venv.script and "Werkzeug==2.0.3" in venv.script
        assert "gunicorn==21.2.0" in venv.script
        assert "useradd --system" in todo[f"user app-{app}"].script
        assert "/sbin/nologin" in todo[f"user app-{app}"].script
        unit = todo[f"unit /etc/systemd/system/provision-app-{app}.service"]
        assert "systemctl daemon-reload" in unit.script
    assert "--bind 127.0.0.1:8080" in _decoded(todo["unit /etc/systemd/system/provision-app-hello.service"])
    assert "--bind 127.0.0.1:8081" in _decoded(todo["unit /etc/systemd/system/provision-app-howdy.service"])


def test_centos7_apps_on_loopback_open_no_firewalld_port(inventory):
    """firewalld runs (the captured facts), yet apps on 127.0.0.1 need no opening: only the proxy
    on the same host reaches them. A backend on its own host still opens its app port."""
    _, changes = plan(backends, inventory.hosts["proxy"], inventory, centos7_output())
    assert not [c.label for c in changes if c.label.startswith("firewalld")]
    lab = load(ROOT / "inventory/lab.yml")
    _, changes = plan(backends, lab.hosts["web1"], lab, centos7_output())
    opened = {c.label: c for c in changes if c.label.startswith("firewalld")}
    assert list(opened) == ["firewalld port 8080/tcp from 10.123.0.10"]
    assert opened["firewalld port 8080/tcp from 10.123.0.10"].changed


def test_centos7_tutorial_proxy_members_are_loopback(inventory):
    _, changes = plan(proxy, inventory.hosts["proxy"], inventory, centos7_output())
    routes = _decoded(next(c for c in changes if c.label == "file /etc/httpd/provision/proxy-routes.inc"))
    members = [line.split()[1] for line in routes.splitlines() if line.strip().startswith("BalancerMember")]
    assert members == ["http://127.0.0.1:8080", "http://127.0.0.1:8081"]


def _decoded(change):
    import base64
    import re
    return base64.b64decode(re.search(r"<<'__PROVISION_EOF__'\n(.*?)__PROVISION_EOF__", change.script, re.S)
                            .group(1)).decode()


def test_debian_gets_a2enmod_and_no_redhat_steps(inventory):
    text = centos7_output().replace((FIX / "centos7/os-release").read_text(),
                                    (FIX / "debian12/os-release").read_text())
    f, changes = plan(proxy, inventory.hosts["proxy"], inventory, text)
    labels = [c.label for c in changes]
    assert f.family == "debian"
    assert "apache modules proxy proxy_http proxy_balancer lbmethod_byrequests headers" in labels
    assert not any(label.startswith(("yum", "selinux", "firewalld")) for label in labels)
    by = {c.label: c for c in changes}
    assert by["link /etc/apache2/sites-enabled/provision-proxy.conf"].changed
    assert "a2enmod -q proxy proxy_http proxy_balancer lbmethod_byrequests" in \
        by["apache modules proxy proxy_http proxy_balancer lbmethod_byrequests headers"].script


def test_fresh_centos7_tls_proxy_installs_mod_ssl_and_owns_ssl_conf(inventory, tmp_path):
    from provision import tls
    host = inventory.hosts["proxy"]
    host.vars["tls"] = "self-signed"
    inventory.path = tmp_path / "tutorial.yml"          # the CA store goes beside it, in tmp
    opts = Opts(wheels=fake_wheels)
    opts.tls = tls.prepare(inventory, [host])
    f, changes = plan(proxy, host, inventory, centos7_output(), opts)
    by = {c.label: c for c in changes if c.changed}
    assert by["packages mod_ssl"].script == "yum install -y -q mod_ssl"
    labels = list(by)
    assert labels.index("packages httpd curl") < labels.index("packages mod_ssl") < \
        labels.index("file /etc/httpd/conf.d/ssl.conf") < labels.index("file /etc/httpd/conf.d/provision-proxy.conf")
    assert "firewall-cmd -q --permanent --add-service=https" in by["firewalld service https"].script
    written = [label.split(" ", 2)[-1] for label in labels if label.startswith(("file", "tls"))]
    assert "/etc/httpd/conf.d/ssl.conf" in written and "/etc/httpd/conf.d/provision-proxy.conf" in written
    assert "/etc/httpd/provision/tls/proxy.key" in written
    assert "chmod 600" in by["tls key /etc/httpd/provision/tls/proxy.key"].script
    ssl_conf = _decoded(by["file /etc/httpd/conf.d/ssl.conf"])
    directives = [line for line in ssl_conf.splitlines() if line.strip() and not line.startswith("#")]
    assert "Listen 443 https" in directives and not any("VirtualHost" in d for d in directives)
    vhost = _decoded(by["file /etc/httpd/conf.d/provision-proxy.conf"])
    assert vhost.count("<VirtualHost *:443>") == 1 and "SSLCertificateChainFile" not in vhost
    assert all(c.validate == "apache" and c.notify == (proxy.RELOAD,) for c in changes
               if c.changed and c.label.startswith(("file /etc/httpd", "tls")))


def test_centos7_tls_modules_come_from_the_packages(inventory, tmp_path):
    """With httpd and mod_ssl installed, 00-base.conf and 00-ssl.conf load every TLS module: no drop-in."""
    from provision import tls
    host = inventory.hosts["proxy"]
    host.vars["tls"] = "self-signed"
    inventory.path = tmp_path / "tutorial.yml"
    opts = Opts(wheels=fake_wheels)
    opts.tls = tls.prepare(inventory, [host])
    _, changes = plan(proxy, host, inventory, centos7_output(installed=("httpd", "curl", "mod_ssl")), opts)
    mods = next(c for c in changes if c.label.startswith("apache modules"))
    assert not mods.changed, mods.script
    assert "ssl" not in mods.label.split()[2:]
