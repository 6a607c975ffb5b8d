"""Safe changes under real load through the real proxy: graceful reloads, configtest rollback,
failover, rolling updates, secrets and exposure. Each test leaves the lab deployed as it found it."""
import json
import sys
import time

import pytest
import yaml

from conftest import ROOT, add_sudo_user, get, invoke, recap, ssh, unit_state
from tests.support.load import Background

pytestmark = pytest.mark.lab

PROXY = "http://10.123.0.10/"
LAB_HOSTS = {"10.123.0.10", "10.123.0.11", "10.123.0.12"}
ROUTES = "/etc/apache2/provision/proxy-routes.inc"


def load(requests=3000, concurrency=20, seconds=60):
    return Background(PROXY, requests, concurrency, seconds, LAB_HOSTS)


def unit_events(lab, host, unit, word, since):
    """Wall-clock times of systemd's journal lines about ``unit`` that start with ``word``
    ("Reloaded", "Stopped", "Started") since ``since``; the hosts share this machine's clock."""
    out = ssh(lab, host, f"journalctl -q -u {unit} -o short-unix --since @{since:.6f} --no-pager").stdout
    return [float(line.split()[0]) for line in out.splitlines() if line.split(": ", 1)[-1].startswith(word)]


def assert_overlap(result, start, end, what, least=20):
    """Answers came in both before ``start`` and after ``end``: the change happened under load."""
    before, after = result.around(start, end)
    print(f"{what}: {before} answers before, {after} after ({end - start:.2f} s window)")
    assert before >= least and after >= least, \
        f"{what} was not inside the load: {before} answers before it, {after} after it"


def inventory(lab, tmp_path, name="inventory.yml", **changes):
    data = yaml.safe_load((ROOT / "inventory/lab.yml").read_text())
    data["all"]["vars"]["ssh_config"] = str(lab.ssh_config)
    data["all"]["vars"].update(changes.pop("vars", {}))
    for host, apps in changes.pop("apps", {}).items():
        data["all"]["children"]["backends"]["hosts"][host]["apps"] = apps
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_vhost_change_under_load_drops_nothing(deployed, tmp_path):
    pid = unit_state(deployed, "proxy", "apache2")["MainPID"]
    changed = inventory(deployed, tmp_path, vars={"lbmethod": "bybusyness"})
    try:
        with load() as bg:
            time.sleep(0.5)
            since = time.time()
            proc = invoke("deploy", "-i", str(changed), check=0)
        result = bg.wait()
        print(result.summary(), result.errors[:3])
        assert proc.stdout.count("proxy | changed | reload apache2: handler") == 1
        [reloaded] = unit_events(deployed, "proxy", "apache2.service", "Reloaded", since)
        assert_overlap(result, reloaded, reloaded, "the graceful reload")
        assert "lbmethod=bybusyness" in ssh(deployed, "proxy", f"cat {ROUTES}").stdout
        assert result.sent >= 3000 and result.failed == 0, result.summary()
        assert unit_state(deployed, "proxy", "apache2")["MainPID"] == pid
    finally:
        invoke("deploy", "-i", "inventory/lab.yml", check=0)


def test_invalid_change_is_rolled_back_and_apache_keeps_serving(deployed, tmp_path):
    before = ssh(deployed, "proxy", f"sha256sum {ROUTES}").stdout
    pid = unit_state(deployed, "proxy", "apache2")["MainPID"]
    # A raw directive from the inventory that Apache rejects: only configtest can tell.
    bad = inventory(deployed, tmp_path, vars={"proxy_extra_directives": ["ProxyTimeout soon"]})
    with load(requests=1500) as bg:
        time.sleep(0.3)
        start = time.time()
        proc = invoke("deploy", "-i", str(bad), check=2)
        end = time.time()
    result = bg.wait()
    print(result.summary())
    assert_overlap(result, start, end, "the refused deploy")
    assert "configtest (apache)" in proc.stdout and "Proxy Timeout must be at least" in proc.stdout, proc.stdout
    assert recap(proc.stdout)["proxy"]["failed"] == 1
    assert ssh(deployed, "proxy", f"sha256sum {ROUTES}").stdout == before
    assert ssh(deployed, "proxy", f"ls {ROUTES}.provision-bak /var/lib/provision/pending/ 2>&1; true").stdout \
        .count("No such file") == 1
    assert result.failed == 0, result.summary()
    assert unit_state(deployed, "proxy", "apache2")["MainPID"] == pid
    verify = invoke("verify", "-i", "inventory/lab.yml")
    assert verify.returncode == 0, verify.stdout[-3000:]


FAILOVER_RUNS = 3      # the README's "0 failures in 3 runs" is this test


def test_stopped_backend_fails_over_and_rejoins(deployed):
    unit = "provision-app-hello.service"
    for run in range(1, FAILOVER_RUNS + 1):
        try:
            with load(requests=3000) as bg:
                time.sleep(0.3)
                since = time.time()
                ssh(deployed, "web1", f"systemctl stop {unit}")
            result = bg.wait()
            print(f"run {run}/{FAILOVER_RUNS}: {result.summary()}")
            assert result.failed == 0, f"run {run}: {result.summary()}"
            assert result.bodies["Howdy world!"] > 0
            [stopped] = unit_events(deployed, "web1", unit, "Stopped", since)
            assert_overlap(result, stopped, stopped, f"run {run}: the app's stop")
        finally:
            ssh(deployed, "web1", f"systemctl start {unit}")
        started = time.monotonic()
        while get(PROXY)[2] != "Hello world!":
            assert time.monotonic() - started < 10, "web1 did not rejoin within 10 s"
            time.sleep(0.2)
        print(f"web1 rejoined after {time.monotonic() - started:.1f} s")


def test_a_worker_killed_after_its_timeout_leaves_the_app_answering(deployed):
    """gunicorn stops a worker stuck past `timeout` with SIGABRT and starts another. That worker's
    exit must leave alone the listening socket the app's other workers and its replacement share:
    the stop-time drain in gunicorn.conf.py shut it down, and every connect was refused until the
    app was restarted."""
    master = ssh(deployed, "web1", "systemctl show -p MainPID --value provision-app-hello").stdout.strip()
    workers = ssh(deployed, "web1", f"pgrep -P {master}").stdout.split()
    ssh(deployed, "web1", f"kill -ABRT {workers[0]}")
    started = time.monotonic()
    while True:         # the master notices the exit and starts a new worker
        now = ssh(deployed, "web1", f"pgrep -P {master}", check=False).stdout.split()
        if workers[0] not in now and len(now) == len(workers):
            break
        assert time.monotonic() - started < 10, f"no new worker within 10 s: {now}"
        time.sleep(0.1)
    answers = ssh(deployed, "proxy", "for i in $(seq 20); do curl -s --max-time 2 http://10.123.0.11:8080/; "
                                     "echo; done").stdout.splitlines()
    assert answers == ["Hello world!"] * 20


def test_rolling_update_under_load(deployed, tmp_path):
    new = inventory(deployed, tmp_path, apps={
        "web1": [{"name": "hello", "port": 8080, "message": "Hello v2!"}],
        "web2": [{"name": "howdy", "port": 8081, "message": "Howdy v2!"}]})
    try:
        with load(requests=4000, seconds=90) as bg:
            time.sleep(0.3)
            since = time.time()
            proc = invoke("deploy", "-i", str(new), "--serial", "1", check=0)
        result = bg.wait()
        print(result.summary())
        assert proc.stdout.count("back in the balancer") == 2
        # each app restarts while drained: both restarts fall inside the load
        restarts = unit_events(deployed, "web1", "provision-app-hello.service", "Started", since) + \
            unit_events(deployed, "web2", "provision-app-howdy.service", "Started", since)
        assert len(restarts) == 2, restarts
        assert_overlap(result, min(restarts), max(restarts), "the drained restarts")
        assert result.failed == 0, result.summary()
        assert {get(PROXY)[2] for _ in range(6)} == {"Hello v2!", "Howdy v2!"}
    finally:
        invoke("deploy", "-i", "inventory/lab.yml", "--serial", "1", check=0)


def test_status_pages_only_on_the_proxy_itself(deployed):
    for path in ("balancer-manager", "server-status"):
        assert get(f"{PROXY}{path}")[0] == 403
        assert ssh(deployed, "proxy", f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1/{path}").stdout == "200"


def test_apps_listen_on_the_private_address_only(deployed):
    for host, port in (("web1", 8080), ("web2", 8081)):
        listening = ssh(deployed, host, "ss -Hltn").stdout
        ours = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{port}")]
        assert ours == [f"{deployed.hosts[host]}:{port}"], listening


def test_written_files_have_sane_modes_and_owners(deployed):
    out = ssh(deployed, "web1", "stat -c '%n %a %U %G' /opt/provision/apps/hello /opt/provision/apps/hello/app.py "
                                "/opt/provision/apps/hello/venv /etc/systemd/system/provision-app-hello.service; "
                                "su -s /bin/sh app-hello -c 'touch /opt/provision/apps/hello/app.py' 2>&1; "
                                "pid=$(systemctl show -p MainPID --value provision-app-hello.service); "
                                "ps -o user= -p \"$pid\" --ppid \"$pid\" | sort -u").stdout.splitlines()
    assert out[:4] == ["/opt/provision/apps/hello 755 root root", "/opt/provision/apps/hello/app.py 644 root root",
                       "/opt/provision/apps/hello/venv 755 root root",
                       "/etc/systemd/system/provision-app-hello.service 644 root root"]
    assert "Permission denied" in out[4]
    assert out[5:] == ["app-hello"]
    proxy = ssh(deployed, "proxy", f"stat -c '%a %U %G' {ROUTES} /etc/apache2/sites-available/provision-proxy.conf")
    assert proxy.stdout.split("\n")[:2] == ["644 root root", "644 root root"]


def on_a_terminal(argv, answer, prompt=b"sudo password: ", timeout=180):
    """Run argv on a pseudo-terminal, type ``answer`` once the prompt shows; (exit code, screen)."""
    import os
    import pty
    import select
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execvp(argv[0], argv)
    screen, typed = b"", False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:         # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
            if not typed and prompt in screen:
                os.write(fd, answer.encode() + b"\n")
                typed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


SUDO_USER = "deployer"
PASSWORD = "s3cret-Pa55-7f1c"


def test_sudo_user_with_password_never_leaks(deployed, tmp_path):
    add_sudo_user(deployed, SUDO_USER, PASSWORD)
    inv = inventory(deployed, tmp_path, vars={"ansible_user": SUDO_USER, "lbmethod": "bybusyness"})
    out_json = tmp_path / "run.json"
    try:
        proc = invoke("deploy", "-i", str(inv), "-v", "--diff", "--json", str(out_json), check=0,
                      env={"PROVISION_SUDO_PASSWORD": PASSWORD})
        # it really ran as root, via sudo: the routes changed and Apache reloaded
        assert proc.stdout.count("proxy | changed | reload apache2: handler") == 1, proc.stdout
        assert "lbmethod=bybusyness" in ssh(deployed, "proxy", f"cat {ROUTES}").stdout
        wrong = invoke("deploy", "-i", str(inv), env={"PROVISION_SUDO_PASSWORD": "wrong-one"})
        assert wrong.returncode == 2 and "wrong sudo password" in wrong.stdout
        # Asked once on the terminal: lbmethod back to byrequests, through sudo again.
        back = inventory(deployed, tmp_path, name="back.yml", vars={"ansible_user": SUDO_USER})
        prompted_json = tmp_path / "prompted.json"
        code, screen = on_a_terminal([sys.executable, "-m", "invoke", "deploy", "-i", str(back),
                                      "-K", "--json", str(prompted_json)], PASSWORD)
        assert code == 0, screen
        assert screen.count("sudo password:") == 1
        result = json.loads(prompted_json.read_text())
        # lbmethod back to byrequests: bybusyness's module is disabled again, the routes change, one reload
        assert [s["step"] for s in result["hosts"]["proxy"]["steps"] if s["status"] == "changed"] == \
            ["apache modules not needed off "
             "(lbmethod_bytraffic lbmethod_bybusyness proxy_wstunnel watchdog proxy_hcheck md)",
             "file /etc/apache2/provision/proxy-routes.inc", "reload apache2"], screen
        assert "lbmethod=byrequests" in ssh(deployed, "proxy", f"cat {ROUTES}").stdout
        journals = "".join(ssh(deployed, h, "journalctl -q --no-pager -o cat").stdout for h in deployed.hosts)
        everything = (proc.stdout + proc.stderr + out_json.read_text() + wrong.stdout + wrong.stderr + journals
                      + screen + prompted_json.read_text())
        assert journals and PASSWORD not in everything
    finally:
        invoke("deploy", "-i", "inventory/lab.yml", check=0)
