"""The cold deploy's order on the lab, recorded on the hosts themselves (they share this machine's
clock): on the proxy, when apt-get started installing Apache and when its routes to the backends
were written; on each backend, when its app first answered. Apache's install overlaps the
backends' work; the proxy switches only after every app answered. A backend that fails leaves the
proxy without the new routes, its switch skipped in the recap; the next deploy switches it.

Runs on fresh hosts (lab.reset) and leaves the lab deployed in balancer mode."""
import subprocess
import time

import pytest

from conftest import get, invoke, recap, ssh

pytestmark = pytest.mark.lab

ROUTES = "/etc/apache2/provision/proxy-routes.inc"
APPS = {"web1": "http://10.123.0.11:8080/", "web2": "http://10.123.0.12:8081/"}
WATCH_FOR = 240         # s: every watcher gives up by then


def watcher(lab, host, body):
    """A loop on ``host``, started before the deploy: prints 'ready', then 'NAME TIME' lines."""
    script = f"echo ready; end=$(( $(date +%s) + {WATCH_FOR} )); while [ $(date +%s) -lt $end ]; do {body}; sleep 0.02; done"
    proc = subprocess.Popen(["ssh", "-F", str(lab.ssh_config), "-o", "BatchMode=yes", host, script],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "ready", f"{host}: the watcher did not start"
    return proc


def proxy_watcher(lab):
    return watcher(lab, "proxy", 'if [ -z "$apt" ] && pgrep -x apt-get >/dev/null; then apt=1; echo "apt $(date +%s.%N)"; fi; '
                                 f'if [ -e {ROUTES} ]; then echo "routes $(date +%s.%N)"; break; fi')


def app_watcher(lab, host):
    return watcher(lab, host, f'if curl -sf -o /dev/null --max-time 1 {APPS[host]}; then echo "answered $(date +%s.%N)"; break; fi')


def seen(proc) -> dict[str, float]:
    """What a watcher printed, once it ended (or was stopped)."""
    try:
        out, _ = proc.communicate(timeout=WATCH_FOR + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return {k: float(v) for k, v in (line.split() for line in out.splitlines() if line.count(" ") == 1)}


def stop(proc) -> dict[str, float]:
    proc.terminate()
    return seen(proc)


@pytest.fixture
def fresh(lab):
    from provision.lab import api
    api.reset(log=lambda m: None)
    return lab


def test_apache_installs_while_the_backends_converge_and_the_proxy_switches_after_their_apps_answer(fresh):
    proxy = proxy_watcher(fresh)
    apps = {h: app_watcher(fresh, h) for h in APPS}
    started = time.time()
    proc = invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=0)
    answered = {h: seen(w).get("answered") for h, w in apps.items()}
    on_proxy = seen(proxy)
    switched = float(ssh(fresh, "proxy", f"stat -c %.9Z {ROUTES}").stdout)
    installed = float(ssh(fresh, "proxy", "stat -c %.9Z /var/lib/dpkg/info/apache2.list").stdout)
    times = {"apt-get started": on_proxy.get("apt"), "apache2 installed": installed,
             **{f"{h} answered": t for h, t in answered.items()}, "routes written": switched}
    print("\n" + "\n".join(f"  {what:<18} +{t - started:6.2f} s" for what, t in sorted(times.items(), key=lambda i: i[1])))
    counts = recap(proc.stdout)
    assert all(c["failed"] == c["unreachable"] == c["skipped"] == 0 for c in counts.values()), proc.stdout
    assert None not in answered.values() and on_proxy.get("apt"), times
    assert on_proxy["apt"] < min(answered.values()), "Apache's install began only once the backends were done"
    assert switched > max(answered.values()), "the proxy switched before every app answered"
    assert {get("http://10.123.0.10/")[2] for _ in range(4)} == {"Hello world!", "Howdy world!"}


def test_a_failed_backend_leaves_the_proxy_prepared_not_switched_and_the_next_deploy_switches_it(fresh):
    # A folder where web2's app.py goes: the step refuses to replace it, web2 fails.
    ssh(fresh, "web2", "mkdir -p /opt/provision/apps/howdy/app.py")
    proc = invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=2)
    counts = recap(proc.stdout)
    assert counts["web2"]["failed"] == 1 and counts["web1"]["failed"] == 0, proc.stdout
    assert counts["proxy"]["failed"] == 0 and counts["proxy"]["skipped"] > 0, proc.stdout
    assert f"proxy | skipped | file {ROUTES}: not switched: web2 failed" in proc.stdout
    # prepared: Apache and its modules are there, serving its own default page; no routes, no vhost
    assert ssh(fresh, "proxy", "dpkg-query -W -f '${db:Status-Status}' apache2").stdout == "installed"
    assert ssh(fresh, "proxy", "test -e /etc/apache2/mods-enabled/proxy_balancer.load", check=False).returncode == 0
    assert ssh(fresh, "proxy", f"test -e {ROUTES} || test -e /etc/apache2/sites-enabled/provision-proxy.conf",
               check=False).returncode == 1
    assert get("http://10.123.0.10/")[2] not in ("Hello world!", "Howdy world!")
    ssh(fresh, "web2", "rmdir /opt/provision/apps/howdy/app.py")
    again = invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=0)
    counts = recap(again.stdout)
    assert all(c["failed"] == c["skipped"] == 0 for c in counts.values()), again.stdout
    assert {get("http://10.123.0.10/")[2] for _ in range(4)} == {"Hello world!", "Howdy world!"}
