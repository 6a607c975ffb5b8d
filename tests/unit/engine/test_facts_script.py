"""The facts script run for real by sh on this machine (it only reads), on paths made here, and
the whole-output parser on partial outputs."""
import hashlib
import os
import subprocess

import pytest

from provision import facts
from provision.facts import FactRequest, FileState, UnsupportedHost


def run(script):
    return subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=60)


def test_script_reads_files_directories_links_and_absence(tmp_path):
    (tmp_path / "a-file").write_text("hello\n")
    os.chmod(tmp_path / "a-file", 0o640)
    (tmp_path / "dir").mkdir(mode=0o750)
    os.chmod(tmp_path / "dir", 0o750)
    (tmp_path / "link").symlink_to("../some where")
    paths = {str(tmp_path / n) for n in ("a-file", "dir", "link", "nothing")}
    proc = run(facts.script(FactRequest(paths=paths)))
    assert (proc.returncode, proc.stderr) == (0, "")
    got = facts.parse(proc.stdout)
    import grp
    import pwd
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    assert got.file(str(tmp_path / "a-file")) == FileState(
        "file", "640", me, group, hashlib.sha256(b"hello\n").hexdigest())
    assert got.file(str(tmp_path / "dir")) == FileState("directory", "750", me, group, "")
    assert got.file(str(tmp_path / "link")) == FileState("link", target="../some where")
    assert got.file(str(tmp_path / "nothing")) == facts.ABSENT
    assert str(tmp_path / "nothing") in got.files


def test_script_reads_users_and_ends_cleanly():
    proc = run(facts.script(FactRequest(users={"root", "no-such-user-here"})))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert facts.parse(proc.stdout).users == {"root"}
    assert proc.stdout.splitlines()[0] == "@@@ os-release"


def test_merge_unites_every_kind():
    a = FactRequest({"p1"}, {"u1"}, {"/a"}, {"x"})
    b = FactRequest({"p2"}, {"u1", "u2"}, {"/b"}, {"y"})
    assert a.merge(b) == FactRequest({"p1", "p2"}, {"u1", "u2"}, {"/a", "/b"}, {"x", "y"})


def test_output_without_os_release_is_an_unsupported_host():
    with pytest.raises(UnsupportedHost, match="no /etc/os-release"):
        facts.parse("@@@ arch\nx86_64\n")


def test_sections_missing_mean_nothing_found_and_lines_before_the_first_mark_are_ignored():
    got = facts.parse("Welcome to the host!\n@@@ os-release\nID=debian\nVERSION_ID=12\n")
    assert (got.family, got.firewalld, got.firewalld_services, got.selinux, got.files, got.packages) == \
        ("debian", False, set(), None, {}, {})


def test_whole_output_every_section():
    text = "\n".join([
        "@@@ os-release", "ID=centos", 'VERSION_ID="7"', "@@@ arch", "x86_64",
        "@@@ python", "warning: something", "Python 3.6.8",
        "@@@ selinux", "Permissive", "httpd_can_network_connect --> on",
        "@@@ firewalld", "running", "dhcpv6-client http", "ports 8080/tcp 8081/tcp",
        "@@@ pending", "reload-apache", " ", "@@@ files",
        "/x", "/weird thing a b c d",
        "/short file 644 root",
        "/l link - - - - ../a  b",
        "/d directory 755 root adm -", ""])
    got = facts.parse(text)
    assert (got.arch, got.python, got.selinux, got.sebools) == ("x86_64", (3, 6, 8), "Permissive",
                                                               {"httpd_can_network_connect": True})
    assert (got.firewalld, got.firewalld_services, got.firewalld_ports) == (
        True, {"dhcpv6-client", "http"}, {"8080/tcp", "8081/tcp"})
    assert got.pending == {"reload-apache"}
    assert got.files == {"/l": FileState("link", target="../a  b"),
                         "/d": FileState("directory", "755", "root", "adm", "")}


def test_no_arch_section_is_an_empty_arch_and_selinux_disabled_is_read():
    got = facts.parse("@@@ os-release\nID=debian\nVERSION_ID=12\n@@@ selinux\nDisabled\n")
    assert (got.arch, got.python, got.selinux) == ("", None, "Disabled")
