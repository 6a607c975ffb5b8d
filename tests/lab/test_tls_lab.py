"""HTTPS through the proxy on the lab (inventory/lab-tls.yml, tls: self-signed): rotation over
https and http, the Host and X-Forwarded-Proto the app sees, a no-op second deploy with the same
certificate, the key's mode, the CA key never on the host, verify catching a certificate for
another name, tls_redirect, and the plain lab inventory removing TLS again at the end."""
import json
import re
import socket
import ssl
import subprocess

import pytest

from provision import tls
from provision.inventory import load

from conftest import RECAP_RE, ROOT, invoke, ssh

pytestmark = pytest.mark.lab

INVENTORY = "inventory/lab-tls.yml"
ADDRESS = "10.123.0.10"
MESSAGES = ["Hello world!", "Howdy world!"]
HOSTS = {"proxy", "web1", "web2"}
CERT, KEY = "/etc/apache2/provision/tls/proxy.crt", "/etc/apache2/provision/tls/proxy.key"
CA = ROOT / "inventory/.tls/lab-tls/ca/ca.crt"
ISSUED = ROOT / "inventory/.tls/lab-tls/hosts"


def recap(out):
    """Per-host recap counts; every lab host must be in it, so that no all() over it is vacuous."""
    counts = {m[0]: dict(zip(("ok", "changed", "failed", "unreachable"), map(int, m[1:])))
              for m in re.findall(RECAP_RE, out, re.M)}
    assert set(counts) == HOSTS, out[-3000:]
    return counts


def curl(*args):
    proc = subprocess.run(["curl", "-s", "--max-time", "5", *args], capture_output=True, text=True, timeout=20)
    return proc.stdout


def alternates(answers):
    return set(answers) == set(MESSAGES) and all(a != b for a, b in zip(answers, answers[1:]))


def served_serial():
    context = ssl.create_default_context(cafile=str(CA))
    with socket.create_connection((ADDRESS, 443), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=ADDRESS) as conn:
        return int(conn.getpeercert()["serialNumber"], 16)


@pytest.fixture(scope="module")
def tls_lab(lab):
    first = invoke("deploy", "-i", INVENTORY, "--mode", "balancer", check=0)
    print(first.stdout[-1500:])
    yield lab
    # The plain lab again: tls off removes the :443 vhost, the certificate and key, and mod_ssl.
    invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=0)


def test_https_and_http_alternate(tls_lab):
    https = [curl("--cacert", str(CA), f"https://{ADDRESS}/") for _ in range(10)]
    print("https:", https)
    assert alternates(https), https
    plain = [curl(f"http://{ADDRESS}/") for _ in range(10)]
    assert alternates(plain), plain


def test_whoami_over_https(tls_lab):
    seen = json.loads(curl("--cacert", str(CA), "--resolve", f"proxy:443:{ADDRESS}", "https://proxy/whoami"))
    assert (seen["host"], seen["x_forwarded_proto"]) == ("proxy", "https"), seen
    seen = json.loads(curl(f"http://{ADDRESS}/whoami"))
    assert (seen["host"], seen["x_forwarded_proto"]) == (ADDRESS, "http"), seen


def test_second_deploy_is_a_no_op_with_the_same_certificate(tls_lab):
    before = served_serial()
    again = invoke("deploy", "-i", INVENTORY, "--mode", "balancer", check=0)
    print(again.stdout[-600:])
    counts = recap(again.stdout)
    assert all(c["changed"] == 0 for c in counts.values()), again.stdout
    assert "reload apache2" not in again.stdout and "issued certificate" not in again.stdout
    assert served_serial() == before
    stored = load(ROOT / INVENTORY)
    assert tls.prepare(stored, stored.group("proxies"))["proxy"].serial == before


def test_key_private_and_ca_key_stays_here(tls_lab):
    assert ssh(tls_lab, "proxy", f"stat -c '%a %U %G' {KEY}").stdout.split() == ["600", "root", "root"]
    ca_key = (CA.parent / "ca.key").read_text().splitlines()
    probes = [ca_key[1], ca_key[len(ca_key) // 2]]
    for probe in probes:
        found = ssh(tls_lab, "proxy", f"grep -rlF -e '{probe}' /etc /opt /root /tmp /var /srv /home 2>/dev/null",
                    check=False)
        assert found.stdout.strip() == "", f"the CA key's bytes are on the proxy: {found.stdout}"
    # and the server key that is there is the one of the served certificate
    assert ssh(tls_lab, "proxy", f"cat {KEY}").stdout.encode() == (ISSUED / "proxy.key").read_bytes()


def test_verify_passes_then_names_the_host_for_another_name(tls_lab, tmp_path):
    ok = invoke("verify", "-i", INVENTORY)
    assert ok.returncode == 0, ok.stdout[-3000:]
    assert "test_infra_tls.py ...." in ok.stdout
    # A certificate from the same CA, for another name, served by the proxy.
    inv = load(ROOT / INVENTORY)
    other = inv.hosts["proxy"]
    other.name, other.address, other.vars = "other.example.test", "10.123.0.99", {"tls": "self-signed"}
    inv.path = tmp_path / "lab-tls.yml"
    wrong = tls._server(tmp_path, other, *tls._load(CA.parent, "ca"), False, tls_now())
    ssh_put(tls_lab, CERT, wrong.cert)
    ssh_put(tls_lab, KEY, wrong.key)
    ssh(tls_lab, "proxy", "systemctl reload apache2")
    bad = invoke("verify", "-i", INVENTORY)
    print(bad.stdout[-2000:])
    assert bad.returncode != 0
    assert re.search(r"proxy: https://10\.123\.0\.10/ as '(proxy|10\.123\.0\.10)': certificate rejected", bad.stdout)
    # deploy puts the right one back (a changed file, one reload), verify passes again
    fixed = invoke("deploy", "-i", INVENTORY, "--mode", "balancer", check=0)
    assert recap(fixed.stdout)["proxy"]["changed"] >= 2 and fixed.stdout.count("reload apache2") == 1
    assert invoke("verify", "-i", INVENTORY).returncode == 0


def test_tls_redirect_keeps_the_health_path(tls_lab, tmp_path):
    text = (ROOT / INVENTORY).read_text().replace("../.lab/ssh_config", str(ROOT / ".lab/ssh_config"))
    text = text.replace("tls: self-signed", "tls: self-signed\n        tls_redirect: true")
    (tmp_path / "redirect.yml").write_text(text)
    run = invoke("deploy", "-i", str(tmp_path / "redirect.yml"), "--mode", "balancer", check=0)
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in recap(run.stdout).values()), run.stdout
    assert f"proxy | smoke | GET https://{ADDRESS}/ -> 200" in run.stdout      # :80 only redirects
    ca = tmp_path / ".tls/redirect/ca/ca.crt"
    head = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                           f"http://{ADDRESS}/whoami"], capture_output=True, text=True, timeout=20).stdout
    assert head == f"301 https://{ADDRESS}/whoami", head
    health = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{ADDRESS}/health"],
                            capture_output=True, text=True, timeout=20).stdout
    assert health == "404", health      # proxied: the apps have no /health, and it is not redirected
    https = [curl("--cacert", str(ca), f"https://{ADDRESS}/") for _ in range(6)]
    assert alternates(https), https
    verified = invoke("verify", "-i", str(tmp_path / "redirect.yml"))
    assert verified.returncode == 0, verified.stdout[-3000:]
    invoke("deploy", "-i", INVENTORY, "--mode", "balancer", check=0)


def organisation_ca_and_leaf(folder):
    """A CA of 'another organisation' and a certificate it signed for the proxy, as an operator
    would bring them: cert file = leaf then CA (the chain), key file = the leaf's key."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Org test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy")])).issuer_name(ca_name)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("proxy"),
                                                        x509.IPAddress(ipaddress.ip_address(ADDRESS))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "chain.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (folder / "proxy.key").write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    return leaf.serial_number


def test_provided_certificate_is_served(tls_lab, tmp_path):
    serial = organisation_ca_and_leaf(tmp_path)
    text = (ROOT / INVENTORY).read_text().replace("../.lab/ssh_config", str(ROOT / ".lab/ssh_config"))
    text = text.replace("tls: self-signed", f"tls: provided\n        tls_cert: {tmp_path / 'chain.pem'}"
                                            f"\n        tls_key: {tmp_path / 'proxy.key'}")
    (tmp_path / "provided.yml").write_text(text)
    try:
        run = invoke("deploy", "-i", str(tmp_path / "provided.yml"), "--mode", "balancer", check=0)
        assert recap(run.stdout)["proxy"]["failed"] == 0
        https = [curl("--cacert", str(tmp_path / "ca.pem"), f"https://{ADDRESS}/") for _ in range(6)]
        assert alternates(https), https
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with socket.create_connection((ADDRESS, 443), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=ADDRESS) as conn:
            assert int(conn.getpeercert()["serialNumber"], 16) == serial
        again = invoke("deploy", "-i", str(tmp_path / "provided.yml"), "--mode", "balancer", check=0)
        assert all(c["changed"] == 0 for c in recap(again.stdout).values()), again.stdout
        assert invoke("verify", "-i", str(tmp_path / "provided.yml")).returncode == 0
    finally:
        invoke("deploy", "-i", INVENTORY, "--mode", "balancer", check=0)


def test_plain_inventory_removes_tls(tls_lab):
    out = invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=0)
    assert "apache module ssl off" in out.stdout
    listening = ssh(tls_lab, "proxy", "ss -ltnH").stdout
    assert ":443 " not in listening, listening
    assert ssh(tls_lab, "proxy", f"ls {CERT} {KEY}", check=False).returncode != 0
    again = invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", check=0)
    assert all(c["changed"] == 0 for c in recap(again.stdout).values()), again.stdout
    assert alternates([curl(f"http://{ADDRESS}/") for _ in range(6)])


def tls_now():
    import datetime
    return datetime.datetime.now(datetime.timezone.utc)


def ssh_put(lab, path, data: bytes):
    proc = subprocess.run(["ssh", "-F", str(lab.ssh_config), "-o", "BatchMode=yes", "proxy", f"cat > {path}"],
                          input=data, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
