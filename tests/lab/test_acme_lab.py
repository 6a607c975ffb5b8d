"""tls: acme on the lab, against the lab's own ACME server (`lab.up --acme`: Debian's pebble with real
HTTP-01 validation; its DNS, pebble-challtestsrv, answers every name with the proxy's address). Each
acceptance line of the issue, run for real: mod_md on the Debian 12 proxy, then the control route
(acme_client: control) on the same proxy; renewal on both; a refused order on both; no key
material in anything the runs printed or wrote. The proxy is left on the plain lab inventory."""
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provision.lab import acme as acme_server
from provision.lab import api

from conftest import ROOT, invoke, recap, ssh

pytestmark = pytest.mark.lab

INVENTORY = "inventory/lab-acme.yml"
ADDRESS = "10.123.0.10"
WEB1 = "10.123.0.11"            # a lab host with nothing on :80: where the refused name points
NAMES = ("app.example.test", "www.app.example.test")
REFUSED = "refused.example.test"
MESSAGES = {"Hello world!", "Howdy world!"}
MD_STORE = "/etc/apache2/md"
VHOST = "/etc/apache2/sites-available/provision-proxy.conf"
TLS_KEY = "/etc/apache2/provision/tls/proxy.key"


@pytest.fixture(scope="module")
def acme(lab):
    """The lab's ACME server up, the proxy without any earlier ACME state; afterwards the plain lab
    inventory again, mod_md's store gone, the ACME server stopped by PID (lab.up without --acme)."""
    info = api.up(acme=True, log=lambda msg: print(f"lab: {msg}"))
    ssh(lab, "proxy", f"rm -rf {MD_STORE}")
    shutil.rmtree(ROOT / "inventory/.tls/lab-acme", ignore_errors=True)
    yield info
    invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer")
    ssh(lab, "proxy", f"rm -rf {MD_STORE}", check=False)
    api.up(log=lambda msg: print(f"lab: {msg}"))
    assert not acme_server.running(api.cache_dir())


@pytest.fixture(scope="module")
def printed():
    """Everything the runs of this module printed or wrote, for the key-material check at the end."""
    return []


def run(printed, *args, check=None):
    proc = invoke(*args, check=check)
    printed.append(f"$ invoke {' '.join(args)}\n{proc.stdout}\n{proc.stderr}")
    return proc


def provision_run(printed, *args):
    """The same through the `provision` program (python -m provision), as an installed user runs it."""
    proc = subprocess.run([sys.executable, "-m", "provision", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    printed.append(f"$ provision {' '.join(args)}\n{proc.stdout}\n{proc.stderr}")
    return proc


def variant(tmp_path, name, **vars_):
    """lab-acme.yml with these proxy variables, its paths absolute, written to tmp_path/<name>.yml."""
    text = (ROOT / INVENTORY).read_text().replace("../.lab/", f"{ROOT}/.lab/")
    doc = yaml.safe_load(text)
    doc["all"]["children"]["proxies"]["vars"].update(vars_)
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def served(lab, name=NAMES[0]):
    """The certificate the proxy serves for `name` (checked against pebble's root)."""
    context = ssl.create_default_context(cafile=str(lab.acme.root))
    with socket.create_connection((ADDRESS, 443), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=name) as conn:
        return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))


def curl(lab, name):
    proc = subprocess.run(["curl", "-s", "--max-time", "5", "--cacert", str(lab.acme.root), "--resolve",
                           f"{name}:443:{ADDRESS}", f"https://{name}/"], capture_output=True, text=True, timeout=20)
    return proc.stdout


def names_of(cert):
    return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
               .get_values_for_type(x509.DNSName))


def no_changes(out):
    counts = recap(out)
    assert set(counts) == {"proxy", "web1", "web2"}, out[-2000:]
    return all(c["changed"] == 0 for c in counts.values())


def refused_in_one_line(out):
    """One failed line, naming the host, the refused name and the CA's own words (pebble's)."""
    failed = [line for line in out.splitlines() if "| failed |" in line]
    assert len(failed) == 1 and failed[0].startswith(f"proxy | failed | acme: {REFUSED}: "), failed
    assert f"{WEB1}:80: connect: connection refused (connection)" in failed[0], failed


def wait_for_new_certificate(lab, serial, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            cert = served(lab)
            if cert.serial_number != serial:
                return cert
        except OSError:
            pass
        assert time.monotonic() < deadline, f"still serial {serial:x} after {timeout} s"
        time.sleep(0.2)


# -- 1. mod_md on the Debian 12 proxy --------------------------------------------------------------

def test_mod_md_gets_a_certificate_for_both_names(acme, printed):
    start = time.monotonic()
    first = run(printed, "deploy", "-i", INVENTORY, check=0)
    took = time.monotonic() - start
    print(first.stdout[-1500:])
    print(f"first deploy with mod_md, the certificate served: {took:.1f} s")
    assert "MDomain app.example.test www.app.example.test" in ssh(acme, "proxy", f"cat {VHOST}").stdout
    cert = served(acme)
    assert names_of(cert) == set(NAMES) and "Pebble" in cert.issuer.rfc4514_string()
    answers = [curl(acme, n) for n in NAMES for _ in range(2)]
    print("curl --cacert pebble's root:", answers)
    assert set(answers) == MESSAGES, answers
    verified = run(printed, "verify", "-i", INVENTORY)
    print(verified.stdout[-800:])
    assert verified.returncode == 0 and "test_infra_tls.py ...." in verified.stdout, verified.stdout[-3000:]
    again = run(printed, "deploy", "-i", INVENTORY, check=0)
    assert no_changes(again.stdout) and "reload" not in again.stdout, again.stdout
    assert served(acme).serial_number == cert.serial_number
    status = json.loads(run(printed, "status", "-i", INVENTORY, "--json", "-", check=0).stdout)
    shown = status["hosts"]["proxy"]["certificate"]
    print("status:", shown)
    assert shown["names"] == sorted(NAMES) and shown["serial"] == f"{cert.serial_number:x}"
    assert shown["issuer"].startswith("Pebble Intermediate CA") and 88 <= shown["days_left"] <= 90


def test_mod_md_renews_and_serves_the_new_certificate_without_a_deploy(acme, printed):
    """The renewal window set on the host so that the served certificate is due and the one mod_md
    gets next is not (seconds: pebble's certificates all live 90 days); Apache reloaded by hand.
    mod_md renews, its hook marks it, the path unit reloads Apache: the new one is served."""
    lab = acme
    old = served(acme)
    young = 4 - (time.time() - old.not_valid_before_utc.timestamp())
    if young > 0:       # a faster deploy path got here sooner: wait until its successor can be told apart
        time.sleep(young)
    left = old.not_valid_after_utc.timestamp() - time.time()
    age = time.time() - old.not_valid_before_utc.timestamp()
    assert age > 4, f"the certificate is {age:.1f} s old: too young to tell it from its successor"
    window = int(left + age / 2)        # the served one is due; a new one (as long-lived) is not
    before = ssh(lab, "proxy", "systemctl show -p ExecMainExitTimestamp provision-md-reload.service").stdout
    ssh(lab, "proxy", f"sed -i 's/^MDRenewWindow .*/MDRenewWindow {window}s/' {VHOST} && systemctl reload apache2")
    start = time.monotonic()
    new = wait_for_new_certificate(acme, old.serial_number)
    print(f"mod_md renewed and the hook's reload served it {time.monotonic() - start:.1f} s after the reload")
    assert names_of(new) == set(NAMES)
    after = ssh(lab, "proxy", "systemctl show -p ExecMainExitTimestamp provision-md-reload.service").stdout
    assert after != before, "the renewal was not activated by provision-md-reload.service"
    # The deploy puts the inventory's window back (the vhost file, one reload) and keeps the new one.
    back = run(printed, "deploy", "-i", INVENTORY, check=0)
    assert f"proxy | changed | file {VHOST}: content differs" in back.stdout, back.stdout
    assert served(acme).serial_number == new.serial_number


def test_mod_md_refused_order_one_line_and_the_old_certificate_serves(acme, printed, tmp_path):
    acme_server.point_name(acme.acme, REFUSED, WEB1)
    try:
        old = served(acme)
        refused = variant(tmp_path, "md-refused", tls_names=[REFUSED])
        start = time.monotonic()
        out = run(printed, "deploy", "-i", str(refused))
        print(out.stdout[-1500:])
        print(f"mod_md's refusal reported after {time.monotonic() - start:.1f} s")
        assert out.returncode == 2
        refused_in_one_line(out.stdout)
        assert served(acme).serial_number == old.serial_number
    finally:
        acme_server.forget_name(acme.acme, REFUSED)
    run(printed, "deploy", "-i", INVENTORY, check=0)
    assert served(acme).serial_number == old.serial_number


# -- 2. the control route (acme_client: control), the CentOS 7 one -----------------------------

@pytest.fixture(scope="module")
def control(acme, tmp_path_factory):
    """(the control route's inventory, its store): lab-acme.yml with acme_client: control."""
    folder = tmp_path_factory.mktemp("acme-control")
    return variant(folder, "control", acme_client="control"), folder / ".tls/control/acme"


def control_with(inventory, **vars_):
    """The control route's inventory again, with more proxy variables (same file: the same store)."""
    return variant(inventory.parent, "control", acme_client="control", **vars_)


def test_control_route_gets_a_certificate_for_both_names(acme, control, printed):
    inventory, store = control
    lab = acme
    start = time.monotonic()
    first = run(printed, "deploy", "-i", str(inventory), check=0)
    print(first.stdout[-2000:])
    print(f"first deploy on the control route: {time.monotonic() - start:.1f} s")
    assert re.search(r"^proxy \| changed \| acme certificate app\.example\.test: issued by "
                     r"https://10\.123\.0\.2:14000/dir \(no certificate yet\)", first.stdout, re.M), first.stdout
    assert "MDomain" not in ssh(lab, "proxy", f"cat {VHOST}").stdout
    kept = x509.load_pem_x509_certificates((store / "proxy.crt").read_bytes())[0]
    assert served(acme).serial_number == kept.serial_number and names_of(kept) == set(NAMES)
    answers = [curl(acme, n) for n in NAMES for _ in range(2)]
    assert set(answers) == MESSAGES, answers
    for f in store.iterdir():
        assert f.stat().st_mode & 0o777 == 0o600, f
    assert ssh(lab, "proxy", f"stat -c '%a %U' {TLS_KEY}").stdout.split() == ["600", "root"]
    assert ssh(lab, "proxy", "ls /var/www/provision-acme/.well-known/acme-challenge/").stdout == ""
    account = next(store.glob("account-*.key")).read_text().splitlines()
    found = ssh(lab, "proxy", f"grep -rlF -e '{account[1]}' -e '{account[len(account) // 2]}' "
                              "/etc /opt /root /tmp /var /srv /home 2>/dev/null", check=False)
    assert found.stdout.strip() == "", f"the account key is on the proxy: {found.stdout}"
    verified = run(printed, "verify", "-i", str(inventory))
    assert verified.returncode == 0 and "test_infra_tls.py ...." in verified.stdout, verified.stdout[-3000:]
    again = run(printed, "deploy", "-i", str(inventory), check=0)
    assert no_changes(again.stdout) and "acme certificate" not in again.stdout, again.stdout


def test_control_route_renews_on_deploy_and_tls_renew_and_not_before(acme, control, printed, tmp_path):
    """A renewal window longer than the certificates live (91 days) makes the kept one due."""
    inventory, store = control
    due = control_with(inventory, acme_renew_window="91d")
    old = served(acme)
    renewed = run(printed, "deploy", "-i", str(due), "--diff", "--json", str(tmp_path / "deploy.json"), check=0)
    printed.append((tmp_path / "deploy.json").read_text())
    print(renewed.stdout[-1500:])
    assert "(expires " in renewed.stdout and "within the renewal window (91d))" in renewed.stdout
    second = served(acme)
    assert second.serial_number != old.serial_number
    assert renewed.stdout.count("reload apache2: handler") == 1
    start = time.monotonic()
    by_task = run(printed, "tls.renew", "-i", str(due), "--json", str(tmp_path / "renew.json"), check=0)
    print(by_task.stdout)
    print(f"invoke tls.renew (due): {time.monotonic() - start:.1f} s")
    written = (tmp_path / "renew.json").read_text()
    printed.append(written)
    document = json.loads(written)
    assert (document["schema"], document["command"], document["exit_code"]) == (1, "tls.renew", 0)
    assert document["hosts"]["proxy"]["status"] == "changed"
    changed = [line for line in by_task.stdout.splitlines() if "| changed |" in line]
    assert [line.split(" | ")[2].split(":")[0] for line in changed] == [
        "acme certificate app.example.test", "tls key /etc/apache2/provision/tls/proxy.key",
        "tls certificate /etc/apache2/provision/tls/proxy.crt", "reload apache2"], changed
    third = served(acme)
    assert third.serial_number not in (old.serial_number, second.serial_number)
    # Not due with the 30-day window: tls.renew and deploy leave it alone.
    control_with(inventory)
    quiet = provision_run(printed, "tls.renew", "-i", str(inventory))
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "proxy | tls | not due: 89 days left, renewed within 30d of expiry" in quiet.stdout, quiet.stdout
    assert recap(quiet.stdout) == {"proxy": {"ok": 1, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}}, \
        quiet.stdout
    again = run(printed, "deploy", "-i", str(inventory), check=0)
    assert no_changes(again.stdout), again.stdout
    assert served(acme).serial_number == third.serial_number


def test_control_route_refused_order_one_line_and_the_old_certificate_serves(acme, control, printed, tmp_path):
    inventory, store = control
    refused = control_with(inventory, tls_names=[REFUSED])
    old = served(acme)
    acme_server.point_name(acme.acme, REFUSED, WEB1)
    try:
        out = run(printed, "deploy", "-i", str(refused))
    finally:
        acme_server.forget_name(acme.acme, REFUSED)
        control_with(inventory)
    print(out.stdout[-1500:])
    assert out.returncode == 2
    refused_in_one_line(out.stdout)
    assert served(acme).serial_number == old.serial_number
    assert x509.load_pem_x509_certificates((store / "proxy.crt").read_bytes())[0].serial_number == old.serial_number


# -- 5. no key material anywhere ------------------------------------------------------------------

def test_no_key_material_in_any_output_diff_json_or_audit_line(acme, control, printed):
    inventory, store = control
    lab = acme
    printed.append(ssh(lab, "proxy", "cat /var/log/provision/deploys.log").stdout)
    printed.append(run(printed, "status", "-i", str(inventory), "--json", "-", check=0).stdout)
    keys = [f.read_bytes() for f in store.glob("*.key")]
    keys += [ssh(lab, "proxy", f"cat {MD_STORE}/domains/{NAMES[0]}/privkey.pem").stdout.encode(),
             ssh(lab, "proxy", f"cat {TLS_KEY}").stdout.encode()]
    text = "\n".join(printed)
    assert "PRIVATE KEY" not in text
    for key in keys:
        serialization.load_pem_private_key(key, password=None)      # each really is a key
        body = [line for line in key.decode().splitlines() if not line.startswith("-----")]
        for line in body[1:-1]:
            assert line not in text, "a line of a private key was printed or written"
    print(f"checked {len(keys)} keys against {len(text)} characters of output, --diff, --json and audit lines")
