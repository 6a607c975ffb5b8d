"""What tls.prepare issues, field by field: the CA and the server certificate's extensions and
validity, the files and their modes, and the reasons a kept certificate is issued again."""
import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provision import tls
from provision.inventory import load

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.fixture
def inventory(tmp_path):
    text = (ROOT / "inventory/lab-tls.yml").read_text().replace("../.lab/ssh_config", "ssh_config")
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "lab-tls.yml").write_text(text)
    return load(tmp_path / "lab-tls.yml")


def ext(cert, kind):
    e = cert.extensions.get_extension_for_class(kind)
    return e.critical, e.value


def test_ca_and_server_certificate_fields(inventory, tmp_path):
    inventory.hosts["proxy"].vars["server_name"] = "www.example.test"
    made = tls.prepare(inventory, inventory.group("proxies"), now=NOW)["proxy"]
    ca = x509.load_pem_x509_certificate(made.trust)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "provision CA for lab-tls"
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "provision"
    assert ca.issuer == ca.subject
    assert ext(ca, x509.BasicConstraints) == (True, x509.BasicConstraints(ca=True, path_length=0))
    critical, usage = ext(ca, x509.KeyUsage)
    assert critical and (usage.key_cert_sign, usage.crl_sign, usage.digital_signature, usage.key_encipherment) == (
        True, True, True, False)
    assert (ca.not_valid_before_utc, ca.not_valid_after_utc) == (NOW - datetime.timedelta(minutes=5),
                                                                 NOW + tls.CA_LIFETIME)
    cert = x509.load_pem_x509_certificate(made.cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.test"
    assert cert.issuer == ca.subject and cert.serial_number == made.serial
    assert ext(cert, x509.BasicConstraints) == (True, x509.BasicConstraints(ca=False, path_length=None))
    critical, usage = ext(cert, x509.KeyUsage)
    assert critical and (usage.digital_signature, usage.key_encipherment, usage.key_cert_sign, usage.crl_sign) == (
        True, True, False, False)
    assert ext(cert, x509.ExtendedKeyUsage) == (False, x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]))
    assert ext(cert, x509.AuthorityKeyIdentifier)[1].key_identifier == ext(ca, x509.SubjectKeyIdentifier)[1].digest
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (NOW - datetime.timedelta(minutes=5),
                                                                     NOW + tls.CERT_LIFETIME)
    assert ext(cert, x509.SubjectAlternativeName)[0] is False
    assert made.issued and not made.chained
    store = tmp_path / ".tls/lab-tls"
    assert {p.name: p.stat().st_mode & 0o777 for p in store.iterdir() if not p.name.startswith(".")} == {
        "ca.crt": 0o644, "ca.key": 0o600, "proxy.crt": 0o644, "proxy.key": 0o600}
    assert (store / "proxy.crt").read_bytes() == made.cert and (store / "proxy.key").read_bytes() == made.key
    assert (store / "ca.crt").read_bytes() == made.trust
    assert tls.ca_path(inventory) == store / "ca.crt" == tls.trust_path(inventory.hosts["proxy"], inventory)


def test_check_mode_writes_nothing(inventory, tmp_path):
    made = tls.prepare(inventory, inventory.group("proxies"), save=False, now=NOW)["proxy"]
    assert made.issued and not (tmp_path / ".tls").exists()


def test_names_of_a_host():
    class H:
        name = "Proxy"
        address = "10.0.0.10"
        explicit_address = True
        vars = {"server_name": "WWW.example.test", "tls_names": ["10.0.0.99", "alt.test"],
                "private_address": "192.168.1.10"}
    assert tls.names(H()) == (("alt.test", "proxy", "www.example.test"), ("10.0.0.10", "10.0.0.99", "192.168.1.10"))
    H.explicit_address = False
    H.vars = {}
    assert tls.names(H()) == (("proxy",), ())


def test_reissue_reasons(inventory):
    host = inventory.hosts["proxy"]
    first = tls.prepare(inventory, [host], now=NOW)["proxy"]
    store = tls.store_dir(inventory)
    cert, key = tls._load(store, "proxy")
    ca_cert, ca_key = tls._load(store, "ca")
    assert tls.reissue_reason(cert, key, ca_cert, host, NOW) is None
    assert tls.reissue_reason(None, key, ca_cert, host, NOW) == "no certificate yet"
    assert tls.reissue_reason(cert, None, ca_cert, host, NOW) == "the certificate does not match its key"
    assert tls.reissue_reason(cert, ca_key, ca_cert, host, NOW) == "the certificate does not match its key"
    assert tls.reissue_reason(ca_cert, ca_key, cert, host, NOW) == "not signed by the inventory's CA"
    late = cert.not_valid_after_utc - datetime.timedelta(days=29)
    assert tls.reissue_reason(cert, key, ca_cert, host, late) == \
        f"expires {cert.not_valid_after_utc:%Y-%m-%d}, within 30 days"
    assert tls.reissue_reason(cert, key, ca_cert, host, late - datetime.timedelta(days=2)) is None
    host.vars["tls_names"] = ["new.test"]
    assert tls.reissue_reason(cert, key, ca_cert, host, NOW) == "its names changed"
    again = tls.prepare(inventory, [host], now=NOW)["proxy"]
    assert again.issued and again.serial != first.serial and again.key == first.key   # same key kept


def test_ca_near_its_end_is_made_again(inventory):
    host = inventory.hosts["proxy"]
    first = tls.prepare(inventory, [host], now=NOW)["proxy"]
    later = NOW + tls.CA_LIFETIME - tls.CERT_LIFETIME + datetime.timedelta(days=1)
    second = tls.prepare(inventory, [host], now=later)["proxy"]
    assert second.trust != first.trust and second.issued


def test_off_hosts_get_nothing(inventory):
    host = inventory.hosts["proxy"]
    host.vars["tls"] = "off"
    assert tls.prepare(inventory, [host], now=NOW) == {}
    assert tls.trust_path(host, inventory) is None
