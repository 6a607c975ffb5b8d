"""TLS: the inventory's CA and certificates (provision/tls.py), and the proxy role's TLS plan."""
import datetime
from pathlib import Path

import pytest
from cryptography import x509

from provision import facts as factlib, tls
from provision.engine import Options
from provision.inventory import load
from provision.platforms import DEBIAN, REDHAT
from provision.resources import File
from provision.roles import proxy

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.fixture
def inventory(tmp_path):
    text = (ROOT / "inventory/lab-tls.yml").read_text().replace("../.lab/ssh_config", "ssh_config")
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "lab-tls.yml").write_text(text)
    return load(tmp_path / "lab-tls.yml")


def prepared(inventory, **kw):
    options = Options()
    options.tls = tls.prepare(inventory, inventory.group("proxies"), **kw)
    return options


def test_store_beside_the_inventory_and_keys_private(inventory, tmp_path):
    prepared(inventory, now=NOW)
    store = tmp_path / ".tls" / "lab-tls"
    assert tls.store_dir(inventory) == store
    assert {p.name for p in (store / "ca").iterdir()} == {"ca.crt", "ca.key"}
    assert {p.name for p in (store / "hosts").iterdir()} == {"proxy.crt", "proxy.key"}
    for folder in (store, store / "ca", store / "hosts"):
        assert folder.stat().st_mode & 0o777 == 0o700
    for key in ("ca/ca.key", "hosts/proxy.key"):
        assert (store / key).stat().st_mode & 0o777 == 0o600


def test_names_and_addresses_in_the_certificate(inventory):
    host = inventory.hosts["proxy"]
    host.vars.update(server_name="www.example.test", tls_names=["alt.example.test"])
    made = prepared(inventory, now=NOW).tls["proxy"]
    cert = x509.load_pem_x509_certificate(made.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == ["alt.example.test", "proxy", "www.example.test"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["10.123.0.10"]
    ca = x509.load_pem_x509_certificate(made.trust)
    cert.verify_directly_issued_by(ca)


def test_no_reissue_on_a_second_run(inventory):
    first = prepared(inventory, now=NOW).tls["proxy"]
    second = prepared(inventory, now=NOW + datetime.timedelta(days=100)).tls["proxy"]
    assert first.issued and not second.issued
    assert (second.serial, second.cert, second.key) == (first.serial, first.cert, first.key)


@pytest.mark.parametrize("why", ["names", "expiry", "missing", "other key"])
def test_reissued_when_needed(inventory, why):
    first = prepared(inventory, now=NOW).tls["proxy"]
    store, now = tls.hosts_dir(inventory), NOW
    if why == "names":
        inventory.hosts["proxy"].vars["tls_names"] = ["new.example.test"]
    elif why == "expiry":
        now = NOW + tls.CERT_LIFETIME - datetime.timedelta(days=29)
    elif why == "missing":
        (store / "proxy.crt").unlink()
    else:
        (store / "proxy.key").write_bytes(tls._key_pem(tls._new_key()))
    again = prepared(inventory, now=now).tls["proxy"]
    assert again.issued and again.serial != first.serial
    assert (why == "other key") == (again.key != first.key)


def test_check_mode_writes_nothing(inventory, tmp_path):
    made = prepared(inventory, save=False, now=NOW).tls["proxy"]
    assert made.issued
    assert not (tmp_path / ".tls").exists()


def test_provided_certificate_checked_against_its_key(inventory, tmp_path):
    made = prepared(inventory, now=NOW).tls["proxy"]
    host = inventory.hosts["proxy"]
    (tmp_path / "c.pem").write_bytes(made.cert + made.trust)
    (tmp_path / "k.pem").write_bytes(made.key)
    host.vars.update(tls="provided", tls_cert="c.pem", tls_key="k.pem")
    got = tls.prepare(inventory, [host])["proxy"]
    assert got.serial == made.serial and got.chained and got.trust == made.trust
    assert tls.trust_path(host, inventory) == tmp_path / "c.pem"
    (tmp_path / "k.pem").write_bytes(tls._key_pem(tls._new_key()))
    with pytest.raises(tls.TLSError, match=r"host 'proxy': .*k.pem is not the key of .*c.pem"):
        tls.prepare(inventory, [host])
    host.vars["tls_key"] = "missing.pem"
    with pytest.raises(tls.TLSError, match="cannot read"):
        tls.prepare(inventory, [host])


def test_role_refuses_to_plan_without_prepared_material(inventory):
    with pytest.raises(proxy.ProxyConfigError, match="no certificate prepared"):
        proxy.resources(inventory.hosts["proxy"], DEBIAN, inventory, Options())


@pytest.mark.parametrize("platform", [DEBIAN, REDHAT], ids=["debian", "redhat"])
def test_proxy_directives_written_once_for_both_vhosts(inventory, platform):
    options = prepared(inventory, now=NOW)
    host = inventory.hosts["proxy"]
    files = {r.path: r.content.decode() for r in proxy.resources(host, platform, inventory, options)
             if isinstance(r, File)}
    vhost, routes = files[platform.vhost_path], files[platform.routes_path]
    assert vhost.count("<VirtualHost *:80>") == 1 and vhost.count("<VirtualHost *:443>") == 1
    assert vhost.count(f"Include {platform.routes_path}") == 2
    everything = "".join(files.values())
    for directive in ("ProxyPreserveHost On", "ProxyPass / ", "ProxyPassReverse / ", "<Proxy balancer://"):
        assert everything.count(directive) == 1, directive
        assert directive in routes
    assert "RequestHeader set X-Forwarded-Proto https" in vhost.split("<VirtualHost *:443>")[1]
    assert "RequestHeader set X-Forwarded-Proto http\n" in vhost.split("<VirtualHost *:443>")[0]
    assert "TLSv1.3" not in vhost and "SSLProtocol all -SSLv3 -TLSv1 -TLSv1.1" in vhost


def test_key_is_0600_root_and_ca_key_never_in_a_file(inventory):
    options = prepared(inventory, now=NOW)
    ca_key = (tls.ca_dir(inventory) / "ca.key").read_bytes()
    ca_key_body = b"".join(ca_key.splitlines()[1:-1])
    for platform in (DEBIAN, REDHAT):
        files = [r for r in proxy.resources(inventory.hosts["proxy"], platform, inventory, options)
                 if isinstance(r, File)]
        key = next(f for f in files if f.path.endswith("proxy.key"))
        assert (key.mode, key.owner, key.group) == ("600", "root", "root")
        assert key.content == options.tls["proxy"].key
        for f in files:
            assert ca_key_body[:64] not in b"".join(f.content.splitlines())


def test_redirect_and_hsts(inventory):
    host = inventory.hosts["proxy"]
    host.vars.update(tls_redirect=True, tls_hsts=True, health_path="/healthz")
    vhost = proxy.vhost(host, DEBIAN, prepared(inventory, now=NOW))
    plain, secure = vhost.split("<VirtualHost *:443>")
    assert "RewriteCond %{REQUEST_URI} !^/healthz(/|$)" in plain
    assert "[R=301,L]" in plain and "Strict-Transport-Security" not in plain
    assert 'Header always set Strict-Transport-Security "max-age=63072000"' in secure
    assert "rewrite" in proxy.modules(host, None, DEBIAN)


def _debian_facts(modules, files=()):
    text = "\n".join(["@@@ os-release", (ROOT / "tests/fixtures/debian12/os-release").read_text(),
                      "@@@ arch", "x86_64", "@@@ packages", "apache2\tinstalled\t2.4.62", "@@@ mods-enabled",
                      *[f"{m}.load" for m in modules], "@@@ pending"]) + "\n"
    f = factlib.parse(text)
    for path in files:
        f.files[path] = factlib.FileState("file", "600", "root", "root", "0" * 64)
    return f


def test_tls_off_removes_the_443_vhost_cert_and_module(inventory):
    host = inventory.hosts["proxy"]
    host.vars["tls"] = "off"
    cert, key = proxy.tls_paths(DEBIAN)
    resources = proxy.resources(host, DEBIAN, inventory, Options())
    vhost = next(r for r in resources if isinstance(r, File) and r.path == DEBIAN.vhost_path)
    assert b":443" not in vhost.content and b"SSLEngine" not in vhost.content
    labels = [r.label for r in resources]
    assert f"absent {cert}" in labels and f"absent {key}" in labels
    off = next(r for r in resources if r.label == "apache module ssl off")
    assert off.plan(_debian_facts(["ssl", "proxy"], [cert])).script == "a2dismod -q ssl"
    assert not off.plan(_debian_facts(["ssl", "proxy"])).changed      # not ours: left alone
    assert not off.plan(_debian_facts(["proxy"], [cert])).changed


def test_redhat_tls_off_neutralises_only_our_ssl_conf(inventory):
    host = inventory.hosts["proxy"]
    host.vars["tls"] = "off"
    step = next(r for r in proxy.resources(host, REDHAT, inventory, Options()) if isinstance(r, proxy.TlsConfOff))
    ours = (proxy.FILES / "ssl-redhat.conf").read_bytes()
    import hashlib
    f = _debian_facts([])
    f.files[REDHAT.tls_conf] = factlib.FileState("file", "644", "root", "root", hashlib.sha256(ours).hexdigest())
    change = step.plan(f)
    assert change.changed and change.validate == "apache"
    f.files[REDHAT.tls_conf] = factlib.FileState("file", "644", "root", "root", "1" * 64)
    assert not step.plan(f).changed


def test_certificate_problems_expiry_and_names():
    import ssl
    import time
    from provision import verify
    check = verify.ProxyCheck("proxy", "ssh://proxy", "10.123.0.10", "balancer", "proxy", (), (), tls="self-signed")
    now = time.time()
    peer = {"notAfter": time.strftime("%b %d %H:%M:%S %Y GMT", time.gmtime(now + 90 * 86400)),
            "subjectAltName": (("DNS", "proxy"), ("IP Address", "10.123.0.10"))}
    assert verify.certificate_problems(peer, check, now) == []
    soon = dict(peer, notAfter=time.strftime("%b %d %H:%M:%S %Y GMT", time.gmtime(now + 10 * 86400)))
    assert "expires in 10 days" in verify.certificate_problems(soon, check, now)[0]
    other = dict(peer, subjectAltName=(("DNS", "other.example.test"),))
    assert len(verify.certificate_problems(other, check, now)) == 2
    assert ssl.cert_time_to_seconds(peer["notAfter"]) > now


def test_tls_names_must_be_names(tmp_path):
    from provision.inventory import InventoryError
    (tmp_path / "i.yml").write_text("all:\n  hosts:\n    p:\n      ansible_host: 10.0.0.1\n      tls: self-signed\n"
                                    "      tls_names: [ok.example.test, 'bad name']\n")
    with pytest.raises(InventoryError, match=r"host 'p': field 'tls_names\[1\]'"):
        load(tmp_path / "i.yml")


# -- the CA apart from the issued certificates, constrained (security review, item 2) -----------

def two_proxies(tmp_path, first="ca"):
    """A TLS inventory whose proxies are named `first` (default "ca") and "proxy"."""
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "two.yml").write_text(f"""
all:
  vars: {{ssh_config: ssh_config, tls: self-signed}}
  children:
    proxies:
      hosts:
        {first}: {{ansible_host: 10.123.0.20, tls_names: [www.example.test]}}
        proxy: {{ansible_host: 10.123.0.10}}
    backends:
      hosts:
        web1: {{ansible_host: 10.123.0.11, apps: [{{name: hello, port: 8080, message: hi}}]}}
""")
    return load(tmp_path / "two.yml")


def public_keys(inventory, made):
    from cryptography.hazmat.primitives import serialization
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ca = x509.load_pem_x509_certificate(tls.ca_path(inventory).read_bytes())
    keys = {"CA": ca.public_key().public_bytes(*fmt)}
    keys.update({name: x509.load_pem_x509_certificate(m.cert).public_key().public_bytes(*fmt)
                 for name, m in made.items()})
    return ca, keys


def server_verifier(ca, name, now=NOW):
    from cryptography.x509.verification import PolicyBuilder, Store
    return PolicyBuilder().store(Store([ca])).time(now).build_server_verifier(name)


def test_proxy_named_ca_shares_no_key_and_a_second_run_issues_nothing(tmp_path):
    inventory = two_proxies(tmp_path)
    first = tls.prepare(inventory, inventory.group("proxies"), now=NOW)
    ca, keys = public_keys(inventory, first)
    assert len(set(keys.values())) == len(keys) == 3, "two certificates share a private key"
    assert x509.load_pem_x509_certificate(first["ca"].cert).extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca is False
    second = tls.prepare(inventory, inventory.group("proxies"), now=NOW + datetime.timedelta(days=1))
    assert not any(m.issued for m in second.values())
    assert {n: m.serial for n, m in second.items()} == {n: m.serial for n, m in first.items()}
    assert public_keys(inventory, second)[0] == ca               # the CA was not replaced
    for name, made in first.items():
        server_verifier(ca, x509.DNSName(name)).verify(x509.load_pem_x509_certificate(made.cert), [])


def test_ca_is_constrained_to_the_proxies_names(tmp_path):
    from cryptography.x509.verification import VerificationError
    inventory = two_proxies(tmp_path, first="edge")
    tls.prepare(inventory, inventory.group("proxies"), now=NOW)
    ca = x509.load_pem_x509_certificate(tls.ca_path(inventory).read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    nc = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert {str(n.value) for n in nc.value.permitted_subtrees} == \
        {"edge", "proxy", "www.example.test", "10.123.0.20/32", "10.123.0.10/32"}
    # The CA's key, if it leaked, signs a certificate for another name: no client accepts it.
    outsider = inventory.hosts["proxy"]
    outsider.name, outsider.address, outsider.vars = "bank.example.com", "192.0.2.1", {"tls": "self-signed"}
    ca_cert, ca_key = tls._load(tls.ca_dir(inventory), "ca")
    forged = tls._server(tmp_path / "elsewhere", outsider, ca_cert, ca_key, False, NOW)
    with pytest.raises(VerificationError):
        server_verifier(ca, x509.DNSName("bank.example.com")).verify(
            x509.load_pem_x509_certificate(forged.cert), [])


def test_old_store_layout_is_moved_not_replaced(tmp_path):
    """A store from before the split: ca.* and proxy.* side by side, the CA without constraints."""
    inventory = two_proxies(tmp_path, first="edge")
    store = tls.store_dir(inventory)
    store.mkdir(parents=True, mode=0o700)
    old_ca_cert, old_ca_key = tls._ca(store / "old", True, NOW, (("edge", "proxy"), ()))
    for suffix in ("crt", "key"):
        (store / "old" / f"ca.{suffix}").rename(store / f"ca.{suffix}")
    before = {}
    for h in inventory.group("proxies"):
        before[h.name] = tls._server(store, h, old_ca_cert, old_ca_key, True, NOW)
    from cryptography.x509 import NameConstraints
    # drop the constraints, as the old releases made it
    legacy = (x509.CertificateBuilder().subject_name(old_ca_cert.subject).issuer_name(old_ca_cert.subject)
              .public_key(old_ca_key.public_key()).serial_number(1)
              .not_valid_before(old_ca_cert.not_valid_before_utc).not_valid_after(old_ca_cert.not_valid_after_utc)
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True))
    from cryptography.hazmat.primitives import hashes
    (store / "ca.crt").write_bytes(tls._cert_pem(legacy.sign(old_ca_key, hashes.SHA256())))
    checked = tls.prepare(inventory, inventory.group("proxies"), save=False, now=NOW)
    assert not any(m.issued for m in checked.values()) and not tls.ca_dir(inventory).exists()
    made = tls.prepare(inventory, inventory.group("proxies"), now=NOW)
    assert not any(m.issued for m in made.values())
    assert {n: m.serial for n, m in made.items()} == {n: m.serial for n, m in before.items()}
    ca_cert, ca_key = tls._load(tls.ca_dir(inventory), "ca")
    assert tls._key_pem(ca_key) == tls._key_pem(old_ca_key)           # same CA key, moved
    assert ca_cert.extensions.get_extension_for_class(NameConstraints)  # now constrained
    again = tls.prepare(inventory, inventory.group("proxies"), now=NOW)
    assert not any(m.issued for m in again.values())
    assert tls._load(tls.ca_dir(inventory), "ca")[0] == ca_cert       # and left alone from then on
    server_verifier(ca_cert, x509.DNSName("edge")).verify(x509.load_pem_x509_certificate(made["edge"].cert), [])
