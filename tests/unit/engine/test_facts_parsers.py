"""The facts parsers on the edge cases real hosts print: os-release quirks, ID_LIKE, release
checks, systemctl values holding "=", dpkg versions, LoadModule lines with comments."""
import pytest

from provision import facts
from provision.facts import UnsupportedHost


def test_os_release_comments_blanks_quotes_and_equals_signs():
    text = '# PRETTY_NAME="not this"\n\nNAME="Debian GNU/Linux"\nID=debian\nBROKEN="unclosed\n' \
           "SINGLE='x y'\nEMPTY=\nHOME_URL=https://x.test/?a=b\n"
    assert facts.parse_os_release(text) == {"NAME": "Debian GNU/Linux", "ID": "debian", "BROKEN": "unclosed",
                                            "SINGLE": "x y", "EMPTY": "", "HOME_URL": "https://x.test/?a=b"}


@pytest.mark.parametrize("release,family", [
    ({"ID": "linuxmint", "ID_LIKE": "ubuntu debian", "VERSION_ID": "21"}, "debian"),
    ({"ID": "ol", "ID_LIKE": "fedora rhel", "VERSION_ID": "8.9"}, "redhat"),
    ({"ID": "ubuntu", "VERSION_ID": "22.10"}, "debian"),         # same major as 22.04
    ({"ID": "rocky", "VERSION_ID": "9.3"}, "redhat"),
])
def test_family_from_id_or_id_like_and_release_by_major(release, family):
    assert facts.platform_for(release).family == family


@pytest.mark.parametrize("release,message", [
    ({}, "no /etc/os-release (or no ID in it)"),
    ({"ID": "arch"}, "unsupported OS 'arch'"),
    ({"ID": "arch", "PRETTY_NAME": "Arch Linux"}, "unsupported OS 'Arch Linux'"),
    ({"ID": "centos", "VERSION_ID": "8"}, "unsupported release 'centos'"),
    ({"ID": "centos"}, "unsupported release 'centos'"),
    ({"ID": "debian", "VERSION_ID": "10", "PRETTY_NAME": "Debian 10"}, "unsupported release 'Debian 10'"),
])
def test_unsupported_hosts_are_named(release, message):
    with pytest.raises(UnsupportedHost) as err:
        facts.platform_for(release)
    assert str(err.value) == message


def test_units_values_with_equals_and_names_for_blocks_without_id():
    text = "ActiveState=active\nEnvironment=A=1 B=2\n\nActiveState=inactive\n\nActiveState=failed\n"
    units = facts.parse_units(text, ["a.service", "b.service"])
    assert units == {"a.service": {"ActiveState": "active", "Environment": "A=1 B=2"},
                     "b.service": {"ActiveState": "inactive"}}
    assert facts.parse_units(text) == {}


def test_packages_split_on_tabs_only():
    lines = ["apache2\tinstalled\t2.4.57-2 local", "curl\tconfig-files\t7.88", "package httpd is not installed"]
    assert facts.parse_packages(lines) == {"apache2": "2.4.57-2 local"}


def test_loadmodule_line_with_a_comment_holding_a_colon():
    lines = ["/etc/httpd/conf.modules.d/00-proxy.conf:LoadModule proxy_module modules/mod_proxy.so # note: x"]
    assert facts.parse_loadmodules(lines) == {"proxy_module": "/etc/httpd/conf.modules.d/00-proxy.conf"}


def test_os_release_unbalanced_quote_keeps_leading_letters():
    assert facts.parse_os_release('NAME="Xen Linux\n')["NAME"] == "Xen Linux"
