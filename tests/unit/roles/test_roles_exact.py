"""The roles' public pieces exactly: handlers, validators, members, modules, the backend plan's
steps and their notifications, and the TLS-off steps."""
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.facts import Facts, FileState
from provision.inventory import load
from provision.platforms import DEBIAN, REDHAT, REDIRECT_MODULES, TLS_MODULES
from provision.roles import backends, proxy

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Opts:
    mode: str | None = None
    tls: dict | None = None
    wheels: object = None


@pytest.fixture
def inv():
    return load(ROOT / "inventory/lab.yml")


@pytest.mark.parametrize("platform,ctl,service", [(DEBIAN, "apache2ctl", "apache2"), (REDHAT, "apachectl", "httpd")])
def test_proxy_handler_and_validator(platform, ctl, service):
    [(name, h)] = proxy.handlers(None, platform).items()
    assert (name, h.name, h.label, h.script) == (
        "reload-apache", "reload-apache", f"reload {service}", f"{ctl} configtest\nsystemctl reload {service}")
    assert proxy.validators_for(platform) == {"apache": f"{ctl} configtest"}


def test_backend_handlers_per_app(inv):
    web1 = inv.hosts["web1"]
    [(name, h)] = backends.handlers(web1, DEBIAN).items()
    assert (name, h.name, h.label, h.script) == (
        "restart-provision-app-hello.service", "restart-provision-app-hello.service",
        "restart provision-app-hello.service", "systemctl restart provision-app-hello.service")
    assert backends.validators_for(DEBIAN) == {}


@pytest.mark.parametrize("platform,extra", [(DEBIAN, []), (REDHAT, ["firewalld port 8080/tcp from 10.123.0.10"])])
def test_backend_steps_in_order_and_what_they_notify(inv, platform, extra):
    host, opts = inv.hosts["web1"], Opts(wheels=lambda facts: None)
    prepare = backends.prepare(host, platform, inv, opts)
    switch = backends.switch(host, platform, inv, opts)
    assert [s.label for s in prepare] == [
        f"packages {' '.join(platform.python_packages)}", "directory /opt/provision", "directory /opt/provision/apps",
        "directory /opt/provision/apps/hello", "user app-hello", "file /opt/provision/apps/hello/app.py",
        "file /opt/provision/apps/hello/gunicorn.conf.py", "venv /opt/provision/apps/hello/venv",
        "directory /var/log/provision", "directory /etc/logrotate.d", "logrotate /etc/logrotate.d/provision"]
    assert [s.label for s in switch] == [
        "unit /etc/systemd/system/provision-app-hello.service", "service provision-app-hello.service"] + extra
    steps = backends.resources(host, platform, inv, opts)
    assert [s.label for s in steps] == [s.label for s in prepare + switch]
    restart = ("restart-provision-app-hello.service",)
    assert [s.label for s in steps if s.notify == restart] == [
        "file /opt/provision/apps/hello/app.py", "file /opt/provision/apps/hello/gunicorn.conf.py",
        "venv /opt/provision/apps/hello/venv", "unit /etc/systemd/system/provision-app-hello.service"]
    assert switch[0].after == "systemctl daemon-reload"
    assert switch[1].restart_handler == restart[0]
    user = prepare[4]
    assert (user.name, user.home, user.shell) == ("app-hello", "/opt/provision/apps/hello", platform.nologin_shell)


def test_backends_without_firewalld_opening(inv, tmp_path):
    text = (ROOT / "inventory/lab.yml").read_text().replace("ansible_host: 10.123.0.11",
                                                            "ansible_host: 10.123.0.11\n          firewalld_open_http: false")
    (tmp_path / "inv.yml").write_text(text.replace("../.lab/ssh_config", "ssh_config"))
    other = load(tmp_path / "inv.yml")
    steps = backends.resources(other.hosts["web1"], REDHAT, other, Opts(wheels=lambda facts: None))
    assert not [s for s in steps if s.label.startswith("firewalld")]


def test_modules_with_tls_and_redirect(inv):
    host = inv.hosts["proxy"]
    host.vars.update(tls="self-signed", tls_redirect=True, lbmethod="bybusyness")
    debian = proxy.modules(host, Opts(), DEBIAN)
    assert set(debian) == {"proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "lbmethod_bybusyness",
                           *TLS_MODULES, *REDIRECT_MODULES}
    redhat = proxy.modules(host, Opts(), REDHAT)
    assert set(debian) - set(redhat) == {"ssl"}        # mod_ssl's package loads it on RedHat
    host.vars["tls_redirect"] = False
    assert "rewrite" not in proxy.modules(host, Opts(), DEBIAN)


def test_setting_prefers_the_runs_mode_then_the_inventory_then_the_default(inv):
    host = inv.hosts["proxy"]
    assert proxy.setting(host, Opts(), "proxy_mode") == "balancer"
    assert proxy.setting(host, Opts(mode="single"), "proxy_mode") == "single"
    host.vars["lbmethod"] = "bytraffic"
    assert proxy.setting(host, Opts(mode="single"), "lbmethod") == "bytraffic"
    assert proxy.setting(host, Opts(), "balancer_timeout") == 30


def test_tls_without_prepared_material_is_an_error(inv):
    host = inv.hosts["proxy"]
    host.vars["tls"] = "self-signed"
    with pytest.raises(proxy.ProxyConfigError, match="tls: self-signed: no certificate prepared for this host"):
        proxy.material(host, Opts())


def test_no_backend_apps_is_an_error(inv):
    for b in inv.group("backends"):
        b.vars["apps"] = []
    with pytest.raises(proxy.ProxyConfigError, match="group 'backends' has no apps to proxy to"):
        proxy.routes(inv.hosts["proxy"], DEBIAN, inv, Opts())


CERT = "/etc/apache2/provision/tls/proxy.crt"


@pytest.mark.parametrize("modules,files,script,reason", [
    (set(), {}, "", "not enabled"),
    ({"ssl"}, {}, "", "enabled, but not by provision: left alone"),
    ({"ssl"}, {CERT: FileState("file", "644", "root", "root", "x")}, "a2dismod -q ssl", "tls is off"),
])
def test_debian_ssl_module_off_only_when_we_enabled_it(modules, files, script, reason):
    step = proxy.TlsModuleOff(CERT, notify=("reload-apache",))
    assert step.request().paths == {CERT}
    change = step.plan(Facts(os={"ID": "debian"}, platform=DEBIAN, apache_modules=modules, files=files))
    assert (change.label, change.script, change.reason) == ("apache module ssl off", script, reason)
    assert change.notify == (("reload-apache",) if script else ())


def test_redhat_ssl_conf_off_only_when_it_is_ours():
    ours, off = b"Listen 443 https\n", b"# Listen 443 https\n"
    step = proxy.TlsConfOff("/etc/httpd/conf.d/ssl.conf", ours, off, notify=("reload-apache",), validate="apache")
    theirs = FileState("file", "644", "root", "root", "other")
    mine = FileState("file", "644", "root", "root", hashlib.sha256(ours).hexdigest())
    left = step.plan(Facts(os={}, platform=REDHAT, files={"/etc/httpd/conf.d/ssl.conf": theirs}))
    assert (left.changed, left.reason, left.label) == (False, "not provision's TLS settings: left alone",
                                                       "tls off /etc/httpd/conf.d/ssl.conf")
    changed = step.plan(Facts(os={}, platform=REDHAT, files={"/etc/httpd/conf.d/ssl.conf": mine}))
    assert (changed.new_content, changed.validate, changed.notify, changed.label) == (
        off, "apache", ("reload-apache",), "tls off /etc/httpd/conf.d/ssl.conf")


def test_every_proxy_config_step_is_configtested_and_reloads(inv):
    steps = proxy.resources(inv.hosts["proxy"], DEBIAN, inv, Opts())
    config = [s for s in steps if s.label.startswith(("file", "link", "absent"))]
    assert len(config) >= 5
    assert {(s.notify, s.validate) for s in config} == {(("reload-apache",), "apache")}


@pytest.mark.parametrize("os_release,skip", [
    ({"ID": "centos", "VERSION_ID": "7"}, None),
    ({"ID": "centos", "VERSION_ID": "7.9.2009"}, None),
    ({"ID": "centos", "VERSION_ID": "8"}, "not CentOS 7"),
    ({"ID": "centos"}, "not CentOS 7"),
    ({"ID": "rocky", "VERSION_ID": "7"}, "not CentOS 7"),
])
def test_vault_repo_only_on_centos7(inv, os_release, skip):
    [repo] = [s for s in proxy.resources(inv.hosts["proxy"], REDHAT, inv, Opts()) if s.label.startswith("yum repo")]
    change = repo.plan(Facts(os=os_release, platform=REDHAT))
    if skip:
        assert (change.changed, change.reason) == (False, skip)
    else:
        assert change.changed and change.script.endswith("yum clean all -q")


@pytest.mark.parametrize("platform,first", [(DEBIAN, ["apache module ssl off"]), (REDHAT, [])])
def test_tls_off_steps(inv, platform, first):
    assert proxy.tls_material(inv.hosts["proxy"], platform, Opts()) == []
    steps = proxy.tls_config(inv.hosts["proxy"], platform, Opts())
    tail = ["tls off /etc/httpd/conf.d/ssl.conf"] if platform.tls_conf else []
    assert [s.label for s in steps] == first + [f"absent {platform.tls_dir}/proxy.crt",
                                                f"absent {platform.tls_dir}/proxy.key"] + tail
    assert {s.notify for s in steps} == {("reload-apache",)}
    assert [s.validate for s in steps if not s.label.startswith("apache module")] == ["apache"] * (2 + len(tail))
    # the running config may use them until the switch: they go with it
    switch = [s.label for s in proxy.switch(inv.hosts["proxy"], platform, inv, Opts())]
    assert set(first + tail) <= set(switch) and f"absent {platform.tls_dir}/proxy.key" in switch


@pytest.mark.parametrize("platform", [DEBIAN, REDHAT])
def test_tls_on_steps(inv, platform):
    from provision.tls import Material
    host = inv.hosts["proxy"]
    host.vars["tls"] = "self-signed"
    opts = Opts(tls={"proxy": Material(b"C", b"K", b"T", 1)})
    directory, key, cert = proxy.tls_material(host, platform, opts)
    assert (directory.label, directory.mode) == (f"directory {platform.tls_dir}", "700")
    assert (key.path, key.content, key.mode, key.notify, key.validate) == (
        f"{platform.tls_dir}/proxy.key", b"K", "600", ("reload-apache",), "apache")
    assert (cert.path, cert.content, cert.mode, cert.notify, cert.validate) == (
        f"{platform.tls_dir}/proxy.crt", b"C", "644", ("reload-apache",), "apache")
    assert (key.label, cert.label) == (f"tls key {platform.tls_dir}/proxy.key", f"tls certificate {platform.tls_dir}/proxy.crt")
    assert [s.path for s in proxy.tls_config(host, platform, opts)] == ([platform.tls_conf] if platform.tls_conf else [])
    # new files the running config does not read: they are prepared while the backends converge
    assert {s.label for s in (directory, key, cert)} <= {s.label for s in proxy.prepare(host, platform, inv, opts)}


def test_redhat_switches_leave_their_steps_out(inv):
    host = inv.hosts["proxy"]
    labels = lambda: [s.label for s in proxy.resources(host, REDHAT, inv, Opts())]   # noqa: E731
    assert {"yum repo /etc/yum.repos.d/CentOS-Base.repo", "selinux boolean httpd_can_network_connect",
            "firewalld service http"} <= set(labels())
    host.vars.update(vault_repos=False, selinux_network_connect=False, firewalld_open_http=False)
    assert not [x for x in labels() if x.startswith(("yum repo", "selinux", "firewalld"))]


@pytest.mark.parametrize("platform", [DEBIAN, REDHAT])
def test_proxy_module_link_and_default_site_steps(inv, platform):
    from provision.resources import Absent, ApacheModuleDropin, ApacheModules, Link
    steps = proxy.resources(inv.hosts["proxy"], platform, inv, Opts())
    mods, *off = [s for s in steps if isinstance(s, (ApacheModules, ApacheModuleDropin))]
    assert mods.notify == ("reload-apache",)
    if platform is DEBIAN:
        assert isinstance(mods, ApacheModules) and mods.names == ("proxy", "proxy_http", "proxy_balancer",
                                                                  "lbmethod_byrequests", "headers")
        # enabled while preparing; the ones no longer needed go off with the switch
        assert (mods.enable, mods.disable) == (True, False)
        [off] = off
        assert (off.enable, off.disable, off.optional) == (False, True, proxy.OPTIONAL_MODULES)
        assert mods.label in [s.label for s in proxy.prepare(inv.hosts["proxy"], platform, inv, Opts())]
        assert off.label in [s.label for s in proxy.switch(inv.hosts["proxy"], platform, inv, Opts())]
        [link] = [s for s in steps if isinstance(s, Link)]
        assert (link.path, link.target, link.notify, link.validate) == (
            "/etc/apache2/sites-enabled/provision-proxy.conf", "../sites-available/provision-proxy.conf",
            ("reload-apache",), "apache")
        [default] = [s for s in steps if isinstance(s, Absent) and "000-default" in s.path]
        assert (default.path, default.installed_by, default.notify, default.validate) == (
            "/etc/apache2/sites-enabled/000-default.conf", "apache2", ("reload-apache",), "apache")
    else:
        assert off == []
        assert (mods.path, mods.package, mods.validate) == (platform.module_dropin, "httpd", "apache")
        [selinux] = [s for s in steps if s.label.startswith("selinux")]
        assert (selinux.name, selinux.value) == ("httpd_can_network_connect", True)


def test_tls_on_brings_its_modules_and_https_port(inv):
    from provision.tls import Material
    host = inv.hosts["proxy"]
    host.vars["tls"] = "self-signed"
    opts = Opts(tls={"proxy": Material(b"C", b"K", b"T", 1)})
    debian = [s for s in proxy.resources(host, DEBIAN, inv, opts) if s.label.startswith("apache modules")]
    assert set(debian[0].names) >= {"ssl", "socache_shmcb", "headers"}
    redhat = proxy.resources(host, REDHAT, inv, opts)
    labels = [s.label for s in redhat]
    assert "firewalld service https" in labels and "packages mod_ssl" in labels
    [dropin] = [s for s in redhat if s.label.startswith("apache modules")]
    assert "ssl" not in dropin.modules and "headers" in dropin.modules


def tls_host(inv, **extra):
    from provision.tls import Material
    host = inv.hosts["proxy"]
    host.vars.update(tls="self-signed", **extra)
    chain = b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n" * 2
    return host, Opts(tls={"proxy": Material(chain, b"K", b"T", 1)})


@pytest.mark.parametrize("platform,chain_line", [(DEBIAN, False), (REDHAT, True)])
def test_tls_vhost_lines(inv, platform, chain_line):
    host, opts = tls_host(inv, tls_hsts=True)
    lines = [x.strip() for x in proxy.vhost(host, platform, opts).splitlines()]
    cert, key = proxy.tls_paths(platform)
    assert f"SSLCertificateFile {cert}" in lines and f"SSLCertificateKeyFile {key}" in lines
    assert (f"SSLCertificateChainFile {cert}" in lines) is chain_line       # httpd 2.4.6 reads chains there only
    assert f"SSLCipherSuite {proxy.CIPHERS}" in lines
    assert 'Header always set Strict-Transport-Security "max-age=63072000"' in lines
    assert lines.count(f"Include {platform.routes_path}") == 2
    assert ["RequestHeader set X-Forwarded-Proto http", "RequestHeader set X-Forwarded-Proto https"] == [
        x for x in lines if x.startswith("RequestHeader")]


def test_tls_redirect_keeps_the_health_path(inv):
    host, opts = tls_host(inv, tls_redirect=True, health_path="/up.json")
    lines = [x.strip() for x in proxy.vhost(host, DEBIAN, opts).splitlines()]
    assert "RewriteCond %{REQUEST_URI} !^/up\\.json(/|$)" in lines
    assert "RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [R=301,L]" in lines
    host.vars["tls_redirect"] = False
    assert "RewriteEngine On" not in proxy.vhost(host, DEBIAN, opts)


def test_material_is_the_prepared_one(inv):
    host, opts = tls_host(inv)
    assert proxy.material(host, opts) is opts.tls["proxy"]
    host.vars["tls"] = "off"
    assert proxy.material(host, opts) is None


def test_extra_directives_come_before_every_route_and_the_error_names_the_inventory(inv):
    inv.hosts["proxy"].vars["proxy_extra_directives"] = ["ProxyTimeout 60", "ProxyBadHeader Ignore"]
    [text] = proxy.routes(inv.hosts["proxy"], DEBIAN, inv, Opts()).values()
    lines = text.splitlines()
    at = lines.index("ProxyTimeout 60")
    assert lines[at + 1] == "ProxyBadHeader Ignore" and at < lines.index("ProxyPass /balancer-manager !")
    assert "proxy_extra_directives" not in "".join(proxy.routes(inv.hosts["web1"], DEBIAN, inv, Opts()).values())
    for b in inv.group("backends"):
        b.vars["apps"] = []
    with pytest.raises(proxy.ProxyConfigError) as err:
        proxy.routes(inv.hosts["proxy"], DEBIAN, inv, Opts())
    assert str(err.value) == f"{inv.path}: group 'backends' has no apps to proxy to"


def test_material_missing_message_in_full(inv):
    host = inv.hosts["proxy"]
    host.vars["tls"] = "provided"
    with pytest.raises(proxy.ProxyConfigError) as err:
        proxy.material(host, Opts(tls={}))
    assert str(err.value) == ("tls: provided: no certificate prepared for this host "
                              "(provision.tls.prepare runs before planning)")




def test_backend_venv_uses_the_runs_wheels_or_the_hosts_own(inv, monkeypatch):
    given = object()
    [venv] = [s for s in backends.resources(inv.hosts["web1"], DEBIAN, inv, Opts(wheels=given))
              if s.label.startswith("venv")]
    assert venv.wheels is given
    seen = []
    monkeypatch.setattr(backends, "wheelhouse", lambda python, arch: seen.append((python, arch)) or "house")
    [venv] = [s for s in backends.resources(inv.hosts["web1"], DEBIAN, inv, Opts()) if s.label.startswith("venv")]
    assert venv.wheels(Facts(os={}, platform=DEBIAN, python=(3, 11, 2), arch="x86_64")) == "house"
    assert seen == [((3, 11, 2), "x86_64")]
    # no python3 yet (the same run installs it): the one the release ships
    assert venv.wheels(Facts(os={"ID": "debian", "VERSION_ID": "13"}, platform=DEBIAN, arch="x86_64")) == "house"
    assert seen[-1] == ((3, 13, 5), "x86_64")
