"""Fact parsers on real captured outputs (sources in tests/fixtures/SOURCES.md)."""
from pathlib import Path

import pytest

from provision import facts
from provision.facts import FactRequest, UnsupportedHost, parse_os_release, platform_for

FIX = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.mark.parametrize("fixture,family,os_id,version", [
    ("centos7/os-release", "redhat", "centos", "7"),
    ("rhel7/os-release", "redhat", "rhel", "7.7"),
    ("rocky8/os-release", "redhat", "rocky", "8.9"),
    ("rocky9/os-release", "redhat", "rocky", "9.3"),
    ("alma9/os-release", "redhat", "almalinux", "9.4"),
    ("debian12/os-release", "debian", "debian", "12"),
    ("ubuntu2204/os-release", "debian", "ubuntu", "22.04"),
    ("ubuntu2404/os-release", "debian", "ubuntu", "24.04"),
])
def test_os_family_from_real_os_release(fixture, family, os_id, version):
    osr = parse_os_release((FIX / fixture).read_text())
    assert osr["ID"] == os_id
    assert osr["VERSION_ID"] == version
    assert platform_for(osr).family == family


@pytest.mark.parametrize("text,why", [
    ("", "no /etc/os-release"),
    ('ID=arch\nPRETTY_NAME="Arch Linux"\n', "unsupported OS 'Arch Linux'"),
    ('ID=centos\nVERSION_ID="6"\nPRETTY_NAME="CentOS 6"\n', "unsupported release 'CentOS 6'"),
])
def test_unsupported_os(text, why):
    with pytest.raises(UnsupportedHost, match=why):
        platform_for(parse_os_release(text))


def test_apache_modules_from_rhel7_httpd_M_with_warning_first():
    text = (FIX / "rhel7/httpd-M.excerpt.txt").read_text()
    assert text.startswith("AH00558")       # a warning line comes first
    mods = facts.parse_apache_modules(text)
    # The captured excerpt lists 13 modules (the proxy ones were cut by its authors).
    assert len(mods) == 13
    assert {"so_module", "http_module", "access_compat_module"} <= mods
    assert not any("AH00558" in m for m in mods)


def test_apache_modules_missing_one():
    text = "AH00558: warning\nLoaded Modules:\n core_module (static)\n proxy_module (shared)\n"
    assert facts.parse_apache_modules(text) == {"core_module", "proxy_module"}


def test_loadmodules_from_centos7_conf_modules_d():
    lines = []
    for conf in sorted((FIX / "centos7/conf.modules.d").glob("*.conf")):
        for line in conf.read_text().splitlines():
            if line.lstrip().startswith("LoadModule"):
                lines.append(f"/etc/httpd/conf.modules.d/{conf.name}:{line}")
    loaded = facts.parse_loadmodules(lines)
    for mid in ("proxy_module", "proxy_http_module", "proxy_balancer_module", "lbmethod_byrequests_module"):
        assert loaded[mid] == "/etc/httpd/conf.modules.d/00-proxy.conf"
    assert loaded["slotmem_shm_module"] == "/etc/httpd/conf.modules.d/00-base.conf"
    assert "#LoadModule" not in str(loaded)


def test_selinux_from_rhel_getsebool_output():
    lines = ["Enforcing"] + (FIX / "rhel/getsebool-a.excerpt.txt").read_text().splitlines()
    mode, bools = facts.parse_selinux(lines)
    assert mode == "Enforcing"
    assert bools["virt_sandbox_use_all_caps"] is True
    assert bools["varnishd_connect_any"] is False


def test_units_from_rhel_systemctl_show():
    text = (FIX / "rhel/systemctl-show.excerpt.txt").read_text()
    units = facts.parse_units(text, ["httpd.service"])
    assert units["httpd.service"]["MainPID"] == "2810"


def test_units_several_blocks_and_not_found():
    text = ("Id=apache2.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\nMainPID=42\n\n"
            "Id=nope.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\nMainPID=0\n")
    units = facts.parse_units(text)
    assert units["apache2.service"]["MainPID"] == "42"
    assert units["nope.service"]["LoadState"] == "not-found"


def test_packages_dpkg_and_rpm():
    dpkg = ["apache2\tinstalled\t2.4.62-1~deb12u2", "curl\tconfig-files\t7.88.1", "python3\tnot-installed\t"]
    assert facts.parse_packages(dpkg) == {"apache2": "2.4.62-1~deb12u2"}
    rpm = ["httpd\tinstalled\t2.4.6-97.el7.centos.5", "package mod_ssl is not installed"]
    assert facts.parse_packages(rpm) == {"httpd": "2.4.6-97.el7.centos.5"}


def test_files_link_directory_absent():
    lines = ["/etc/a file 644 root root " + "a" * 64, "/etc/d directory 755 root root -",
             "/etc/l link - - - - ../sites-available/x.conf", "/etc/n absent"]
    parsed = facts.parse_files(lines)
    assert parsed["/etc/a"].sha256 == "a" * 64 and parsed["/etc/a"].mode == "644"
    assert parsed["/etc/d"].kind == "directory"
    assert parsed["/etc/l"].target == "../sites-available/x.conf"
    assert parsed["/etc/n"].kind == "absent"


def test_firewalld_and_python():
    assert facts.parse_firewalld(["running", "dhcpv6-client ssh", "ports 8080/tcp"]) == \
        (True, {"dhcpv6-client", "ssh"}, {"8080/tcp"})
    assert facts.parse_firewalld(["running", "ssh", "ports "]) == (True, {"ssh"}, set())
    assert facts.parse_firewalld([]) == (False, set(), set())
    assert facts.parse_python_version("Python 3.6.8") == (3, 6, 8)
    assert facts.parse_python_version("") is None


def test_debian_mods_enabled_listing():
    listing = ["access_compat.load", "alias.conf", "alias.load", "proxy.conf", "proxy.load", "slotmem_shm.load"]
    assert facts.parse_mods_enabled(listing) == {"access_compat", "alias", "proxy", "slotmem_shm"}


def test_script_asks_for_everything_in_one_go_and_round_trips():
    req = FactRequest(packages={"apache2"}, units={"apache2.service"}, paths={"/etc/x"}, users={"app-x"})
    script = facts.script(req)
    for needle in ("os-release", "dpkg-query", "rpm -q", "systemctl show", "sha256sum", "getent passwd",
                   "getenforce", "firewall-cmd", facts.PENDING_DIR):
        assert needle in script
    output = ("@@@ os-release\n" + (FIX / "debian12/os-release").read_text() +
              "@@@ arch\nx86_64\n@@@ python\nPython 3.11.2\n@@@ packages\napache2\tinstalled\t2.4\n"
              "@@@ units\nId=apache2.service\nActiveState=active\n\n@@@ files\n/etc/x absent\n"
              "@@@ users\napp-x\n@@@ pending\nreload-apache\n")
    f = facts.parse(output)
    assert f.family == "debian" and f.python == (3, 11, 2) and f.arch == "x86_64"
    assert f.packages == {"apache2": "2.4"} and f.users == {"app-x"}
    assert f.unit("apache2.service")["ActiveState"] == "active"
    assert f.file("/etc/x").kind == "absent" and f.pending == {"reload-apache"}


def test_debian12_apache2ctl_M_captured_on_the_lab():
    mods = facts.parse_apache_modules((FIX / "debian12/apache2ctl-M.txt").read_text())
    assert {"proxy_module", "proxy_http_module", "proxy_balancer_module", "lbmethod_byrequests_module",
            "slotmem_shm_module", "core_module"} <= mods


def test_debian12_systemctl_show_and_dpkg_query_captured_on_the_lab():
    units = facts.parse_units((FIX / "debian12/systemctl-show.txt").read_text())
    assert units["apache2.service"]["ActiveState"] == "active" and units["apache2.service"]["MainPID"] == "970"
    assert units["nope.service"]["LoadState"] == "not-found"
    lines = (FIX / "debian12/dpkg-query.txt").read_text().splitlines()
    assert facts.parse_packages(lines) == {"apache2": "2.4.71-1~deb12u1", "curl": "7.88.1-10+deb12u15"}


def test_whole_facts_output_of_a_deployed_debian12_proxy():
    f = facts.parse((FIX / "debian12/facts-proxy.txt").read_text())
    assert f.family == "debian" and f.os["VERSION_ID"] == "12" and f.arch == "x86_64"
    assert "apache2" in f.packages and f.unit("apache2.service")["UnitFileState"] == "enabled"
    assert {"proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests"} <= f.apache_modules
    assert f.file("/etc/apache2/sites-enabled/provision-proxy.conf").target == \
        "../sites-available/provision-proxy.conf"
    assert f.file("/etc/apache2/sites-enabled/000-default.conf").kind == "absent"
    assert f.file("/etc/apache2/provision/proxy-routes.inc").mode == "644"
    assert f.selinux is None and not f.firewalld and f.pending == set()
