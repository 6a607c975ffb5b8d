"""Day-2 pieces that need no host: the balancer-manager parser on captured pages, the audit
line's shell text (run here by sh into a temp file), the drain script, status and run reports."""
import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from provision import apply
from provision.inventory import load
from provision import audit
from provision.ops import adhoc, facts_cmd, status
from provision.balancer import manager as bm
from provision.balancer.drain import DrainError, member_urls
from test_shell_quoting import run_with_fake_curl

FIX = Path(__file__).resolve().parents[2] / "fixtures"
PAGES = FIX / "balancer-manager"


def test_parse_httpd_246_page_built_from_its_source():
    members = bm.parse((PAGES / "httpd-2.4.6.html").read_text())
    assert [(m.route, m.address, m.state) for m in members] == [
        ("web1-hello", "192.0.2.11:8080", "Ok"), ("web2-howdy", "192.0.2.12:8081", "Drn")]
    drained = members[1]
    assert drained.flags == ["Init", "Drn", "Ok"]
    assert (drained.elected, drained.busy, drained.load, drained.factor) == (1038, 2, -1, "1")
    assert bm.nonce((PAGES / "httpd-2.4.6.html").read_text()) == "6c1ad2a0-4c3e-4e38-9a7b-2f3c6d1e0b55"


@pytest.mark.parametrize("page,states", [
    ("debian12-ok.html", ["Ok", "Ok"]),
    ("debian12-drained.html", ["Ok", "Drn"]),
])
def test_parse_debian12_pages_captured_on_the_lab(page, states):
    text = (PAGES / page).read_text()
    members = bm.parse(text)
    assert [m.state for m in members] == states
    assert [m.route for m in members] == ["web1-hello", "web2-howdy"]
    assert all(m.balancer == "mycluster" and m.factor == "1.00" for m in members)
    assert all(m.elected >= 0 and m.busy >= 0 for m in members)
    assert bm.nonce(text)


def test_parse_debian12_page_with_health_checks_captured_during_a_freeze():
    """inventory/sites.yml with active health, web2's howdy stopped (SIGSTOP) with no load: its
    members in web and in the WebSocket twin web.ws failed their checks. The page adds six
    health-check columns after the eleven the parser reads."""
    text = (PAGES / "debian12-hcheck.html").read_text()
    assert "<th>HC Method</th>" in text
    members = bm.parse(text)
    assert [(m.balancer, m.route, m.address, m.state) for m in members] == [
        ("web", "web1-hello", "10.123.0.11:8080", "Ok"), ("web", "web2-howdy", "10.123.0.12:8081", "HcFl"),
        ("api", "", "10.123.0.12:8082", "Ok"),
        ("web.ws", "web1-hello", "10.123.0.11:8080", "Ok"), ("web.ws", "web2-howdy", "10.123.0.12:8081", "HcFl")]
    assert members[1].flags == ["Init", "HcFl"] and members[1].received.strip()


def test_parse_refuses_a_page_that_is_not_balancer_manager():
    with pytest.raises(bm.ManagerError):
        bm.parse("<html><body>It works!</body></html>")


def test_state_priority_disabled_beats_ok():
    m = bm.WorkerRow("b", "http://a:1", "r", "1", 0, ["Init", "Dis", "Ok"])
    assert m.state == "Dis"
    assert bm.WorkerRow("b", "http://a:1", "r", "1", 0, ["Init", "Err"]).state == "Err"


def pools_page(fixture="httpd-2.4.6.html"):
    """A balancer-manager page with the fixture's balancer and a WebSocket twin of it: web.ws,
    ws:// members, its own nonce (as for a sites pool with a WebSocket route on httpd 2.4.6)."""
    page = (FIX / "balancer-manager" / fixture).read_text()
    start = page.index("<h3>LoadBalancer Status for")
    end = page.index("</table>", page.index("<th>Worker URL</th>")) + len("</table>")
    twin = page[start:end].replace("mycluster", "web.ws").replace("http://", "ws://")
    twin = re.sub(r"nonce=[0-9a-f-]+", "nonce=0000aaaa-bbbb", twin)
    return page[:end] + twin + page[end:]


@pytest.mark.parametrize("drain", [True, False])
def test_drain_script_sets_drain_in_every_balancer_with_its_nonce(tmp_path, drain):
    page = pools_page()
    first_nonce = bm.nonce(page)
    args = run_with_fake_curl(bm.set_drain_script(["http://192.0.2.12:8081"], drain), tmp_path, page)
    posted = [a for a in args if a.startswith("w=")]
    flag = 1 if drain else 0
    assert posted == [f"w=http://192.0.2.12:8081&b=mycluster&w_status_N={flag}&nonce={first_nonce}",
                      f"w=ws://192.0.2.12:8081&b=web.ws&w_status_N={flag}&nonce=0000aaaa-bbbb"]
    assert f"Referer: {bm.MANAGER}" in args


def test_drain_script_with_sites_asks_each_sites_vhost_with_its_host_and_referer(tmp_path):
    """Each site's balancers live in its own vhost: the page of every site is read (Host), and a
    post goes to the vhost whose page listed the member, its Referer naming that host."""
    page = (FIX / "balancer-manager/debian12-ok.html").read_text()
    script = bm.set_drain_script(["http://10.123.0.12:8081"], True, sites=["a.example.test", "b.example.test"])
    args = run_with_fake_curl(script, tmp_path, page)
    posted = [a for a in args if a.startswith("w=")]
    assert posted == [f"w=http://10.123.0.12:8081&b=mycluster&w_status_N=1&nonce={bm.nonce(page)}"] * 2
    assert args.count("Host: a.example.test") == 3 and args.count("Host: b.example.test") == 3
    assert "Referer: http://a.example.test/balancer-manager" in args
    assert bm.read_command(["a.example.test"]).count("-H \"Host: $site\"") == 1


def test_drain_script_reads_the_escaped_links_of_later_releases(tmp_path):
    page = (FIX / "balancer-manager/debian12-ok.html").read_text()
    args = run_with_fake_curl(bm.set_drain_script(["http://10.123.0.12:8081"], True), tmp_path, page)
    assert [a for a in args if a.startswith("w=")] == [
        f"w=http://10.123.0.12:8081&b=mycluster&w_status_N=1&nonce={bm.nonce(page)}"]


def test_drain_script_fails_on_a_page_without_members(tmp_path):
    script = bm.set_drain_script(["http://10.0.0.12:8081"], True)
    args = run_with_fake_curl(script + "echo REACHED >&2\n", tmp_path, "<html>It works!</html>")
    assert not [a for a in args if a.startswith("w=")]
    assert script.rstrip().endswith(bm.MANAGER)       # prints the page afterwards, to confirm


def test_members_of_a_host_in_every_balancer():
    found = bm.of_urls(bm.parse(pools_page()), ["http://192.0.2.12:8081"])
    assert [(m.balancer, m.url) for m in found] == [("mycluster", "http://192.0.2.12:8081"),
                                                    ("web.ws", "ws://192.0.2.12:8081")]


def _inventory(tmp_path):
    path = tmp_path / "inv.yml"
    path.write_text("""all:
  children:
    proxies:
      hosts:
        proxy: {ansible_host: 192.0.2.10}
    backends:
      hosts:
        web1:
          ansible_host: 192.0.2.11
          apps:
          - {name: hello, port: 8080, message: Hello world!}
          - {name: howdy, port: 8081, message: Howdy world!}
""")
    return load(path)


def test_member_urls_per_app(tmp_path):
    web1 = _inventory(tmp_path).hosts["web1"]
    assert member_urls(web1) == ["http://192.0.2.11:8080", "http://192.0.2.11:8081"]
    assert member_urls(web1, "howdy") == ["http://192.0.2.11:8081"]
    with pytest.raises(DrainError, match="no app named 'nope'"):
        member_urls(web1, "nope")


def _run_audit(tmp_path, shell_text):
    log = tmp_path / "log" / "deploys.log"
    proc = subprocess.run(["sh", "-c", shell_text.replace(audit.LOG, str(log)).replace(audit.LOG_DIR, str(log.parent))],
                          capture_output=True, text=True)
    return proc, log


def test_audit_line_of_an_apply_that_changed(tmp_path):
    entry = audit.fields("inventory/lab.yml", ["file /etc/x", "reload apache2"])
    log = tmp_path / "log" / "deploys.log"
    script = audit.wrap_apply("echo applying\nexit 0\n", entry, log=str(log))
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "applying\n"
    line = json.loads(log.read_text())
    assert line["result"] == "changed" and line["rc"] == 0
    assert line["changed"] == ["file /etc/x", "reload apache2"] and line["changes"] == 2
    assert line["inventory"] == "lab.yml" and line["user"] and line["control"] and line["time"].endswith("Z")
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    assert oct(log.parent.stat().st_mode & 0o777) == "0o700"


def test_audit_line_of_a_failed_apply_keeps_the_exit_code(tmp_path):
    log = tmp_path / "deploys.log"
    script = audit.wrap_apply("exit 2\n", audit.fields("inv.yml", ["file /x"]), log=str(log))
    assert subprocess.run(["sh", "-c", script]).returncode == 2
    line = json.loads(log.read_text())
    assert (line["result"], line["rc"]) == ("failed", 2)


def test_audit_line_is_written_when_the_steps_trap_exit(tmp_path):
    """The steps set their own EXIT trap (the temp-file cleanup): it still runs, and so does the line."""
    log = tmp_path / "deploys.log"
    steps = "trap 'echo cleaned' EXIT\necho step\nexit 4\n"
    proc = subprocess.run(["sh", "-c", audit.wrap_apply(steps, audit.fields("inv.yml", ["file /x"]), log=str(log))],
                          capture_output=True, text=True)
    assert proc.returncode == 4 and proc.stdout == "step\ncleaned\n"
    assert json.loads(log.read_text())["rc"] == 4


def test_audit_fields_survive_shell_quoting(tmp_path):
    """A label with quotes and $ stays data: the shell never expands it."""
    log = tmp_path / "deploys.log"
    label = "file /etc/it's $HOME \"x\""
    subprocess.run(["sh", "-c", audit.wrap_apply("exit 0\n", audit.fields("inv.yml", [label]), log=str(log))],
                   check=True)
    assert json.loads(log.read_text())["changed"] == [label]


def test_a_deploy_leaves_one_line_facts_line_replaced_by_its_apply(tmp_path):
    """The facts exec's "unchanged" line stays for a host with nothing to change, and an apply
    of the same run replaces it; lines of other runs stay as they were."""
    log = tmp_path / "log" / "deploys.log"
    noop = audit.fields("lab.yml", [], run="run1")
    subprocess.run(["sh", "-c", audit.facts_line(noop, log=str(log))], check=True)
    cold = audit.fields("lab.yml", ["file /x"], run="run2")
    subprocess.run(["sh", "-c", audit.facts_line(cold, log=str(log))], check=True)
    subprocess.run(["sh", "-c", audit.wrap_apply("exit 0\n", cold, log=str(log))], check=True)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["run"], x["result"], x["changed"]) for x in lines] == [("run1", "unchanged", []),
                                                                      ("run2", "changed", ["file /x"])]
    assert oct(log.stat().st_mode & 0o777) == "0o600" and not (log.parent / "deploys.log.new").exists()
    assert oct(log.parent.stat().st_mode & 0o777) == "0o700"
    # A host in two groups: one apply per role, each keeps its line.
    subprocess.run(["sh", "-c", audit.wrap_apply("exit 0\n", audit.fields("lab.yml", ["file /y"], run="run2"),
                                                 log=str(log))], check=True)
    assert [x["changed"] for x in map(json.loads, log.read_text().splitlines())] == [[], ["file /x"], ["file /y"]]


def test_parse_last_takes_the_last_line_or_nothing():
    assert audit.parse_last(['{"a": 1}', '{"a": 2}', ""]) == {"a": 2}
    assert audit.parse_last([]) is None
    assert audit.parse_last(['{"a": 1', ]) is None


def test_status_interprets_one_exec_of_a_debian_proxy(tmp_path):
    inv = _inventory(tmp_path)
    proxy = inv.hosts["proxy"]
    last = json.dumps({"time": "2026-11-28T09:00:00Z", "user": "root", "control": "ctl", "inventory": "inv.yml",
                       "changes": 0, "changed": [], "result": "ok", "rc": 0})
    text = ("@@@ status-last-deploy\n" + last + "\n@@@ status-balancer\n"
            + (PAGES / "httpd-2.4.6.html").read_text() + "\n"
            + (FIX / "debian12" / "facts-proxy.txt").read_text())
    from provision.engine import Options
    record = status.interpret(proxy, text, inv, Options())
    assert record["last_deploy"]["user"] == "root"
    assert [m["state"] for m in record["members"]] == ["Ok", "Drn"]
    assert isinstance(record["would_change"], list) and record["would_change"]   # the fixture is not our tree
    lines = status.plain_lines({"hosts": {"proxy": record}})
    assert any("member | mycluster web2-howdy 192.0.2.12:8081 Drn" in ln for ln in lines)
    assert any("last deploy | 2026-11-28T09:00:00Z by root@ctl" in ln for ln in lines)


def test_run_report_recap_names_the_failed_host():
    results = [adhoc.HostRun("web1", 0, "active\n"), adhoc.HostRun("web2", 3, "", "inactive\n"),
               adhoc.HostRun("web3", None, error="no answer from 10.0.0.3:22 within 10 s", unreachable=True),
               adhoc.HostRun("web4", None, error="no answer after 300 s")]
    out = io.StringIO()
    adhoc.report_all(results, out)
    text = out.getvalue()
    assert "web1 | ok | rc=0\n    active" in text
    assert "failed on 2 of 4 hosts: web2, web4" in text and "unreachable: 1 of 4 hosts: web3" in text
    assert "web3 | unreachable | no answer from 10.0.0.3:22 within 10 s" in text
    assert "web4 | failed | no answer after 300 s" in text
    assert adhoc.exit_code(results) == 2 and adhoc.exit_code(results[:1] + results[2:3]) == 4
    assert adhoc.exit_code(results[:1]) == 0


def test_run_script_keeps_the_command_whole_and_drops_the_lock_fd():
    text = adhoc.script("systemctl is-active 'provision-app-*'", as_root=True)
    assert "( systemctl is-active 'provision-app-*'\n) 9>&-" in text
    assert "flock -x" in text and f"exec 9>>{apply.HOST_LOCK}" in text
    assert adhoc.script("uptime", as_root=False) == "( uptime\n) 9>&-\n"     # the lock is root's


def test_run_script_runs_here_under_a_local_lock(tmp_path, monkeypatch):
    """The lock prologue and the command, run by sh with the lock file moved into tmp_path."""
    text = adhoc.script("echo hi; exit 4", as_root=True).replace(apply.LOCK_DIR, str(tmp_path / "lock"))
    proc = subprocess.run(["sh", "-c", text], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (4, "hi\n")


def test_facts_as_setup_names(tmp_path):
    from provision import facts as factlib
    found = factlib.parse((FIX / "debian12" / "facts-proxy.txt").read_text())
    setup = facts_cmd.as_setup(found)
    assert setup["ansible_os_family"] == "Debian"
    assert setup["ansible_distribution_version"] == "12"
    assert setup["ansible_python"]["version"] == {"major": 3, "minor": 11, "micro": 2}
    assert setup["provision_packages"]["apache2"].startswith("2.4.")
    json.dumps(setup)


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/sbin/runuser").exists(), reason="needs root to switch user")
def test_run_as_a_user_without_sudo_takes_no_lock_and_runs():
    """The host lock is root-only (0600): a command run as the login user goes without it."""
    proc = subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", adhoc.script("id -un", as_root=False)],
                          capture_output=True, text=True, cwd="/")
    assert (proc.returncode, proc.stdout.strip()) == (0, "nobody"), proc.stderr


def test_status_rich_tables_render(tmp_path):
    inv = _inventory(tmp_path)
    from provision.engine import Options
    text = ("@@@ status-last-deploy\n@@@ status-balancer\n" + (PAGES / "debian12-drained.html").read_text()
            + "\n" + (FIX / "debian12" / "facts-proxy.txt").read_text())
    record = status.interpret(inv.hosts["proxy"], text, inv, Options())
    out = io.StringIO()
    status.print_rich({"hosts": {"proxy": record, "web9": {"host": "web9", "error": "timed out"}}}, out)
    shown = out.getvalue()
    assert "Balancer members" in shown and "web2-howdy" in shown and "Drn" in shown
    assert "no deploy recorded" in shown and "timed out" in shown


class _FakeConnections:
    """Answers every script with a fixed output, recording the scripts."""

    def __init__(self, stdout, rc=0):
        self.stdout, self.rc, self.scripts = stdout, rc, []

    def get(self, host):
        return self

    def run_script(self, script, timeout=0):
        from provision.transport import Result
        self.scripts.append(script)
        return Result(self.rc, self.stdout, "")


class _Proxy:
    name = "proxy"
    vars = {}


def test_set_drain_reads_the_page_before_and_after():
    from provision.balancer.drain import set_drain
    page = (PAGES / "httpd-2.4.6.html").read_text()      # web2's member already drained
    fake = _FakeConnections(page + "\n" + bm.AFTER + "\n" + page)
    [outcome] = set_drain([_Proxy()], ["http://192.0.2.12:8081"], True, fake)
    assert outcome.ok and outcome.drained_before() == {"http://192.0.2.12:8081"}
    assert "flock -x" in fake.scripts[0]
    [undrain] = set_drain([_Proxy()], ["http://192.0.2.12:8081"], False, fake, lock=False)
    assert not undrain.ok and "Drain still on for http://192.0.2.12:8081" in undrain.error
    assert "flock" not in fake.scripts[1]
    [unknown] = set_drain([_Proxy()], ["http://192.0.2.99:1"], True, fake)
    assert not unknown.ok and "not a member" in unknown.error


def test_drain_record_adds_and_removes_members_and_stays_root_only(tmp_path):
    """The record the routes file includes: a drain adds the member's +N line once, an undrain
    removes only its own; other members' lines stay."""
    from provision.balancer.record import RECORD, record_script
    folder = tmp_path / "provision"
    folder.mkdir()

    def run(urls, drain):
        text = record_script(urls, drain).replace("/etc/apache2/provision", str(folder))
        subprocess.run(["sh", "-ec", text], check=True)
        return (folder / RECORD).read_text().splitlines()[1:]
    web1, web2 = "http://10.0.0.11:8080", "http://10.0.0.12:8081"
    assert run([web2], True) == ["Define provision_member_10_2e0_2e0_2e12_3a8081 +N"]
    assert run([web2, web1], True) == ["Define provision_member_10_2e0_2e0_2e11_3a8080 +N",
                                       "Define provision_member_10_2e0_2e0_2e12_3a8081 +N"]
    assert run([web2], False) == ["Define provision_member_10_2e0_2e0_2e11_3a8080 +N"]
    assert run([web1], False) == []
    assert oct((folder / RECORD).stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in folder.iterdir()) == [RECORD]         # no temp file left
