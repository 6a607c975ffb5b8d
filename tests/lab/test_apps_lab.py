"""Apps of your own on the lab (inventory/apps.yml): Flask's tutorial app (flaskr, a project folder)
and httpbin (a pinned package from the index) on web1 and web2, each behind its own pool and site.

One deployed state for the whole module: the first deploy (with --diff and --json, `ps` sampled
on the backends meanwhile) carries fresh secrets, so the secrets grep sees them travel. Then:
a user, a post and a second deploy that changes nothing; httpbin's pages and environment; a new
flaskr release under load with --serial 1 and a rollback under load; three releases that must not
serve; an offline deploy; a dependency the target cannot have. Each step prints its figures."""
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import ROOT, invoke, recap, ssh
from tests.support.load import Background

pytestmark = pytest.mark.lab

INVENTORY = ROOT / "inventory" / "apps.yml"
FLASKR = ROOT / "tests" / "fixtures" / "apps" / "flaskr"
PROXY = "http://10.123.0.10"
LAB_HOSTS = {"10.123.0.10", "10.123.0.11", "10.123.0.12"}
BACKENDS = {"web1": "10.123.0.11", "web2": "10.123.0.12"}
FLASKR_SITE = {"Host": "flaskr.example.test"}
HTTPBIN_SITE = {"Host": "httpbin.example.test"}
RUN = uuid.uuid4().hex[:10]
SECRET_ENV = f"bugsnag-secret-{RUN}"
SECRET_FILE = f"flaskr-secret-key-{RUN}"


def write_variant(lab, folder: Path, name: str, project: Path = FLASKR, flaskr=None, httpbin=None) -> Path:
    """inventory/apps.yml with this run's secrets, the lab's ssh_config, flaskr from ``project``,
    and each app edited by its function (apps are YAML aliases: one edit changes both hosts)."""
    data = yaml.safe_load(INVENTORY.read_text())
    data["all"]["vars"]["ssh_config"] = str(lab.ssh_config)
    apps = {a["name"]: a for a in data["all"]["children"]["backends"]["hosts"]["web1"]["apps"]}
    apps["flaskr"]["project"] = str(project)
    apps["flaskr"]["files"][0]["content"] = f"SECRET_KEY = '{SECRET_FILE}'\n"
    apps["httpbin"]["secret_env"]["BUGSNAG_API_KEY"] = SECRET_ENV
    for app, edit in (("flaskr", flaskr), ("httpbin", httpbin)):
        if edit:
            edit(apps[app])
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def flaskr_copy(folder: Path, name: str, edit) -> Path:
    """A copy of the flaskr fixture, changed by ``edit(root)``: a new version of the app."""
    root = folder / name
    shutil.copytree(FLASKR, root)
    edit(root)
    return root


def replace_in(path: Path, old: str, new: str):
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new))


class PsSampler:
    """`ps -eo args` on a host every 0.1 s while a run goes (bounded: 3 minutes), kept locally."""

    def __init__(self, lab, host):
        self.proc = subprocess.Popen(["ssh", "-F", str(lab.ssh_config), "-o", "BatchMode=yes", host,
                                      "for i in $(seq 1800); do ps -eo args; sleep 0.1; done"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.text = ""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        self.text = self.proc.stdout.read()

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)
        return self.text


class Flaskr:
    """A browser on flaskr's site through the proxy: keeps its cookies (session, sticky ROUTEID)."""

    def __init__(self):
        self.client = httpx.Client(base_url=PROXY, headers=FLASKR_SITE, timeout=10)

    def post(self, path, **data):
        resp = self.client.post(path, data=data)
        assert resp.status_code == 302, f"POST {path}: {resp.status_code} {resp.text[:300]}"
        return resp

    def index(self) -> str:
        resp = self.client.get("/")
        assert resp.status_code == 200, resp.text[:300]
        return resp.text


@pytest.fixture(scope="module")
def apps(lab, tmp_path_factory):
    """The lab deployed with inventory/apps.yml (this run's secrets), the first deploy's output
    and --json, and `ps` as sampled on both backends during it."""
    folder = tmp_path_factory.mktemp("apps")
    path = write_variant(lab, folder, "apps")
    for host in BACKENDS:       # a drain an earlier run left behind would be kept as found
        invoke("undrain", host, "-i", str(path))
    started = time.time()
    samplers = [PsSampler(lab, h) for h in BACKENDS]
    first = invoke("deploy", "-i", str(path), "--diff", "--json", str(folder / "first.json"), timeout=900)
    ps = [s.stop() for s in samplers]
    print(f"apps lab: first deploy took {time.time() - started:.1f} s")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    state = {"lab": lab, "folder": folder, "path": path, "first": first, "json": (folder / "first.json").read_text(),
             "ps": ps, "started": started, "browser": Flaskr(), "post": f"post {RUN}"}
    yield state
    state["browser"].client.close()


def test_flaskr_register_login_post_and_a_second_deploy_changes_nothing(apps):
    browser, user = apps["browser"], f"user{RUN}"
    browser.post("/auth/register", username=user, password="pw-" + RUN)
    login = browser.post("/auth/login", username=user, password="pw-" + RUN)
    assert login.headers["location"] == "/", login.headers
    browser.post("/create", title=apps["post"], body="written through the proxy")
    page = browser.index()
    assert apps["post"] in page and f"by {user}" in page and "Log Out" in page, page[:1000]
    again = invoke("deploy", "-i", str(apps["path"]), "--json", str(apps["folder"] / "again.json"), check=0)
    counts = recap(again.stdout)
    ssh_use = json.loads((apps["folder"] / "again.json").read_text())["ssh"]
    print("second deploy:", {h: c["changed"] for h, c in counts.items()}, ssh_use)
    assert all(c["changed"] == 0 for c in counts.values()), again.stdout
    assert all((u["connections"], u["execs"], u["uploads"]) == (1, 1, 0) for u in ssh_use.values()), ssh_use
    checked = invoke("verify", "-i", str(apps["path"]))      # each app's health, each site's routes
    assert checked.returncode == 0, checked.stdout[-3000:]


def test_httpbin_from_the_index_answers_its_pages_with_its_environment(apps, lab):
    index = httpx.get(f"{PROXY}/", headers=HTTPBIN_SITE, timeout=10)
    assert index.status_code == 200 and "httpbin" in index.text, index.text[:300]
    # HTTPBIN_TRACKING (env) adds httpbin's tracking snippet to its index page
    assert "gauges-tracker" in index.text, index.text[-1500:]
    got = httpx.get(f"{PROXY}/get?run={RUN}", headers=HTTPBIN_SITE, timeout=10).json()
    assert got["args"] == {"run": RUN} and got["headers"]["Host"] == "httpbin.example.test", got
    for host in BACKENDS:
        pid = ssh(lab, host, "systemctl show -p MainPID --value provision-app-httpbin.service").stdout.strip()
        env = ssh(lab, host, f"tr '\\0' '\\n' < /proc/{pid}/environ | grep -c -E '^(HTTPBIN_TRACKING=1|BUGSNAG_API_KEY=)'")
        assert env.stdout.strip() == "2", f"{host}: the app's environment lacks env/secret_env"
        # httpbin reads BUGSNAG_API_KEY at start; with no bugsnag client installed it says so
        log = ssh(lab, host, "journalctl -u provision-app-httpbin.service --no-pager -o cat -n 200").stdout
        assert "Unable to initialize Bugsnag exception handling." in log


def test_secrets_are_nowhere_but_their_files(apps, lab):
    shown = {"screen": apps["first"].stdout + apps["first"].stderr, "--json": apps["json"]}
    for i, host in enumerate(BACKENDS):
        shown[f"ps on {host}"] = apps["ps"][i]
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(apps["started"] - 5))
        shown[f"journal on {host}"] = ssh(lab, host, f"journalctl --since '{since}' --no-pager -o cat").stdout
        shown[f"audit log on {host}"] = ssh(lab, host, "cat /var/log/provision/deploys.log").stdout
    diff = invoke("deploy", "-i", str(write_variant(lab, apps["folder"], "diff", httpbin=lambda a: a["secret_env"]
                                                    .update(BUGSNAG_API_KEY=SECRET_ENV + "-2"))),
                  "--check", "--diff")
    shown["--check --diff"] = diff.stdout + diff.stderr
    assert "release /opt/provision/apps/httpbin: would change" in diff.stdout, diff.stdout
    assert any(len(t) > 1000 for t in shown.values()) and all(len(shown[f"ps on {h}"]) > 1000 for h in BACKENDS)
    for where, text in shown.items():
        for secret in (SECRET_ENV, SECRET_FILE):
            assert secret not in text, f"a secret shows in the {where}"
    print("secrets grep:", {where: len(text) for where, text in shown.items()})
    for host in BACKENDS:
        env = ssh(lab, host, "stat -L -c '%U %G %a' /opt/provision/apps/httpbin/current/env").stdout.split()
        secret_file = ssh(lab, host, "stat -c '%U %G %a' /var/lib/provision/apps/flaskr/config.py").stdout.split()
        assert env == ["root", "root", "600"] and secret_file == ["root", "app-flaskr", "640"], (env, secret_file)
        denied = ssh(lab, host, "runuser -u app-httpbin -- cat /opt/provision/apps/httpbin/current/env", check=False)
        assert denied.returncode != 0 and SECRET_ENV not in denied.stdout


def timed_load(requests=3000, concurrency=10):
    return Background(f"{PROXY}/", requests, concurrency, 180, LAB_HOSTS, headers=FLASKR_SITE)


def titles() -> dict:
    return {h: re.search(r"<title>(.*?)</title>", httpx.get(f"http://{a}:8090/auth/login", timeout=10).text).group(1)
            for h, a in BACKENDS.items()}


def test_a_new_release_under_load_with_serial_then_a_rollback_under_load(apps):
    v2 = flaskr_copy(apps["folder"], "flaskr-v2", lambda root: replace_in(
        root / "flaskr" / "templates" / "base.html", "- Flaskr</title>", "- Flaskr v2</title>"))
    path = write_variant_from(apps, "v2", project=v2)
    with timed_load() as load:
        started = time.monotonic()
        proc = invoke("deploy", "-i", str(path), "--serial", "1", timeout=600)
        took = time.monotonic() - started
        result = load.wait()
    print(f"release under load: deploy --serial 1 took {took:.1f} s; {result.summary()}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert result.sent == 3000 and result.failed == 0, result.errors[:5]
    assert titles() == {"web1": "Log In - Flaskr v2", "web2": "Log In - Flaskr v2"}
    assert apps["post"] in apps["browser"].index()
    with timed_load() as load:
        back = invoke("rollback", "-i", str(path), "--app", "flaskr", timeout=600)
        result = load.wait()
    print(back.stdout)
    print(f"rollback under load: {result.summary()}")
    assert back.returncode == 0, back.stdout + back.stderr
    assert result.sent == 3000 and result.failed == 0, result.errors[:5]
    assert titles() == {"web1": "Log In - Flaskr", "web2": "Log In - Flaskr"}
    assert apps["post"] in apps["browser"].index()
    assert re.findall(r"^ssh: (web\d) connections=1 execs=\d+ uploads=(\d+)$", back.stdout, re.M) == \
        [("web1", "0"), ("web2", "0")], back.stdout
    per_host = [float(s) for s in re.findall(r"back in the balancer after ([\d.]+) s", back.stdout)]
    assert len(per_host) == 2 and max(per_host) < 10, per_host


def write_variant_from(apps, name, **edits) -> Path:
    return write_variant(apps["lab"], apps["folder"], name, **edits)


BAD_RELEASES = {
    "a": ("release command", dict(flaskr=lambda a: a["release_command"].append("exit 1")), ()),
    "b": ("import", dict(flaskr=lambda a: a.update(wsgi="flaskr:no_such_app")), ()),
    "c": ("health", "a /hello that answers 500", ("--serial", "1")),
}


@pytest.mark.parametrize("case", sorted(BAD_RELEASES))
def test_a_release_that_must_not_serve(apps, case):
    check, edits, extra = BAD_RELEASES[case]
    if case == "c":
        broken = flaskr_copy(apps["folder"], "flaskr-500", lambda root: replace_in(
            root / "flaskr" / "__init__.py", 'return "Hello, World!"', 'return "Hello, World!", 500'))
        edits = dict(project=broken, flaskr=lambda a: a.update(health="/hello"))
    path = write_variant_from(apps, f"bad-{case}", **edits)
    report = apps["folder"] / f"bad-{case}.json"
    with timed_load(600) as load:
        proc = invoke("deploy", "-i", str(path), *extra, "--json", str(report), timeout=600)
        result = load.wait()
    print(f"bad release ({case}, {check}): exit {proc.returncode}; {result.summary()}")
    assert proc.returncode == 2, proc.stdout[-3000:]
    counts, hosts = recap(proc.stdout), json.loads(report.read_text())["hosts"]
    assert counts["web1"]["failed"] == 1 and hosts["web1"]["failed"] == 1, proc.stdout[-3000:]
    failed = [s for s in hosts["web1"]["steps"] if s["status"] == "failed"]
    assert [s["step"] for s in failed] == ["release /opt/provision/apps/flaskr"], failed
    line = failed[0]["reason"]
    print(f"  web1: {line}")
    assert f"check failed: {check}" in line and "\n" not in line
    assert re.search(rf"web1 \| failed \| release /opt/provision/apps/flaskr: exit 1: check failed: {check}",
                     proc.stdout), proc.stdout[-3000:]
    assert result.failed == 0, result.errors[:5]
    assert titles() == {"web1": "Log In - Flaskr", "web2": "Log In - Flaskr"}
    assert apps["post"] in apps["browser"].index()


BLOCK = ("ip rule add ipproto 6 dport 3142 prohibit; ip rule add ipproto 6 dport 80 prohibit; "
         "ip rule add ipproto 6 dport 443 prohibit")
UNBLOCK = BLOCK.replace(" add ", " del ")


def test_offline_deploy_then_a_dependency_the_target_cannot_have(apps, lab):
    """No apt proxy (10.123.0.1:3142), no index (80/443) for the backends: a new release still
    deploys from the wheels the control machine brought."""
    path = write_variant_from(apps, "offline", httpbin=lambda a: a["env"].update(HTTPBIN_TRACKING="2"))
    try:
        for host in BACKENDS:
            ssh(lab, host, BLOCK)
            cut = ssh(lab, host, "curl -s -o /dev/null --max-time 3 http://10.123.0.1:3142/; echo $?", check=False)
            assert cut.stdout.strip() not in ("0", ""), f"{host} still reaches the apt proxy"
        proc = invoke("deploy", "-i", str(path), timeout=600)
    finally:
        for host in BACKENDS:
            ssh(lab, host, UNBLOCK, check=False)
    print(proc.stdout[-1500:])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert all(recap(proc.stdout)[h]["changed"] > 0 for h in BACKENDS)
    assert httpx.get(f"{PROXY}/get", headers=HTTPBIN_SITE, timeout=10).status_code == 200

    before = {h: ssh(lab, h, "readlink /opt/provision/apps/flaskr/current; ls /opt/provision/apps/flaskr/releases")
              .stdout for h in BACKENDS}
    needs_c = flaskr_copy(apps["folder"], "flaskr-zoneinfo", lambda root: replace_in(
        root / "pyproject.toml", '    "flask",\n', '    "flask",\n    "backports.zoneinfo==0.2.1",\n'))
    report = apps["folder"] / "refused.json"
    refused = invoke("deploy", "-i", str(write_variant_from(apps, "refused", project=needs_c)), "--json", str(report),
                     timeout=600)
    print(refused.stdout[-1500:])
    assert refused.returncode == 2
    data = json.loads(report.read_text())
    for host in BACKENDS:
        line = data["hosts"][host]["error"]
        assert re.fullmatch(r"backports\.zoneinfo 0\.2\.1: no wheel for Python 3\.11 \(x86_64\), and its source "
                            r"distribution (is not pure Python \(it builds \S+\)|does not build here: .*)", line), line
        assert data["ssh"][host]["execs"] == 1 and data["ssh"][host]["uploads"] == 0, data["ssh"]
        assert ssh(lab, host, "readlink /opt/provision/apps/flaskr/current; ls /opt/provision/apps/flaskr/releases"
                   ).stdout == before[host]
