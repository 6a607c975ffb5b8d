"""The bench job as a naive Fabric script: one command per step, each step guarded by a shell
test, hosts in parallel (a thread per host). Prints "HOST changed=N" per host.

Usage: python fabric_naive.py JOB.json (the runner writes JOB.json from the lab inventory)."""
import io
import json
import sys
import threading
from pathlib import Path

from fabric import Config, Connection
from jinja2 import Template

HERE = Path(__file__).resolve().parent


def put_if_different(c, text, dest):
    """Upload, then replace only when it differs; True when it changed."""
    c.put(io.BytesIO(text.encode()), f"{dest}.new")
    return "CHANGED" in c.run(f"cmp -s {dest}.new {dest} && rm -f {dest}.new || "
                              f"{{ mv -f {dest}.new {dest}; echo CHANGED; }}", hide=True).stdout


def backend(c, host):
    changed = 0
    if c.run("dpkg -s python3-flask >/dev/null 2>&1", warn=True, hide=True).failed:
        c.run("apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-flask", hide=True)
        changed += 1
    c.run("mkdir -p /opt/peer")
    restart = put_if_different(c, (HERE / "app.py").read_text(), "/opt/peer/app.py")
    changed += restart
    for app in host["apps"]:
        unit = Template((HERE / "app.service.j2").read_text()).render(app=app, bind=host["address"])
        name = f"peer-app-{app['name']}"
        new_unit = put_if_different(c, unit + "\n", f"/etc/systemd/system/{name}.service")
        changed += new_unit
        if new_unit:
            c.run("systemctl daemon-reload")
        if c.run(f"systemctl is-active -q {name}", warn=True).failed:
            c.run(f"systemctl enable -q --now {name}")
            changed += 1
        elif restart or new_unit:
            c.run(f"systemctl restart {name}")
            changed += 1
    return changed


def proxy(c, host, members):
    changed = 0
    if c.run("dpkg -s apache2 >/dev/null 2>&1", warn=True, hide=True).failed:
        c.run("apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q apache2", hide=True)
        changed += 1
    reload_ = False
    for mod in ("proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests"):
        if c.run(f"test -e /etc/apache2/mods-enabled/{mod}.load", warn=True).failed:
            c.run(f"a2enmod -q {mod}")
            changed, reload_ = changed + 1, True
    vhost = Template((HERE / "vhost.conf.j2").read_text()).render(members=members)
    if put_if_different(c, vhost + "\n", "/etc/apache2/sites-available/peer-proxy.conf"):
        changed, reload_ = changed + 1, True
    if c.run("test -e /etc/apache2/sites-enabled/peer-proxy.conf", warn=True).failed:
        c.run("a2ensite -q peer-proxy")
        changed, reload_ = changed + 1, True
    if c.run("test -e /etc/apache2/sites-enabled/000-default.conf", warn=True).ok:
        c.run("a2dissite -q 000-default")
        changed, reload_ = changed + 1, True
    if reload_:
        c.run("systemctl reload-or-restart apache2")
        changed += 1
    return changed


def main(job_path):
    job = json.loads(Path(job_path).read_text())
    config = Config(overrides={"run": {"hide": True}}, runtime_ssh_path=job["ssh_config"])
    members = [{"address": b["address"], "port": a["port"]} for b in job["backends"] for a in b["apps"]]
    results, errors = {}, {}

    def converge(host, role):
        try:
            with Connection(host["name"], config=config) as c:
                results[host["name"]] = backend(c, host) if role == "backend" else proxy(c, host, members)
        except Exception as exc:        # noqa: BLE001 - reported per host, like the other tools
            errors[host["name"]] = f"{type(exc).__name__}: {exc}"

    # backends first, then the proxy, as the other tools' plays do
    for role, hosts in (("backend", job["backends"]), ("proxy", job["proxies"])):
        threads = [threading.Thread(target=converge, args=(h, role)) for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for name in sorted(results):
        print(f"{name} changed={results[name]}")
    for name, err in sorted(errors.items()):
        print(f"{name} failed: {err}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
