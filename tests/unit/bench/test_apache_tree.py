"""The CentOS 7 proxy's config tree and its mapping for Debian's apache2 (tests/support/apache_tree.py),
built from the httpd-2.4.6-45.el7.centos files in tests/fixtures/centos7."""
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import apache_tree
from provision.inventory import load
from provision.resources import Absent, File

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "centos7"
ROOT = Path(__file__).resolve().parents[3]
VHOST = "/etc/httpd/conf.d/provision-proxy.conf"
ROUTES = "/etc/httpd/provision/proxy-routes.inc"
WELCOME = "/etc/httpd/conf.d/welcome.conf"
TMP = "/tmp/redhat-tree.abc"


@dataclass
class Opts:
    mode: str | None = None


@pytest.fixture
def inventory():
    return load(ROOT / "inventory/tutorial.yml")


def stock(packages=("httpd",)):
    return {path: (FIX / name).read_bytes() for path, name in apache_tree.stock_files(packages).items()}


def tree_for(inventory, mode="balancer"):
    return apache_tree.redhat_tree(inventory.hosts["proxy"], inventory, Opts(mode), stock())


def so_names(tree):
    return {m.group(1) for content in tree.values()
            for m in re.finditer(r"^\s*LoadModule\s+\S+\s+modules/(\S+)", content.decode(), re.M)}


def test_every_stock_file_is_a_fixture():
    for files in apache_tree.STOCK_FILES.values():
        for name in files.values():
            assert (FIX / name).is_file(), name


def test_the_role_installs_httpd_only(inventory):
    assert apache_tree.installed_packages(inventory.hosts["proxy"], inventory, Opts()) == ("httpd", "curl")
    assert "/etc/httpd/conf.modules.d/00-ssl.conf" not in apache_tree.stock_files(("httpd", "curl"))
    assert "/etc/httpd/conf.modules.d/00-ssl.conf" in apache_tree.stock_files(("httpd", "mod_ssl"))


def test_tree_holds_stock_files_and_the_role_files(inventory):
    tree = tree_for(inventory)
    assert tree["/etc/httpd/conf/httpd.conf"] == (FIX / "httpd.conf").read_bytes()
    proxy_conf = "conf.modules.d/00-proxy.conf"
    assert tree[f"/etc/httpd/{proxy_conf}"] == (FIX / proxy_conf).read_bytes()
    vhost = tree[VHOST].decode()
    assert "<VirtualHost *:80>" in vhost and f"Include {ROUTES}" in vhost
    assert "balancer://mycluster" in tree[ROUTES].decode()
    # welcome.conf is the role's blank one, not the stock page.
    assert tree[WELCOME] == (ROOT / "files/welcome-disabled.conf").read_bytes()
    assert b"Alias" not in tree[WELCOME] and b"Alias" in (FIX / "conf.d/welcome.conf").read_bytes()
    # Only files under /etc/httpd: the yum repo file is not part of Apache's tree.
    assert all(p.startswith("/etc/httpd/") for p in tree)


def test_single_mode_routes(inventory):
    routes = tree_for(inventory, "single")[ROUTES].decode()
    assert "balancer://" not in routes and re.search(r"^ProxyPass / http://", routes, re.M)


def test_any_role_file_under_etc_httpd_joins_the_tree(inventory, monkeypatch):
    real = apache_tree.proxy.resources

    def with_tls(*args):
        return real(*args) + [File("/etc/httpd/conf.d/ssl.conf", "Listen 443 https\n"),
                              File("/etc/pki/tls/certs/proxy.crt", "cert"),
                              Absent("/etc/httpd/conf.modules.d/00-lua.conf")]
    monkeypatch.setattr(apache_tree.proxy, "resources", with_tls)
    tree = tree_for(inventory)
    assert tree["/etc/httpd/conf.d/ssl.conf"] == b"Listen 443 https\n"
    assert "/etc/pki/tls/certs/proxy.crt" not in tree
    assert "/etc/httpd/conf.modules.d/00-lua.conf" not in tree


def test_tree_needs_httpd_conf(inventory):
    with pytest.raises(ValueError, match="httpd.conf"):
        apache_tree.redhat_tree(inventory.hosts["proxy"], inventory, Opts(), {})


def test_mapping_moves_every_path_under_root(inventory):
    tree = tree_for(inventory)
    mapped = apache_tree.map_for_debian_binary(tree, TMP + "/", so_names(tree))
    assert len(mapped) >= len(tree) > 0
    assert all(p.startswith(TMP + "/") for p in mapped)
    directives = [line for content in mapped.values() for line in content.decode().splitlines()
                  if not line.lstrip().startswith("#")]
    assert not [line for line in directives if "/etc/httpd" in line or "/var/www" in line]
    conf = mapped[f"{TMP}/conf/httpd.conf"].decode()
    assert f'ServerRoot "{TMP}"' in conf and f'DocumentRoot "{TMP}/www/html"' in conf
    assert re.search(r"^User www-data$", conf, re.M) and re.search(r"^Group www-data$", conf, re.M)
    assert not re.search(r"^(User|Group) apache", conf, re.M)
    # Relative paths stay relative to the new ServerRoot.
    assert 'ErrorLog "logs/error_log"' in conf and "IncludeOptional conf.d/*.conf" in conf
    for d in apache_tree.DIRS:
        assert mapped[f"{TMP}/{d}/.keep"] == b""


def test_vhost_and_routes_change_only_in_paths(inventory):
    tree = tree_for(inventory)
    mapped = apache_tree.map_for_debian_binary(tree, TMP, so_names(tree))
    want = tree[VHOST].replace(b"/etc/httpd", TMP.encode()).replace(b"/var/log/httpd", f"{TMP}/logs".encode())
    assert mapped[f"{TMP}/conf.d/provision-proxy.conf"] == want
    assert mapped[f"{TMP}/provision/proxy-routes.inc"] == tree[ROUTES].replace(b"/etc/httpd", TMP.encode())


def test_mapping_comments_out_only_missing_modules(inventory):
    tree = tree_for(inventory)
    available = so_names(tree) - {"mod_systemd.so", "mod_unixd.so"}
    mapped = apache_tree.map_for_debian_binary(tree, TMP, available, {"core.c", "mod_unixd.c"})
    assert apache_tree.commented(mapped) == ["systemd_module"]
    assert apache_tree.commented(mapped, apache_tree.BUILT_IN) == ["unixd_module"]
    proxy_conf = mapped[f"{TMP}/conf.modules.d/00-proxy.conf"].decode()
    assert "LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so\n" in proxy_conf
    assert "modules/mod_" not in proxy_conf.replace("/usr/lib/apache2/modules/mod_", "")
    # Lines the package already comments out stay as they are; indentation inside <IfModule> stays.
    base = mapped[f"{TMP}/conf.modules.d/00-base.conf"].decode()
    assert "#LoadModule buffer_module modules/mod_buffer.so" in base
    assert "   LoadModule cgi_module /usr/lib/apache2/modules/mod_cgi.so" in \
        mapped[f"{TMP}/conf.modules.d/01-cgi.conf"].decode()
    assert mapped[f"{TMP}/conf.modules.d/00-systemd.conf"].decode().count(
        "# not in this build: LoadModule systemd_module modules/mod_systemd.so") == 1


def test_a_module_missing_from_the_build_is_counted(inventory):
    tree = tree_for(inventory)
    mapped = apache_tree.map_for_debian_binary(tree, TMP, so_names(tree) - {"mod_proxy_balancer.so"})
    assert "proxy_balancer_module" in apache_tree.commented(mapped)


def test_mapping_leaves_lookalike_paths_alone():
    tree = {"/etc/httpd/conf/httpd.conf": b'ServerRoot "/etc/httpd"\nAlias /x /etc/httpdx/y\n'
                                          b"Include /etc/httpd/conf.d/a.conf\nUser apache2\n"}
    conf = apache_tree.map_for_debian_binary(tree, TMP, set())[f"{TMP}/conf/httpd.conf"].decode()
    assert conf == f'ServerRoot "{TMP}"\nAlias /x /etc/httpdx/y\nInclude {TMP}/conf.d/a.conf\nUser apache2\n'
