"""The CentOS 7 proxy's full Apache config tree (stock httpd.conf, conf.modules.d/, conf.d/ from the
httpd-2.4.6-45.el7.centos sources, plus the files the proxy role writes) passes a real `apache2 -t`
on the lab's proxy, with the paths mapped for Debian's binary (tests/support/apache_tree.py)."""
import io
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from provision import tls
from tests.support import apache_tree
from provision.engine import Options
from provision.inventory import load
from provision.platforms import PROXY_MODULES, SUPPORT_MODULES

from conftest import ssh

pytestmark = pytest.mark.lab

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "centos7"
VHOST = "/etc/httpd/conf.d/provision-proxy.conf"
MUST_LOAD = [mid for mid, _ in PROXY_MODULES.values()] + [mid for mid, _ in SUPPORT_MODULES.values()]


def centos7_tree(lab, mode, inventory_path=None, material=None):
    """material: the host's certificate as prepared before planning (default: tls.prepare's)."""
    inventory = load(inventory_path or lab.inventory)
    host, options = inventory.hosts["proxy"], Options(mode=mode)
    options.tls = tls.prepare(inventory, [host]) if material is None else material
    files = apache_tree.stock_files(apache_tree.installed_packages(host, inventory, options))
    base = {path: (FIX / name).read_bytes() for path, name in files.items()}
    return apache_tree.redhat_tree(host, inventory, options, base)


def push(lab, root, tree):
    """Unpack the mapped tree under root on the proxy (a tar through ssh's stdin)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in tree.items():
            info = tarfile.TarInfo(path[len(root) + 1:])
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    command = ["ssh", "-F", str(lab.ssh_config), "-o", "BatchMode=yes", "proxy", f"tar -x -C {root}"]
    proc = subprocess.run(command, input=buf.getvalue(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()


@pytest.fixture
def proxy_build(deployed):
    """The proxy's Apache build, and a temp folder there, removed afterwards."""
    modules = set(ssh(deployed, "proxy", "ls -1 /usr/lib/apache2/modules").stdout.split())
    builtin = set(ssh(deployed, "proxy", "apache2 -l").stdout.split()[3:])   # after "Compiled in modules:"
    version = ssh(deployed, "proxy", "apache2 -v").stdout.splitlines()[0]
    root = ssh(deployed, "proxy", "mktemp -d /tmp/redhat-tree.XXXXXX").stdout.strip()
    assert root.startswith("/tmp/redhat-tree.")
    print(f"\n{version}; {len(modules)} module files; built in: {' '.join(sorted(builtin))}")
    yield deployed, root, modules, builtin
    ssh(deployed, "proxy", f"rm -rf {root}")


def check(lab, root, tree, modules, builtin, *flags):
    mapped = apache_tree.map_for_debian_binary(tree, root, modules, builtin)
    ssh(lab, "proxy", f"rm -rf {root}/* && mkdir -p {root}")
    push(lab, root, mapped)
    proc = ssh(lab, "proxy", f"apache2 -t {' '.join(flags)} -f {root}/conf/httpd.conf -d {root} 2>&1",
               check=False)
    return mapped, proc


@pytest.mark.parametrize("mode", ["balancer", "single"])
def test_centos7_tree_passes_apache2_t(proxy_build, mode):
    lab, root, modules, builtin = proxy_build
    tree = centos7_tree(lab, mode)
    mapped, proc = check(lab, root, tree, modules, builtin)
    missing = apache_tree.commented(mapped)
    print(f"{mode}: {len(mapped)} files; LoadModule lines commented out as not in the Debian build: "
          f"{len(missing)} {missing}; built in: {apache_tree.commented(mapped, apache_tree.BUILT_IN)}")
    print(proc.stdout)
    assert proc.returncode == 0 and "Syntax OK" in proc.stdout, proc.stdout
    assert not set(MUST_LOAD) & set(missing)
    # The binary really loaded them from this tree.
    _, dump = check(lab, root, tree, modules, builtin, "-D", "DUMP_MODULES")
    assert dump.returncode == 0, dump.stdout
    loaded = {line.split()[0] for line in dump.stdout.splitlines() if line.startswith(" ")}
    assert set(MUST_LOAD) <= loaded, dump.stdout
    # The vhost and the routes it includes are in the checked tree, unchanged but for paths.
    vhost = mapped[f"{root}/conf.d/provision-proxy.conf"].decode()
    assert vhost == tree[VHOST].decode().replace("/etc/httpd", root).replace("/var/log/httpd", f"{root}/logs")
    routes = mapped[f"{root}/provision/proxy-routes.inc"].decode()
    assert ("balancer://mycluster" in routes) == (mode == "balancer")


def test_broken_vhost_fails_apache2_t(proxy_build):
    lab, root, modules, builtin = proxy_build
    tree = centos7_tree(lab, "balancer")
    vhost = tree[VHOST].decode()
    assert "</VirtualHost>" in vhost
    broken = "    ProxySet balancer://mycluster lbmethod=nosuchmethod\n</VirtualHost>"
    tree[VHOST] = vhost.replace("</VirtualHost>", broken).encode()
    _, proc = check(lab, root, tree, modules, builtin)
    print(proc.stdout)
    assert proc.returncode != 0, proc.stdout
    assert "Syntax OK" not in proc.stdout
    assert f"{root}/conf.d/provision-proxy.conf" in proc.stdout


def test_centos7_tls_tree_passes_apache2_t(proxy_build):
    """tls: self-signed: mod_ssl's files, our ssl.conf (its _default_:443 vhost gone), the key and
    certificate, and both vhosts including the one routes file."""
    lab, root, modules, builtin = proxy_build
    tree = centos7_tree(lab, "balancer", Path(__file__).resolve().parents[2] / "inventory/lab-tls.yml")
    assert "/etc/httpd/conf.modules.d/00-ssl.conf" in tree and "/etc/httpd/conf.d/ssl.conf" in tree
    assert {"/etc/httpd/provision/tls/proxy.crt", "/etc/httpd/provision/tls/proxy.key"} <= set(tree)
    mapped, proc = check(lab, root, tree, modules, builtin)
    print(proc.stdout)
    assert proc.returncode == 0 and "Syntax OK" in proc.stdout, proc.stdout
    _, dump = check(lab, root, tree, modules, builtin, "-D", "DUMP_MODULES")
    loaded = {line.split()[0] for line in dump.stdout.splitlines() if line.startswith(" ")}
    assert {"ssl_module", "headers_module", "socache_shmcb_module"} <= loaded, dump.stdout
    # exactly one :443 vhost in the checked tree, the routes written once
    _, vhosts = check(lab, root, tree, modules, builtin, "-D", "DUMP_VHOSTS")
    print(vhosts.stdout)
    assert len(re.findall(r"^\*:443\s", vhosts.stdout, re.M)) == 1, vhosts.stdout
    text = "".join(c.decode() for c in mapped.values())
    assert text.count("ProxyPass / balancer://mycluster/") == 1
    # a broken certificate path fails the check
    vhost = tree[VHOST].decode().replace("proxy.crt", "missing.crt")
    _, broken = check(lab, root, {**tree, VHOST: vhost.encode()}, modules, builtin)
    assert broken.returncode != 0 and "missing.crt" in broken.stdout, broken.stdout


def test_centos7_sites_tree_passes_apache2_t(proxy_build, tmp_path):
    """The long form (inventory/sites.yml, plus a plain exclusion): two sites, each with its routes
    file; every route kind (pool paths, an exclusion served from a folder, a plain exclusion, a
    WebSocket path), a sticky pool, per-site logs, the global name."""
    lab, root, modules, builtin = proxy_build
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "inventory/sites.yml").read_text())
    data["all"]["children"]["proxies"]["vars"]["sites"][0]["routes"].append({"path": "/private", "exclude": True})
    (tmp_path / "sites.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    tree = centos7_tree(lab, None, tmp_path / "sites.yml")
    app, api = "/etc/httpd/provision/site-app.example.test.inc", "/etc/httpd/provision/site-api.example.test.inc"
    assert {app, api} <= set(tree) and "/etc/httpd/provision/proxy-routes.inc" not in tree
    routes = tree[app].decode()
    for want in ("ProxyPass /private !", "ProxyPass /static !", "Alias /static /var/www/provision-static", "ProxyPass /api balancer://api/api",
                 "ProxyPass / balancer://web/", "stickysession=ROUTEID", "Header add Set-Cookie \"ROUTEID=",
                 "failonstatus=502,503 failontimeout=On",
                 # WebSocket on httpd 2.4.6: ws:// members through mod_proxy_wstunnel, no upgrade=
                 "<Proxy balancer://web.ws>", "BalancerMember ws://10.123.0.11:8080 route=web1-hello",
                 "ProxyPass /ws balancer://web.ws/ws"):
        assert want in routes, want
    assert " upgrade=websocket" not in routes      # the 2.4.47+ member parameter
    mapped, proc = check(lab, root, tree, modules, builtin)
    print(proc.stdout)
    assert proc.returncode == 0 and "Syntax OK" in proc.stdout, proc.stdout
    assert "AH00558" not in proc.stdout
    _, vhosts = check(lab, root, tree, modules, builtin, "-D", "DUMP_VHOSTS")
    print(vhosts.stdout)
    assert "app.example.test" in vhosts.stdout and "api.example.test" in vhosts.stdout
    assert "alias www.app.example.test" in vhosts.stdout
    _, dump = check(lab, root, tree, modules, builtin, "-D", "DUMP_MODULES")
    loaded = {line.split()[0] for line in dump.stdout.splitlines() if line.startswith(" ")}
    assert {"headers_module", "alias_module", "proxy_balancer_module", "proxy_wstunnel_module"} <= loaded, dump.stdout


def acme_chain(folder):
    """A certificate as an ACME CA issues it, for the proxy's names: leaf then issuer, and its key."""
    ca, cert, key = tls.local_server_certificate(folder, "app.example.test", "10.123.0.10")
    chain = cert.read_bytes() + ca.read_bytes()
    return tls.Material(chain, key.read_bytes(), ca.read_bytes(), 1)


@pytest.mark.parametrize("issued", [True, False], ids=["certificate-issued", "before-the-first"])
def test_centos7_acme_tree_passes_apache2_t(proxy_build, tmp_path, issued):
    """tls: acme on CentOS 7 takes the control route (httpd 2.4.6 has no mod_md), here with
    tls_redirect: every :80 vhost serves the HTTP-01 folder before the redirect and the proxying;
    with the certificate issued, the :443 vhost serves the control route's files (the chain by
    SSLCertificateChainFile, as 2.4.6 needs); before the first one, :80 only (no redirect to an
    https that is not there yet), mod_ssl not installed."""
    lab, root, modules, builtin = proxy_build
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "inventory/lab-acme.yml").read_text())
    data["all"]["children"]["proxies"]["vars"]["tls_redirect"] = True
    (tmp_path / "acme.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    material = {"proxy": acme_chain(tmp_path / "issued")} if issued else {}
    tree = centos7_tree(lab, None, tmp_path / "acme.yml", material)
    vhost = tree[VHOST].decode()
    folder = "/var/www/provision-acme/.well-known/acme-challenge"
    plain = vhost.split("<VirtualHost *:80>", 1)[1].split("</VirtualHost>", 1)[0]
    for want in (f"Alias /.well-known/acme-challenge/ {folder}/", f"<Directory {folder}>",
                 "ProxyPass /.well-known/acme-challenge/ !"):
        assert want in plain, want
    # tls_redirect: the challenges are not redirected; before the first certificate nothing is
    assert ("RewriteCond %{REQUEST_URI} !^/\\.well-known/acme-challenge/" in plain) == issued
    assert ("RewriteRule ^ https://" in plain) == issued
    assert plain.index("ProxyPass /.well-known/acme-challenge/ !") < plain.index("Include /etc/httpd/provision/")
    assert "MDomain" not in vhost
    assert ("/etc/httpd/provision/tls/proxy.crt" in tree) == issued and ("/etc/httpd/conf.d/ssl.conf" in tree) == issued
    if issued:
        assert "SSLCertificateFile /etc/httpd/provision/tls/proxy.crt" in vhost
        assert "SSLCertificateChainFile /etc/httpd/provision/tls/proxy.crt" in vhost
    mapped, proc = check(lab, root, tree, modules, builtin)
    print(proc.stdout)
    assert proc.returncode == 0 and "Syntax OK" in proc.stdout, proc.stdout
    _, vhosts = check(lab, root, tree, modules, builtin, "-D", "DUMP_VHOSTS")
    print(vhosts.stdout)
    assert re.search(r"^\*:80\s+app\.example\.test ", vhosts.stdout, re.M), vhosts.stdout
    assert bool(re.search(r"^\*:443\s+app\.example\.test ", vhosts.stdout, re.M)) == issued, vhosts.stdout
    _, dump = check(lab, root, tree, modules, builtin, "-D", "DUMP_MODULES")
    loaded = {line.split()[0] for line in dump.stdout.splitlines() if line.startswith(" ")}
    assert {"alias_module", "rewrite_module"} <= loaded and ("ssl_module" in loaded) == issued, dump.stdout
