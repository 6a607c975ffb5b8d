"""The pure parts of the day-2 commands, exactly: every field balancer-manager's page gives, the
drain script and the audit function as whole texts, status and run reports line by line."""
import datetime
import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from provision import audit
from provision.ops import adhoc, status
from provision.balancer import manager as bm
from provision.balancer.drain import DrainError, ProxyOutcome, balanced, member_urls

PAGES = Path(__file__).resolve().parents[2] / "fixtures" / "balancer-manager"
P246 = (PAGES / "httpd-2.4.6.html").read_text()


def test_every_field_of_the_246_page():
    assert [m.as_dict() for m in bm.parse(P246)] == [
        {"balancer": "mycluster", "url": "http://192.0.2.11:8080", "route": "web1-hello", "factor": "1", "lbset": 0,
         "flags": ["Init", "Ok"], "elected": 1043, "busy": 0, "load": 0, "sent": "226K", "received": "261K",
         "state": "Ok", "address": "192.0.2.11:8080"},
        {"balancer": "mycluster", "url": "http://192.0.2.12:8081", "route": "web2-howdy", "factor": "1", "lbset": 0,
         "flags": ["Init", "Drn", "Ok"], "elected": 1038, "busy": 2, "load": -1, "sent": "224K",
         "received": "260K", "state": "Drn", "address": "192.0.2.12:8081"}]


def test_every_field_of_a_debian12_page():
    web1, web2 = bm.parse((PAGES / "debian12-drained.html").read_text())
    assert (web1.url, web1.route, web1.factor, web1.lbset, web1.flags, web1.elected, web1.busy, web1.load,
            web1.sent, web1.received) == ("http://10.123.0.11:8080", "web1-hello", "1.00", 0, ["Init", "Ok"], 1, 0, 0,
                                          "175", "27")
    assert web2.flags == ["Init", "Drn", "Ok"]


def test_each_balancer_keeps_its_own_members():
    page = (P246 + P246.replace("balancer://mycluster", "balancer://api").replace("web1-hello", "api-1")
            + P246.replace("balancer://mycluster", "balancer://static").replace("web1-hello", "static-1"))
    assert [(m.balancer, m.route) for m in bm.parse(page)] == [
        ("mycluster", "web1-hello"), ("mycluster", "web2-howdy"), ("api", "api-1"), ("api", "web2-howdy"),
        ("static", "static-1"), ("static", "web2-howdy")]


def test_a_page_with_no_balancer_has_no_members_and_other_pages_are_refused():
    assert bm.parse("<h1>Load Balancer Manager for x</h1>") == []
    with pytest.raises(bm.ManagerError, match="^not a balancer-manager page$"):
        bm.parse("<h1>Load balancer manager</h1>")


def test_member_state_and_address():
    def member(flags, url="http://a:1/"):
        return bm.WorkerRow("b", url, "r", "1", 0, flags)
    assert member([]).state == "?"
    assert member(["Init", "Xyz"]).state == "Init Xyz"
    assert [member([s, "Ok"]).state for s in ("Stop", "Err", "Drn", "Stby")] == ["Stop", "Err", "Drn", "Stby"]
    assert member(["Stby", "Drn"]).state == "Drn" and member(["Err", "Stop"]).state == "Stop"
    assert member([]).address == "a:1" and member([], "a:2").address == "a:2"
    m = bm.WorkerRow("b", "u", "r", "1", 0)
    assert (m.flags, m.elected, m.busy, m.load, m.sent, m.received) == ([], 0, 0, 0, "", "")


def test_nonce_and_commands():
    assert bm.nonce("x&amp;nonce=ab-12 y nonce=ff") == "ab-12"
    assert bm.nonce("no nonce here") is None
    assert bm.read_command() == "curl -s --max-time 5 http://127.0.0.1/balancer-manager || true"
    assert bm.split_before_after("a\n@@@ balancer-manager after\nb\n") == ("a\n", "b\n")
    assert bm.split_before_after("a\n") == ("a\n", "")


def test_drain_script_whole():
    manager = "http://127.0.0.1/balancer-manager"
    post = ("  case \"$w\" in {}) curl -sf --max-time 5 -o /dev/null -H 'Referer: http://127.0.0.1/balancer-manager' "
            "--data \"w=$w&b=$b&w_status_N={}&nonce=$n\" " + manager + " ;; esac")
    assert bm.set_drain_script(["http://a:1", "http://b:2"], True).splitlines() == [
        "set -e",
        f"page=$(curl -sf --max-time 5 {manager})",
        "printf '%s\\n' \"$page\"",
        "links=$(printf '%s\\n' \"$page\" | sed -n 's/.*?b=\\([^&\"]*\\)&\\(amp;\\)\\{0,1\\}w=\\([^&\"]*\\)"
        "&\\(amp;\\)\\{0,1\\}nonce=\\([0-9a-f-]*\\)\".*/\\1 \\3 \\5/p')",
        "[ -n \"$links\" ] || { echo \"balancer-manager lists no member\" >&2; exit 1; }",
        "printf '%s\\n' \"$links\" | while read -r b w n; do",
        post.format("*://a:1|*://b:2", 1),
        "done",
        "echo '@@@ balancer-manager after'",
        f"curl -sf --max-time 5 {manager}"]
    assert bm.set_drain_script(["http://a:1"], False).splitlines()[6] == post.format("*://a:1", 0)


def test_audit_fields_and_function_whole(monkeypatch):
    monkeypatch.setattr(audit.socket, "gethostname", lambda: "ctl")
    monkeypatch.setattr(audit.getpass, "getuser", lambda: "alice")
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    entry = audit.fields(Path("/x/inv/lab.yml"), ["a", "b"], now)
    assert entry == {"time": "2026-01-02T03:04:05Z", "control": "ctl", "user": "alice", "inventory": "lab.yml",
                     "changes": 2, "changed": ["a", "b"], "run": ""}
    assert audit.fields("lab.yml", [])["time"].endswith("Z")


def test_audit_time_is_utc_whatever_the_local_zone(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "Etc/GMT-9")
    time.tzset()
    try:
        stamp = datetime.datetime.strptime(audit.fields("x", [])["time"], "%Y-%m-%dT%H:%M:%SZ")
        utc_now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        assert abs((utc_now - stamp).total_seconds()) < 120
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert audit.function({"changes": 0, "x": "it's"}, "/tmp/l/d.log") == (
        "provision_audit() {\n"
        "  if [ \"$1\" -eq 0 ]; then r=ok; else r=failed; fi\n"
        "  ( umask 077; mkdir -p /tmp/l && chmod 700 /tmp/l &&\n"
        "    { if [ -f /tmp/l/d.log ]; then cat /tmp/l/d.log; fi\n"
        "      printf '%s%s\", \"rc\": %s}\\n' '{\"changes\": 0, \"x\": \"it'\"'\"'s\", \"result\": \"' \"$r\" \"$1\"; }"
        " > /tmp/l/d.log.new &&\n"
        "    chmod 600 /tmp/l/d.log.new && mv -f /tmp/l/d.log.new /tmp/l/d.log ) "
        "|| echo 'provision: could not write /tmp/l/d.log' >&2\n"
        "}\n")
    assert "then r=changed; else r=failed" in audit.function({"changes": 1})
    assert "mkdir -p /var/log/provision && chmod 700 /var/log/provision" in audit.function({"changes": 1})
    assert audit.wrap_apply("step\n", {"changes": 0}, "/l/f") == (
        audit.function({"changes": 0}, "/l/f") + "(\nstep\n)\nrc=$?\nprovision_audit \"$rc\"\nexit \"$rc\"\n")


def test_audit_last_line_and_resources():
    assert audit.parse_last(['{"a": 1}', "  ", ""]) == {"a": 1}
    assert audit.parse_last(["[1]"]) is None and audit.parse_last(["", " "]) is None
    assert audit.parse_last(['{"a": 1}', "torn"]) is None
    folder, rotate_dir, rotate = audit.resources()
    assert (folder.path, folder.mode, rotate_dir.path, rotate.path, rotate.content) == (
        "/var/log/provision", "700", "/etc/logrotate.d", "/etc/logrotate.d/provision", audit.LOGROTATE_TEXT.encode())
    assert "/var/log/provision/deploys.log {\n    monthly\n" in audit.LOGROTATE_TEXT


def test_member_urls_and_balanced_proxies():
    web = SimpleNamespace(name="web1", private_address="10.0.0.1",
                          apps=[{"name": "hello", "port": 8080}, {"name": "howdy", "port": 8081}])
    assert member_urls(web) == ["http://10.0.0.1:8080", "http://10.0.0.1:8081"]
    assert member_urls(web, "howdy") == ["http://10.0.0.1:8081"]
    with pytest.raises(DrainError, match=r"^host 'web1': no app named 'api' \(it has hello, howdy\)$"):
        member_urls(web, "api")
    with pytest.raises(DrainError, match=r"^host 'w': no app named 'a' \(it has none\)$"):
        member_urls(SimpleNamespace(name="w", private_address="x", apps=[]), "a")
    a, b, c = (SimpleNamespace(vars=v) for v in ({}, {"proxy_mode": "single"}, {"proxy_mode": "balancer"}))
    assert balanced([a, b, c]) == [a, c]
    assert balanced([a, b, c], "single") == [] and balanced([a, b], "balancer") == [a, b]


def test_drained_before_reads_the_page_before_the_change():
    before = [bm.WorkerRow("b", "http://u1:1", "r", "1", 0, ["Init", "Drn"]), bm.WorkerRow("b", "http://u2:2", "r", "1", 0, ["Ok"]),
              bm.WorkerRow("b.ws", "ws://u3:3", "r", "1", 0, ["Drn"])]
    assert ProxyOutcome("p", True, before=before).drained_before() == {"http://u1:1", "http://u3:3"}
    assert ProxyOutcome("p", True).drained_before() == set()


def test_status_texts_line_by_line():
    assert status._deploy_text(None) == "no deploy recorded"
    assert status._deploy_text({}) == "no deploy recorded"
    assert status._deploy_text({"rc": 1}) == "? by ?@? (?): 0 changes, ?"
    assert status._deploy_text({"time": "T", "user": "u", "control": "c", "inventory": "i", "changes": 3,
                                "result": "changed"}) == "T by u@c (i): 3 changes, changed"
    assert status._plan_text({}) == "up to date"
    assert status._plan_text({"would_change": list("abcde")}) == "would change 5: a, b, c, d, e"
    assert status._plan_text({"would_change": list("abcdef")}) == "would change 6: a, b, c, d, e, ..."
    data = {"hosts": {
        "proxy": {"last_deploy": None, "would_change": [], "balancer_error": "down",
                  "members": [{"balancer": "mycluster", "route": "web1-hello", "address": "10.0.0.1:8080",
                               "state": "Drn", "elected": 3, "busy": 1, "load": 2}]},
        "web1": {"last_deploy": None, "would_change": ["x"],
                 "apps": [{"app": "hello", "state": "active", "since": "", "address": "10.0.0.1:8080",
                           "http": "200", "answers": True},
                          {"app": "howdy", "state": "failed", "since": "Mon", "address": "10.0.0.1:8081",
                           "http": "", "answers": False},
                          {"app": "api", "state": "active", "since": "Tue", "address": "10.0.0.1:8082",
                           "http": "502", "answers": False}]},
        "web2": {"error": "timed out"}}}
    data["hosts"] = {"web0": {"error": "refused"}, **data["hosts"]}
    assert status.plain_lines(data) == [
        "web0 | failed | refused",
        "proxy | last deploy | no deploy recorded",
        "proxy | deploy | up to date",
        "proxy | balancer | down",
        "proxy | member | mycluster web1-hello 10.0.0.1:8080 Drn elected=3 busy=1 load=2",
        "web1 | last deploy | no deploy recorded",
        "web1 | deploy | would change 1: x",
        "web1 | app | hello active since -; 10.0.0.1:8080 answers 200",
        "web1 | app | howdy failed since Mon; 10.0.0.1:8081 does not answer (no reply)",
        "web1 | app | api active since Tue; 10.0.0.1:8082 does not answer (502)",
        "web2 | failed | timed out"]


def test_status_script_lines_before_the_facts():
    from provision import facts as factlib
    host = SimpleNamespace(groups=["proxies", "backends"], private_address="10.0.0.1",
                           apps=[{"name": "hello", "port": 8080}])
    text = status.script(host, factlib.FactRequest())
    assert text.splitlines()[:5] == [
        "export LC_ALL=C",
        "echo '@@@ status-last-deploy'; tail -n 1 /var/log/provision/deploys.log 2>/dev/null",
        "echo '@@@ status-balancer'; curl -s --max-time 5 http://127.0.0.1/balancer-manager || true; echo",
        "echo '@@@ status-app hello'; curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://10.0.0.1:8080/; echo",
        factlib.script(factlib.FactRequest()).splitlines()[0]]
    backend = SimpleNamespace(groups=["backends"], private_address="10.0.0.2", apps=[])
    assert "status-balancer" not in status.script(backend, factlib.FactRequest())
    assert status.roles_of(SimpleNamespace(groups=["web"])) == []


def test_run_report_whole():
    results = [adhoc.HostRun("web1", 0, "a\nb\n", "warn\n"), adhoc.HostRun("web2", 3, " \n"),
               adhoc.HostRun("web3", None, error="timed out", unreachable=True)]
    out = io.StringIO()
    adhoc.report_all(results, out)
    assert out.getvalue().splitlines() == [
        "web1 | ok | rc=0", "    a", "    b", "    warn",
        "web2 | failed | rc=3",
        "web3 | unreachable | timed out",
        "", "RECAP", "web1 rc=0 ok", "web2 rc=3 failed", "web3 rc=- unreachable",
        "failed on 1 of 3 hosts: web2", "unreachable: 1 of 3 hosts: web3"]
    out = io.StringIO()
    adhoc.report_all([adhoc.HostRun("web1", 0)], out)
    assert out.getvalue() == "web1 | ok | rc=0\n\nRECAP\nweb1 rc=0 ok\n"
    assert not adhoc.HostRun("h", None).ok and not adhoc.HostRun("h", 1).ok and adhoc.HostRun("h", 0).ok


def test_run_output_keeps_the_last_lines_on_screen():
    lines = [f"l{i}" for i in range(1, 42)]
    assert adhoc._tail("\n".join(lines) + "\n\n") == "\n".join(["... (1 earlier lines in --json)"] + lines[1:])
    assert adhoc._tail("\n".join(lines[:40]) + "\n") == "\n".join(lines[:40])
    assert adhoc._tail("a  \n\n") == "a  " and adhoc._tail("aX\n") == "aX"


def _facts(**over):
    base = dict(os={"NAME": "CentOS Linux", "VERSION_ID": "7.9", "VERSION_CODENAME": "core"}, family="redhat",
                arch="x86_64", python=(2, 7, 5), selinux="Enforcing",
                platform=SimpleNamespace(apache_service="httpd"), apache_modules={"proxy", "alias"},
                load_modules={"b_module": "/b.so", "a_module": "/a.so"}, packages={"z": "1", "httpd": "2.4.6"},
                units={"httpd.service": {"ActiveState": "active"}},
                files={"/z": SimpleNamespace(kind="file", mode="644"), "/a": SimpleNamespace(kind="directory")},
                users={"web", "apache"}, firewalld=True, firewalld_services={"ssh", "http"},
                firewalld_ports={"8081/tcp", "8080/tcp"}, sebools={"httpd_can_network_connect": True},
                pending={"reload-b", "reload-a"})
    return SimpleNamespace(**{**base, **over})


def test_facts_as_ansible_setup_names_every_field():
    from provision.ops import facts_cmd
    assert facts_cmd.as_setup(_facts()) == {
        "ansible_os_family": "RedHat", "ansible_distribution": "CentOS Linux",
        "ansible_distribution_version": "7.9", "ansible_distribution_major_version": "7",
        "ansible_distribution_release": "core", "ansible_architecture": "x86_64",
        "ansible_python": {"version": {"major": 2, "minor": 7, "micro": 5}},
        "ansible_selinux": {"status": "enabled", "mode": "enforcing"}, "ansible_pkg_mgr": "yum",
        "provision_apache": {"service": "httpd", "modules_enabled": ["alias", "proxy"],
                             "load_modules": {"a_module": "/a.so", "b_module": "/b.so"}},
        "provision_packages": {"httpd": "2.4.6", "z": "1"},
        "provision_units": {"httpd.service": {"ActiveState": "active"}},
        "provision_files": {"/a": {"kind": "directory"}, "/z": {"kind": "file", "mode": "644"}},
        "provision_users": ["apache", "web"],
        "provision_firewalld": {"running": True, "services": ["http", "ssh"], "ports": ["8080/tcp", "8081/tcp"]},
        "provision_sebools": {"httpd_can_network_connect": True},
        "provision_pending_handlers": ["reload-a", "reload-b"]}
    assert list(facts_cmd.as_setup(_facts())["provision_packages"]) == ["httpd", "z"]
    assert list(facts_cmd.as_setup(_facts())["provision_files"]) == ["/a", "/z"]
    debian = facts_cmd.as_setup(_facts(family="debian", selinux=None, python=None, os={}))
    assert (debian["ansible_os_family"], debian["ansible_pkg_mgr"], debian["ansible_selinux"],
            debian["ansible_python"], debian["ansible_distribution"], debian["ansible_distribution_version"],
            debian["ansible_distribution_major_version"], debian["ansible_distribution_release"]) == (
        "Debian", "apt", {"status": "disabled", "mode": ""}, {"version": {}}, "", "", "", "")
    assert facts_cmd.as_setup(_facts(selinux="Disabled"))["ansible_selinux"] == {"status": "disabled",
                                                                                  "mode": "disabled"}
    assert facts_cmd.as_setup(_facts(selinux="Permissive"))["ansible_selinux"] == {"status": "enabled",
                                                                                   "mode": "permissive"}


def _two_app_inventory(tmp_path):
    from provision.inventory import load
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  children:\n    proxies:\n      hosts:\n        proxy: {ansible_host: 192.0.2.10}\n"
                    "    backends:\n      hosts:\n        web1:\n          ansible_host: 192.0.2.11\n"
                    "          apps:\n          - {name: hello, port: 8080, message: Hello world!}\n"
                    "          - {name: howdy, port: 8081, message: Howdy world!}\n")
    return load(path)


@pytest.mark.parametrize("codes, answers", [(("200", ""), [True, False]), (("302", "404"), [True, False]),
                                            (("500", "abc"), [False, False])])
def test_status_record_of_a_backend_exactly(tmp_path, codes, answers):
    from provision.engine import Options
    inv = _two_app_inventory(tmp_path)
    text = (f"@@@ status-last-deploy\nnot json\n@@@ status-app hello\n{codes[0]}\n@@@ status-app howdy\n"
            f"{codes[1]}\n" + (PAGES.parent / "debian12" / "facts-backend.txt").read_text())
    record = status.interpret(inv.hosts["web1"], text, inv, Options())
    assert (record["host"], record["groups"], record["last_deploy"]) == ("web1", ["backends"], None)
    assert "members" not in record and "balancer_error" not in record
    assert record["would_change"][0] == "file /opt/provision/apps/hello/app.py"
    assert record["would_change"][-1] == "restart provision-app-hello.service"
    assert record["apps"] == [
        {"app": "hello", "unit": "provision-app-hello.service", "state": "active",
         "since": "Sat 2026-11-28 09:28:07 UTC", "address": "192.0.2.11:8080", "http": codes[0],
         "answers": answers[0]},
        {"app": "howdy", "unit": "provision-app-howdy.service", "state": "unknown", "since": "",
         "address": "192.0.2.11:8081", "http": codes[1], "answers": answers[1]}]


def test_status_record_without_its_sections_and_with_a_split_code(tmp_path):
    from provision.engine import Options
    inv = _two_app_inventory(tmp_path)
    facts = (PAGES.parent / "debian12" / "facts-backend.txt").read_text()
    record = status.interpret(inv.hosts["web1"], "@@@ status-app hello\n2\n00\n" + facts, inv, Options())
    assert record["last_deploy"] is None
    assert [(a["http"], a["answers"]) for a in record["apps"]] == [("200", True), ("", False)]
    proxy = status.interpret(inv.hosts["proxy"], (PAGES.parent / "debian12" / "facts-proxy.txt").read_text(), inv,
                             Options())
    assert proxy["members"] == [] and proxy["balancer_error"] == "balancer-manager did not answer on the loopback"


def test_status_record_of_a_proxy_whose_manager_does_not_answer(tmp_path):
    from provision.engine import Options
    inv = _two_app_inventory(tmp_path)
    last = '{"user": "root", "result": "ok"}'
    text = (f"@@@ status-last-deploy\n{last}\n@@@ status-balancer\ncurl: (7) refused\n"
            + (PAGES.parent / "debian12" / "facts-proxy.txt").read_text())
    record = status.interpret(inv.hosts["proxy"], text, inv, Options())
    assert {k: v for k, v in record.items() if k != "would_change"} == {
        "host": "proxy", "status": "ok", "groups": ["proxies"], "last_deploy": {"user": "root", "result": "ok"}, "members": [],
        "balancer_error": "balancer-manager did not answer on the loopback"}
    assert status.roles_of(inv.hosts["proxy"]) and len(status.roles_of(inv.hosts["proxy"])) == 1
