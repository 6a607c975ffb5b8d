"""Day-2 commands on the lab, each acceptance line of the issue run for real: status, drain and
undrain under load with a deploy in between, ad-hoc run, facts, and the audit trail."""
import json
import time

import pytest
import yaml

from conftest import ROOT, get, invoke, ssh

pytestmark = pytest.mark.lab

PROXY = "10.123.0.10"
SECRET = "s3cret-sudo-marker-4711"      # given as the sudo password: must never reach a host's log


def status_json(inventory="inventory/lab.yml"):
    proc = invoke("status", "-i", inventory, "--json", "-", check=0)
    return json.loads(proc.stdout)


def test_status_shows_members_apps_and_last_deploy_in_one_exec(deployed):
    data = status_json()
    proxy = data["hosts"]["proxy"]
    assert [(m["route"], m["state"]) for m in proxy["members"]] == [("web1-hello", "Ok"), ("web2-howdy", "Ok")]
    for name in ("web1", "web2"):
        apps = data["hosts"][name]["apps"]
        assert all(a["state"] == "active" and a["since"] and a["answers"] for a in apps), apps
    for name, record in data["hosts"].items():
        last = record["last_deploy"]
        assert last and last["time"] and last["user"] and last["result"] in ("ok", "changed", "unchanged"), (name, last)
        assert record["would_change"] == [], (name, record["would_change"])
    print("status ssh use:", data["ssh"])
    assert data["ssh"] == {h: {"connections": 1, "execs": 1, "uploads": 0} for h in ("proxy", "web1", "web2")}
    plain = invoke("status", check=0).stdout
    assert plain.count("| member | mycluster") == 2 and " Ok elected=" in plain
    assert f"proxy | last deploy | {proxy['last_deploy']['time']} by {proxy['last_deploy']['user']}@" in plain
    assert "web1 | app | hello active since" in plain


def _changed_inventory(tmp_path):
    """The lab inventory with one vhost setting changed (balancer_timeout), so deploy reloads."""
    doc = yaml.safe_load((ROOT / "inventory/lab.yml").read_text())
    doc["all"]["vars"]["ssh_config"] = str(ROOT / ".lab/ssh_config")
    doc["all"]["children"]["proxies"]["hosts"]["proxy"]["balancer_timeout"] = 31
    path = tmp_path / "lab-changed.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_drain_holds_over_a_reloading_deploy_under_load(deployed, tmp_path):
    """Acceptance 2: under load at concurrency 20, drain web2 --wait, a deploy that reloads Apache
    (a changed vhost setting), 200 requests: none reaches web2, and none did during the reload
    (the proxy's access log names each request's member); status shows Drn; a second deploy
    changes nothing; undrain brings web2 back; no request fails throughout."""
    from bench import speed as bench
    from tests.support.load import Background
    changed = _changed_inventory(tmp_path)
    access = "/var/log/apache2/provision-*-access.log"
    started = time.monotonic()
    try:
        with Background(f"http://{PROXY}/", requests=500_000, concurrency=20, seconds=240,
                        allowed={PROXY}) as load:
            out = invoke("drain", "web2", "--wait", check=0).stdout
            assert "proxy | drained | web2-howdy 10.123.0.12:8081 Drn" in out, out
            assert "proxy | idle |" in out and "web2 drained on 1 of 1 proxies: proxy" in out
            mark = int(ssh(deployed, "proxy", f"cat {access} | wc -l").stdout)
            deploy = invoke("deploy", "-i", str(changed), check=0).stdout
            assert "reload apache2" in deploy, deploy
            bodies = [get(f"http://{PROXY}/")[2] for _ in range(200)]
            assert set(bodies) == {"Hello world!"}, f"{bodies.count('Howdy world!')} of 200 reached web2"
            members = {m["route"]: m["state"] for m in status_json()["hosts"]["proxy"]["members"]}
            assert members == {"web1-hello": "Ok", "web2-howdy": "Drn"}
            since = ssh(deployed, "proxy", f"cat {access} | tail -n +{mark + 1}").stdout.splitlines()
            to_web2 = [line for line in since if "worker=http://10.123.0.12:8081" in line]
            print(f"while drained: {len(since)} requests through the proxy, {len(to_web2)} to web2")
            assert len(since) > 200 and to_web2 == [], to_web2[:3]
            again = tmp_path / "again.json"
            invoke("deploy", "-i", str(changed), "--json", str(again), check=0)
            assert bench.changed_hosts(json.loads(again.read_text())) == [], "a second deploy changed something"
            out = invoke("undrain", "web2", check=0).stdout
            assert "proxy | undrained | web2-howdy 10.123.0.12:8081 Ok" in out, out
            seen = {get(f"http://{PROXY}/")[2] for _ in range(20)}
            assert "Howdy world!" in seen
            result = load.stop()
    finally:
        invoke("undrain", "web2")
        invoke("deploy", "-i", "inventory/lab.yml", check=0)
    print(f"drain drill: {time.monotonic() - started:.1f} s; load: {result.summary()}")
    assert result.sent > 200 and result.failed == 0, result.errors[:5]


def _reload_proxy(lab):
    """systemctl reload, then poll until the new generation answers (its balancer has a new nonce)."""
    from provision.balancer import manager as bm

    def nonce():
        return bm.nonce(ssh(lab, "proxy", bm.read_command()).stdout)
    before = nonce()
    ssh(lab, "proxy", "systemctl reload apache2")
    deadline = time.monotonic() + 15
    while nonce() == before:
        assert time.monotonic() < deadline, "no new Apache generation 15 s after the reload"
        time.sleep(0.2)


def test_a_drain_holds_over_a_plain_reload_and_undrain_over_the_next(deployed):
    """The drain is in the config (drained.conf), not only in Apache's memory: a reload by anyone
    keeps it, and after undrain a reload keeps the member serving."""
    invoke("drain", "web2", check=0)
    try:
        _reload_proxy(deployed)
        members = {m["route"]: m["state"] for m in status_json()["hosts"]["proxy"]["members"]}
        assert members["web2-howdy"] == "Drn"
        mode = ssh(deployed, "proxy", "stat -c %a /etc/apache2/provision/drained.conf").stdout.strip()
        assert mode == "600"
    finally:
        invoke("undrain", "web2", check=0)
    _reload_proxy(deployed)
    members = {m["route"]: m["state"] for m in status_json()["hosts"]["proxy"]["members"]}
    assert members["web2-howdy"] == "Ok"


def test_a_deploy_after_the_upgrade_keeps_a_drain_an_earlier_release_recorded(deployed):
    """Drain variables became one-to-one (second security review, finding 12). A proxy an earlier
    release deployed and drained has its routes file and drained.conf in the old names; the deploy
    that writes the new routes file carries the drain over before its reload."""
    from provision.balancer.record import RECORD_HEADER, legacy_status_variable, status_variable
    routes, record = "/etc/apache2/provision/proxy-routes.inc", "/etc/apache2/provision/drained.conf"
    urls = ["http://10.123.0.11:8080", "http://10.123.0.12:8081"]
    names = " ".join(f"-e 's/{status_variable(u)}/{legacy_status_variable(u)}/g'" for u in urls)
    old_line = f"Define {legacy_status_variable(urls[1])} +N"
    ssh(deployed, "proxy", f"sed -i {names} {routes} && printf '%s\\n' '{RECORD_HEADER}' '{old_line}' > {record} "
                           f"&& chmod 600 {record}")
    _reload_proxy(deployed)

    def web2():
        return {m["route"]: m["state"] for m in status_json()["hosts"]["proxy"]["members"]}["web2-howdy"]
    assert web2() == "Drn"              # the earlier release's names at work
    try:
        run = invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=0)
        assert f"file {routes}" in run.stdout and "reload apache2" in run.stdout, run.stdout[-2000:]
        assert web2() == "Drn"
        _reload_proxy(deployed)         # and any reload after it
        assert web2() == "Drn"
        kept = ssh(deployed, "proxy", f"cat {record}").stdout.splitlines()
        assert kept == [RECORD_HEADER, old_line, f"Define {status_variable(urls[1])} +N"], kept
        assert legacy_status_variable(urls[1]) not in ssh(deployed, "proxy", f"cat {routes}").stdout
    finally:
        invoke("undrain", "web2", check=0)
    _reload_proxy(deployed)
    assert web2() == "Ok"
    assert ssh(deployed, "proxy", f"cat {record}").stdout.splitlines() == [RECORD_HEADER]


def test_run_ad_hoc_command_on_backends(deployed):
    # argv as a shell hands it over from: invoke run --limit backends -- systemctl is-active 'provision-app-*'
    proc = invoke("run", "--limit", "backends", "--", "systemctl", "is-active", "provision-app-*", check=0)
    for host in ("web1", "web2"):
        assert f"{host} | ok | rc=0\n    active" in proc.stdout, proc.stdout
    failing = invoke("run", "--limit", "backends", "--", "test", "$(hostname)", "!=", "web2", check=2)
    assert "web1 | ok | rc=0" in failing.stdout and "web2 | failed | rc=1" in failing.stdout
    assert "failed on 1 of 2 hosts: web2" in failing.stdout


def test_facts_json_of_web1(deployed):
    data = json.loads(invoke("facts", "web1", check=0).stdout)["web1"]["ansible_facts"]
    assert data["ansible_os_family"] == "Debian" and data["ansible_distribution_version"] == "12"
    assert data["ansible_python"]["version"]["major"] == 3
    assert data["provision_apache"]["service"] == "apache2"
    assert "python3" in data["provision_packages"] and "curl" in data["provision_packages"]
    assert data["provision_units"]["provision-app-hello.service"]["ActiveState"] == "active"


def test_audit_trail_two_deploys_two_lines(deployed, tmp_path):
    """Acceptance 5: after two deploys (one no-op), each host's log holds two lines; the no-op's
    line comes from its one facts exec (still 1 exec per host); --check and status write none."""
    hosts = ("proxy", "web1", "web2")

    def lines(host):
        out = ssh(deployed, host, "cat /var/log/provision/deploys.log").stdout
        return [json.loads(x) for x in out.splitlines()]
    env = {"PROVISION_SUDO_PASSWORD": SECRET}
    invoke("deploy", "-i", "inventory/lab.yml", check=0, env=env)      # whatever an earlier test left
    for host in hosts:      # earlier deploys wrote lines already: start from an empty trail
        ssh(deployed, host, "rm -f /var/log/provision/deploys.log")
    ssh(deployed, "web1", "sed -i 's/Hello/Hullo/' /opt/provision/apps/hello/app.py")    # a change to undo
    invoke("deploy", "-i", "inventory/lab.yml", check=0, env=env)
    noop_json = tmp_path / "noop.json"
    invoke("deploy", "-i", "inventory/lab.yml", "--json", str(noop_json), check=0, env=env)
    noop = json.loads(noop_json.read_text())
    assert noop["ssh"] == {h: {"connections": 1, "execs": 1, "uploads": 0} for h in hosts}, noop["ssh"]
    invoke("deploy", "-i", "inventory/lab.yml", "--check", check=0, env=env)
    status_json()
    after = {h: lines(h) for h in hosts}
    print({h: [(x["result"], x["changes"]) for x in after[h]] for h in hosts})
    assert {h: [x["result"] for x in after[h]] for h in hosts} == {
        "proxy": ["unchanged", "unchanged"], "web1": ["changed", "unchanged"], "web2": ["unchanged", "unchanged"]}
    for host in hosts:
        first, second = after[host]
        assert first["run"] != second["run"]
        for line in (first, second):
            assert {"time", "control", "user", "inventory", "changed", "result"} <= set(line), line
            assert line["inventory"] == "lab.yml" and line["user"] and line["control"] and line["time"]
    assert "file /opt/provision/apps/hello/app.py" in after["web1"][0]["changed"]
    assert status_json()["hosts"]["web1"]["last_deploy"]["result"] == "unchanged"
    for host in hosts:
        mode = ssh(deployed, host, "stat -c %a /var/log/provision/deploys.log").stdout.strip()
        assert mode == "600"
        grep = ssh(deployed, host, f"grep -rl -e {SECRET} -e 'PRIVATE KEY' /var/log/provision", check=False)
        assert grep.returncode == 1 and grep.stdout == "", grep.stdout
        assert ssh(deployed, host, "test -f /etc/logrotate.d/provision").returncode == 0


def test_serial_rollout_leaves_an_operator_drain_in_place(deployed):
    invoke("drain", "web2", check=0)
    try:
        ssh(deployed, "web2", "sed -i 's/Howdy/Hody/' /opt/provision/apps/howdy/app.py")    # web2 has a change
        out = invoke("deploy", "-i", "inventory/lab.yml", "--serial", "1", check=0).stdout
        assert "left drained as found: http://10.123.0.12:8081" in out, out
        members = {m["route"]: m["state"] for m in status_json()["hosts"]["proxy"]["members"]}
        assert members == {"web1-hello": "Ok", "web2-howdy": "Drn"}
    finally:
        invoke("undrain", "web2", check=0)
