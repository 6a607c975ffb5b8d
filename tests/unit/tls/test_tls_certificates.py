"""What tls.prepare issues, field by field: the CA and the server certificate's extensions and
validity, the files and their modes, and the reasons a kept certificate is issued again."""
import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provision import tls
from provision.inventory import load

ROOT = Path(__file__).resolve().parents[3]
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


def test_key_usage_and_key_size_exactly(inventory):
    made = tls.prepare(inventory, inventory.group("proxies"), now=NOW)["proxy"]
    ca, cert = x509.load_pem_x509_certificate(made.trust), x509.load_pem_x509_certificate(made.cert)
    assert ext(ca, x509.KeyUsage)[1] == x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False)
    assert ext(cert, x509.KeyUsage)[1] == x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=True, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    assert ca.public_key().key_size == cert.public_key().key_size == 2048
    assert ext(ca, x509.SubjectKeyIdentifier)[0] is False and ext(cert, x509.SubjectKeyIdentifier)[0] is False
    assert ext(cert, x509.AuthorityKeyIdentifier)[0] is False


def test_ca_with_exactly_a_certificate_lifetime_left_is_made_again(inventory):
    host = inventory.hosts["proxy"]
    first = tls.prepare(inventory, [host], now=NOW)["proxy"]
    ca = x509.load_pem_x509_certificate(first.trust)
    second = tls.prepare(inventory, [host], now=ca.not_valid_after_utc - tls.CERT_LIFETIME)["proxy"]
    assert second.trust != first.trust
    third = tls.prepare(inventory, [host], now=NOW + datetime.timedelta(days=1))["proxy"]
    assert third.trust == second.trust


def write_provided(inventory, tmp_path, chain_of_two=True):
    from cryptography.hazmat.primitives import serialization
    store = tmp_path / "ca-here"
    ca_cert, ca_key = tls._ca(store, False, NOW)
    host = inventory.hosts["proxy"]
    made = tls._server(store, host, ca_cert, ca_key, False, NOW)
    chain = made.cert + (made.trust if chain_of_two else b"")
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(made.key)
    host.vars.update(tls="provided", tls_cert=str(tmp_path / "chain.pem"), tls_key="key.pem")
    return host, made, ca_cert.public_bytes(serialization.Encoding.PEM)








